"""Decoder inference across runtimes: Keras, the SavedModel, onnxruntime and its variants.

Each runtime decodes the same latent vectors at each batch size, timed after
warm-up; its output is compared with the Keras model's (float32) own.
"""

import json
import statistics
import tempfile
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
    return summarize_times(times)


def summarize_times(times):
    """The median, 10th and 90th percentile and count of call times in milliseconds."""
    deciles = statistics.quantiles(times, n=10) if len(times) > 1 else times * 9
    return {
        "median_ms": statistics.median(times),
        "p10_ms": deciles[0],
        "p90_ms": deciles[-1],
        "calls": len(times),
    }


def decoder_runners(model, bundle_dir, threads):
    """Returns `{runtime name: function(z) -> images}` for every decoder runtime."""
    _, latest, serving = _latest_decoder(bundle_dir)
    onnx_files = {"onnxruntime float32": latest["onnx"]["decoder"]}
    onnx_files.update(
        {f"onnxruntime {name}": info["file"] for name, info in latest["variants"].items()}
    )
    runners = {
        "keras call": lambda z: keras_images(model, z),
        "keras predict": lambda z: model.decode(z, batch_size=len(z)),
        "savedmodel": lambda z: serving(z=tf.constant(z))["image"].numpy(),
    }
    for name, file in onnx_files.items():
        session = _onnx_session(bundle_dir / file, threads)
        runners[name] = lambda z, session=session: session.run(["image"], {"z": z})[0]
    return runners


def _latest_decoder(bundle_dir):
    """The manifest, the latest version's entry and its SavedModel decoder's signature."""
    manifest = bundle.read_manifest(bundle_dir)
    _, latest = bundle.version_entry(bundle_dir, manifest)
    saved = tf.saved_model.load(str(bundle_dir / latest["savedmodel"]["decoder"]))
    return manifest, latest, saved.signatures[bundle.SIGNATURE]


def _onnx_session(path, threads, level=None, profile=None):
    """An onnxruntime CPU session with `threads` intra-op threads and one inter-op thread.

    Args:
        path: the ONNX file.
        threads: intra-op threads.
        level: a `GraphOptimizationLevel`, or `None` for onnxruntime's default (all).
        profile: a file prefix to profile the session into, or `None`.
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    if level is not None:
        options.graph_optimization_level = level
    if profile:
        options.enable_profiling, options.profile_file_prefix = True, profile
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def benchmark_decoder(model, bundle_dir, threads, batch_sizes=BATCH_SIZES):
    """Times every decoder runtime at every batch size; returns a list of rows."""
    runners = decoder_runners(model, bundle_dir, threads)
    rows = []
    for batch in batch_sizes:
        z = benchmark_latents(model, batch)
        expected = runners["keras call"](z)
        for name, run in runners.items():
            timing = time_calls(lambda run=run, z=z: run(z))
            rows.append(decoder_row(name, batch, timing, run(z), expected))
    return rows


def benchmark_latents(model, batch):
    """The latent vectors every runtime decodes at batch size `batch`."""
    z = np.random.default_rng(batch).standard_normal((batch, model.latent_dim))
    return z.astype("float32")


def keras_images(model, z):
    """The Keras model's decoded images for `z`: what every runtime is compared with."""
    return model.likelihood(model.decoder(z, training=False)).numpy()


def decoder_row(runtime, batch, timing, output, expected):
    """One row of the decoder table, printed as it is made.

    Args:
        runtime: the runtime's name.
        batch: the batch size.
        timing: `time_calls`' or `summarize_times`' dict.
        output: the images the runtime decoded (any shape holding them).
        expected: the Keras model's images for the same latent vectors.
    """
    error = np.max(np.abs(np.reshape(output, expected.shape) - expected))
    row = {
        "runtime": runtime,
        "batch": batch,
        **timing,
        "examples_per_second": batch / timing["median_ms"] * 1e3,
        "max_abs_error_vs_keras": float(error),
    }
    print(
        f"  batch {batch:5d}  {runtime:22s} {timing['median_ms']:9.3f} ms "
        f"(p10 {timing['p10_ms']:.3f}, p90 {timing['p90_ms']:.3f})  "
        f"{row['examples_per_second']:10.0f} ex/s",
        flush=True,
    )
    return row


