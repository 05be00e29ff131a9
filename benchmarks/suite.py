"""The benchmark suite of `python -m benchmarks`: each part run in turn, its figures written.

Training: keras-vae's `fit` on the default network beside the keras.io VAE
recipe and a plain PyTorch loop (`benchmarks/training.py`). Inference: the
decoder in Keras, the SavedModel, onnxruntime, Node.js and the browser.
Serving: `keras-vae-serve` and the real Triton server (`benchmarks/serving.py`).
"""

import datetime
import json
import os
import statistics
from pathlib import Path

import tensorflow as tf

from keras_vae.files import write_bytes_atomically
from keras_vae.run import RunError, load_run
from keras_vae.versions import package_versions

from .browser import benchmark_browser
from .flops import vae_flops
from .hardware import (
    MatmulCeiling,
    cpu_features,
    measured_clock_ghz,
    nominal_peak_gflops,
)
from .inference import benchmark_decoder, large_batch_study
from .node import benchmark_node
from .profile import profile_training
from .report import markdown_report
from .serving import benchmark_serving
from .settings import compare_settings
from .training import (
    KerasContender,
    benchmark_training,
    build_contenders,
    build_vanilla_contenders,
    phase_seconds,
)


def _set_threads(threads, with_torch):
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    if with_torch:
        import torch

        torch.set_num_threads(threads)


def _versions(with_torch):
    names = ("keras-vae", "keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime")
    return package_versions(*names, *(("torch",) if with_torch else ()))


def run(args):
    """`python -m benchmarks`: runs the chosen benchmarks and writes their figures."""
    run = _trained_run(args)
    with_torch = not args.no_torch and (not args.skip_training or args.vanilla_vae)
    _set_threads(args.threads, with_torch)
    ceiling = MatmulCeiling()
    results = _machine(args, with_torch, ceiling)
    if not args.skip_training:
        results.update(_default_training(args, ceiling, with_torch))
        _pool_ceilings(results["hardware"], results["training"]["ceilings"])
    if args.compare_settings:
        print("keras-vae's training under settings fixed per process:", flush=True)
        results["settings"] = compare_settings(
            args.batch_size,
            args.steps_per_execution,
            args.threads,
            rounds=args.rounds,
            steps=args.steps,
            data_options={
                "data_dir": args.data_dir,
                "idx_dir": args.idx_dir,
                "max_examples": args.max_train_examples,
            },
        )
    if args.vanilla_vae:
        results.update(_vanilla_vae(args, ceiling, with_torch=not args.no_torch))
    if not args.skip_inference:
        results.update(_inference(args, run))
    if not args.skip_serving:
        triton = None if args.no_triton else args.triton_python
        print(f"Serving {args.bundle} with {args.serve_command} and Triton:", flush=True)
        log = Path(args.output).with_suffix(".server.log")
        results["serving"] = benchmark_serving(
            args.serve_command, args.bundle, log, args.threads, triton,
            seconds=args.serve_seconds, rounds=args.serve_rounds,
        )  # fmt: skip
    _write(results, args.output, args.markdown)


def _trained_run(args):
    """The run whose decoder inference is timed (`None` without inference), after
    checking that what the chosen benchmarks need is there."""
    if not args.skip_serving and not Path(args.serve_command).is_file():
        raise SystemExit(
            f"No server at {args.serve_command}: run `make inference-deps`, pass "
            "--serve-command, or --skip-serving."
        )
    if not (args.skip_serving or args.no_triton or Path(args.triton_python).is_file()):
        raise SystemExit(
            f"No Triton environment at {args.triton_python}: run `make triton-deps`, pass "
            "--triton-python, or --no-triton."
        )
    if args.skip_inference:
        return None
    try:
        return load_run(args.run_dir)
    except RunError as error:
        raise SystemExit(f"{error} Decoder inference needs it, or pass --skip-inference.") from None


def _default_training(args, ceiling, with_torch):
    """The default model's training throughput beside the references, and its profile."""
    contenders, dataset = build_contenders(
        args.batch_size,
        args.steps_per_execution,
        with_torch=with_torch,
        xla=not args.no_xla,
        max_examples=args.max_train_examples,
        data_options={"data_dir": args.data_dir, "idx_dir": args.idx_dir},
    )
    print("Training throughput:", flush=True)
    flops, training = _throughput(contenders, dataset, args.rounds, args.steps, ceiling)
    print("Where keras-vae's training step goes (TensorFlow's profiler):", flush=True)
    return {
        "training_flops": flops,
        "training": training,
        "training_profile": _profile(contenders[0], args.steps),
    }


