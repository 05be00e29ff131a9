"""Benchmarks decoder inference of an export bundle across runtimes.

    python -m pipelines.benchmark --run-dir runs/default --bundle exported/default

Times the Keras model (a direct call and `predict`), the reloaded SavedModel and
onnxruntime (float32 and each variant in the bundle) at several batch sizes,
after warm-up, and prints and saves the median, 10th and 90th percentile of
each. Timings on shared machines are noisy: compare figures from one run.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np
import onnxruntime
import tensorflow as tf

from keras_vae.export import library_versions
from keras_vae.files import write_bytes_atomically

BATCH_SIZES = (1, 64, 256, 1024)


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


def decoder_runners(model, bundle, threads):
    """Returns `{runtime name: function(z) -> images}` for every decoder runtime."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    manifest = json.loads((bundle / "manifest.json").read_text())
    onnx_files = {"onnxruntime float32": manifest["decoder"]["onnx"]}
    onnx_files.update(
        {f"onnxruntime {name}": info["file"] for name, info in manifest["variants"].items()}
    )
    serving = tf.saved_model.load(str(bundle / "decoder" / "1")).signatures["serving_default"]
    runners = {
        "keras call": lambda z: model.likelihood(model.decoder(z, training=False)).numpy(),
        "keras predict": lambda z: model.decode(z, batch_size=len(z)),
        "savedmodel": lambda z: serving(z=tf.constant(z))["image"].numpy(),
    }
    for name, file in onnx_files.items():
        session = onnxruntime.InferenceSession(
            str(bundle / file), options, providers=["CPUExecutionProvider"]
        )
        runners[name] = lambda z, session=session: session.run(["image"], {"z": z})[0]
    return runners


def benchmark_decoder(model, bundle, threads, batch_sizes=BATCH_SIZES):
    """Times every decoder runtime at every batch size; returns a list of rows."""
    runners = decoder_runners(model, bundle, threads)
    reference = runners["onnxruntime float32"]
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
                "max_abs_error_vs_onnxruntime_float32": float(np.max(np.abs(run(z) - expected))),
            }
            rows.append(row)
            print(
                f"  batch {batch:5d}  {name:22s} {timing['median_ms']:9.3f} ms "
                f"(p10 {timing['p10_ms']:.3f}, p90 {timing['p90_ms']:.3f})  "
                f"{row['examples_per_second']:10.0f} ex/s",
                flush=True,
            )
    return rows


def machine():
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/default", help="training run folder")
    parser.add_argument("--bundle", default="exported/default", help="export bundle folder")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="onnxruntime threads")
    parser.add_argument("--output", default="runs/benchmark.json", help="where the JSON goes")
    args = parser.parse_args(argv)
    bundle = Path(args.bundle)
    model = keras.models.load_model(Path(args.run_dir) / "model.keras")
    print(f"Decoder inference, {args.threads} onnxruntime threads:")
    results = {
        "command": "python -m pipelines.benchmark "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "versions": library_versions(),
        "decoder_inference": benchmark_decoder(model, bundle, args.threads),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(args.output, json.dumps(results, indent=2).encode())
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
