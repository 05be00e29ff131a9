"""Decoder inference across runtimes: Keras, the SavedModel, onnxruntime and its variants.

Each runtime decodes the same latent vectors at each batch size, timed after
warm-up; its output is compared with the Keras model's (float32) own.
"""

import statistics
import time

import numpy as np
import onnxruntime
import tensorflow as tf

from keras_vae_inference import bundle

BATCH_SIZES = (1, 64, 1024)


def time_calls(function, min_seconds=0.5, min_repeats=5, max_repeats=200):
    """Calls `function` after two warm-up calls until enough time or repeats pass.

    Args:
        function: a callable without arguments.
        min_seconds: keep timing until this much time has passed...
        min_repeats: ...and at least this many calls were timed.
        max_repeats: stop after this many timed calls.

    Returns:
        A dict with the median, 10th and 90th percentile in milliseconds and the
        number of timed calls.
    """
    function()
    function()
    times = []
    started = time.perf_counter()
    while len(times) < max_repeats and (
        len(times) < min_repeats or time.perf_counter() - started < min_seconds
    ):
        begin = time.perf_counter()
        function()
        times.append((time.perf_counter() - begin) * 1e3)
    deciles = statistics.quantiles(times, n=10) if len(times) > 1 else times * 9
    return {
        "median_ms": statistics.median(times),
        "p10_ms": deciles[0],
        "p90_ms": deciles[-1],
        "calls": len(times),
    }


def decoder_runners(model, bundle_dir, threads):
    """Returns `{runtime name: function(z) -> images}` for every decoder runtime."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    manifest = bundle.read_manifest(bundle_dir)
    _, latest = bundle.version_entry(bundle_dir, manifest)
    onnx_files = {"onnxruntime float32": latest["onnx"]["decoder"]}
    onnx_files.update(
        {f"onnxruntime {name}": info["file"] for name, info in latest["variants"].items()}
    )
    saved = tf.saved_model.load(str(bundle_dir / latest["savedmodel"]["decoder"]))
    serving = saved.signatures[bundle.SIGNATURE]
    runners = {
        "keras call": lambda z: model.likelihood(model.decoder(z, training=False)).numpy(),
        "keras predict": lambda z: model.decode(z, batch_size=len(z)),
        "savedmodel": lambda z: serving(z=tf.constant(z))["image"].numpy(),
    }
    for name, file in onnx_files.items():
        session = onnxruntime.InferenceSession(
            str(bundle_dir / file), options, providers=["CPUExecutionProvider"]
        )
        runners[name] = lambda z, session=session: session.run(["image"], {"z": z})[0]
    return runners


def benchmark_decoder(model, bundle_dir, threads, batch_sizes=BATCH_SIZES):
    """Times every decoder runtime at every batch size; returns a list of rows."""
    runners = decoder_runners(model, bundle_dir, threads)
    reference = runners["keras call"]
    rows = []
    for batch in batch_sizes:
        z = np.random.default_rng(batch).standard_normal((batch, model.latent_dim))
        z = z.astype("float32")
        expected = reference(z)
        for name, run in runners.items():
            timing = time_calls(lambda run=run, z=z: run(z))
            row = {
                "runtime": name,
                "batch": batch,
                **timing,
                "examples_per_second": batch / timing["median_ms"] * 1e3,
                "max_abs_error_vs_keras": float(np.max(np.abs(run(z) - expected))),
            }
            rows.append(row)
            print(
                f"  batch {batch:5d}  {name:22s} {timing['median_ms']:9.3f} ms "
                f"(p10 {timing['p10_ms']:.3f}, p90 {timing['p90_ms']:.3f})  "
                f"{row['examples_per_second']:10.0f} ex/s",
                flush=True,
            )
    return rows