def _inference(args, run):
    """The trained decoder in every runtime, in Node.js and the browser, and at batch 1024."""
    results = {"inference_flops": vae_flops(run.model)}
    print(f"Decoder inference, {args.threads} threads:", flush=True)
    results["decoder_inference"] = benchmark_decoder(run.model, Path(args.bundle), args.threads)
    print("Decoder inference in Node.js (examples/node):", flush=True)
    results["decoder_inference"] += benchmark_node(run.model, Path(args.bundle), args.threads)
    if not args.skip_browser:
        print("Decoder inference in headless Chromium (the explorer page):", flush=True)
        log = Path(args.output).with_suffix(".browser.log")
        rows, results["browser"] = benchmark_browser(run.model, Path(args.bundle), log)
        results["decoder_inference"] += rows
    print("onnxruntime against the SavedModel at batch 1024:", flush=True)
    results["large_batch"] = large_batch_study(Path(args.bundle), args.threads)
    return results


def _vanilla_vae(args, ceiling, with_torch):
    """The VanillaVAE's training throughput beside PyTorch, and its phase times."""
    contenders, dataset = build_vanilla_contenders(with_torch=with_torch)
    print("VanillaVAE (64x64x3 Noto emoji) training throughput:", flush=True)
    flops, training = _throughput(
        contenders, dataset, args.rounds, args.vanilla_steps, ceiling, warmup_steps=3
    )
    print("Where a VanillaVAE step's time goes:", flush=True)
    batch = next(iter(dataset)).numpy()
    models = {
        contender.name: ("keras", contender.model)
        if isinstance(contender, KerasContender)
        else ("torch", contender.trainer)
        for contender in contenders
    }
    phases = phase_seconds(models, batch)
    for name, seconds in phases.items():
        print(f"  {name}: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in seconds.items()))
    print("Where its training step goes (TensorFlow's profiler):", flush=True)
    return {
        "vanilla_vae_training": training,
        "vanilla_vae_training_flops": flops,
        "vanilla_vae_phases": phases,
        "vanilla_vae_profile": _profile(contenders[0], args.vanilla_steps),
    }


def _throughput(contenders, dataset, rounds, steps, ceiling, **options):
    """The contenders' training timed in turns, set against the first one's FLOPs.

    Returns:
        A tuple `(flops, training)`: `vae_flops` of the network and
        `benchmark_training`'s record.
    """
    flops = vae_flops(contenders[0].model)
    training = benchmark_training(
        contenders,
        dataset,
        rounds=rounds,
        steps=steps,
        flops_per_example=flops["training_step"],
        ceiling=ceiling,
        **options,
    )
    return flops, training


def _profile(contender, steps):
    """Profiles a Keras contender's training step and prints where its time goes."""
    profile = profile_training(contender, steps)
    for row in profile["categories"]:
        if row["ms_per_step"]:
            rate = f", {row['gflops']:.1f} GFLOP/s" if row["gflops"] else ""
            print(f"  {row['name']}: {row['ms_per_step']:.1f} ms ({100 * row['share']:.0f}%{rate})")
    return profile


def _machine(args, with_torch, ceiling):
    """The record's header: command, date, hardware and its ceilings, versions."""
    features = cpu_features()
    ghz = measured_clock_ghz(features["cores"])
    matmul = ceiling.measure()
    kernel = max(matmul, key=matmul.get)
    hardware = {
        **features,
        "measured_ghz": ghz,
        "nominal_peak_gflops": nominal_peak_gflops(features, ghz),
        "matmul_gflops": matmul[kernel],
        "matmul_kernel": kernel,
        "matmul_gflops_by_library": matmul,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
    gpus = tf.config.list_physical_devices("GPU")
    clock = f"{ghz:.2f} GHz measured" if ghz else f"{features['mhz']} MHz reported"
    print(
        f"{features['model']}: {features['cores']} cores at {clock}, nominal peak "
        f"{hardware['nominal_peak_gflops']:.0f} GFLOP/s, matmul "
        + ", ".join(f"{name} {value:.1f}" for name, value in matmul.items())
        + f" GFLOP/s; {args.threads} threads.",
        flush=True,
    )
    return {
        "command": args.command,
        "date": datetime.date.today().isoformat(),
        "hardware": hardware,
        "threads": args.threads,
        "accelerators": f"GPUs: {len(gpus)}." if gpus else "No GPU.",
        "versions": _versions(with_torch),
    }


def _pool_ceilings(hardware, rounds):
    """Makes the header's matmul figures the medians over the start and every round.

    One timing can land in a slow spell of a shared machine; the inference
    tables, which have no rounds of their own, are set against the medians.
    """
    measurements = [hardware["matmul_gflops_by_library"], *rounds]
    pooled = {
        name: statistics.median(figures[name] for figures in measurements)
        for name in measurements[0]
    }
    kernel = max(pooled, key=pooled.get)
    hardware.update(
        matmul_gflops=pooled[kernel],
        matmul_kernel=kernel,
        matmul_gflops_by_library=pooled,
        matmul_measurements=len(measurements),
        matmul_gflops_at_start=measurements[0],
    )


def _write(results, output, markdown):
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(output, json.dumps(results, indent=2).encode())
    print(f"Wrote {output}")
    if markdown:
        write_bytes_atomically(markdown, markdown_report(results).encode())
        print(f"Wrote {markdown}")