def large_batch_study(bundle_dir, threads, batch=1024, rounds=7, chunks=(16, 64)):
    """Where onnxruntime spends a large batch, and the settings that change its speed.

    The SavedModel and onnxruntime settings (graph optimisation levels, the batch
    run in chunks) are timed in turns, `rounds` times; each setting's speed is
    the median over rounds of its time divided by the SavedModel's in that round.

    Args:
        bundle_dir: the bundle folder.
        threads: intra-op threads for TensorFlow and onnxruntime.
        batch: the batch size studied.
        rounds: timed turns per setting.
        chunks: chunk sizes to try.

    Returns:
        A dict: `op_share` (fraction of onnxruntime's kernel time per operator
        type) and `settings`, rows with `setting`, `median_ms`, `vs_savedmodel`
        and `max_abs_error_vs_savedmodel`.
    """
    manifest, latest, serving = _latest_decoder(bundle_dir)
    path = bundle_dir / latest["onnx"]["decoder"]
    latent_dim = manifest["model"]["latent_dim"]
    z = np.random.default_rng(batch).standard_normal((batch, latent_dim)).astype("float32")
    levels = onnxruntime.GraphOptimizationLevel

    def session(level=levels.ORT_ENABLE_ALL, profile=None):
        return _onnx_session(path, threads, level, profile)

    def whole(run_session):
        return lambda: run_session.run(["image"], {"z": z})[0]

    def in_chunks(run_session, chunk):
        return lambda: np.concatenate(
            [run_session.run(["image"], {"z": z[i : i + chunk]})[0] for i in range(0, batch, chunk)]
        )

    settings = {"savedmodel": lambda: serving(z=tf.constant(z))["image"].numpy()}
    for name, level in (
        ("all", levels.ORT_ENABLE_ALL),
        ("extended", levels.ORT_ENABLE_EXTENDED),
        ("basic", levels.ORT_ENABLE_BASIC),
        ("disabled", levels.ORT_DISABLE_ALL),
    ):
        settings[f"onnxruntime, graph optimisation {name}"] = whole(session(level))
    default = session()
    for chunk in chunks:
        settings[f"onnxruntime, in chunks of {chunk}"] = in_chunks(default, chunk)
    reference = settings["savedmodel"]()
    errors = {name: float(np.max(np.abs(run() - reference))) for name, run in settings.items()}
    times = {name: [] for name in settings}
    for _ in range(rounds):
        for name, run in settings.items():
            begin = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - begin) * 1e3)
    rows = []
    for name, values in times.items():
        ratios = [a / b for a, b in zip(values, times["savedmodel"], strict=True)]
        rows.append({
            "setting": name,
            "median_ms": statistics.median(values),
            "vs_savedmodel": statistics.median(ratios),
            "max_abs_error_vs_savedmodel": errors[name],
        })  # fmt: skip
        print(f"  batch {batch}  {name:42s} {rows[-1]['median_ms']:8.1f} ms  "
              f"x{rows[-1]['vs_savedmodel']:.3f} of the SavedModel's time", flush=True)  # fmt: skip
    return {"batch": batch, "op_share": _operator_share(session, z), "settings": rows}


def _operator_share(session, z):
    """Fraction of onnxruntime's kernel time per operator type, from its profiler."""
    with tempfile.TemporaryDirectory() as folder:
        profiled = session(profile=f"{folder}/profile")
        for _ in range(3):
            profiled.run(["image"], {"z": z})
        with open(profiled.end_profiling()) as file:
            events = json.load(file)
    totals = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            operator = event["args"]["op_name"]
            totals[operator] = totals.get(operator, 0) + event["dur"]
    whole = sum(totals.values())
    return {op: t / whole for op, t in sorted(totals.items(), key=lambda item: -item[1])}
