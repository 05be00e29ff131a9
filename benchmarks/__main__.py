"""Benchmarks training throughput and decoder inference against references and the hardware.

    python -m benchmarks --run-dir runs/default --bundle exported/default

Training: keras-vae's `fit` on the default network beside the keras.io VAE
recipe and a plain PyTorch loop on the same network, data, batch size and
threads, timed in turns (see `benchmarks/training.py`). Inference: the decoder
of a trained run in Keras, the SavedModel and onnxruntime at batch 1, 64 and
1024, put against the model's FLOPs and the CPU's peak. Serving:
`keras-vae-serve` and the real Triton server on the same bundle under 1, 8 and
64 concurrent clients, in turns, against in-process onnxruntime. Figures are
printed and saved as JSON and Markdown. Timings on shared machines are noisy:
compare figures from one run.
"""

import argparse
import os
import sys

from keras_vae.run_config import RunConfig
from pipelines.cli import positive_int

PROG = "python -m benchmarks"


def _declare(parser):
    defaults = RunConfig()
    parser.add_argument("--run-dir", default="runs/default", help="trained run folder")
    parser.add_argument("--bundle", default="exported/default", help="export bundle folder")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=len(os.sched_getaffinity(0)),
        help="threads for every contender (default: this machine's cores)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=defaults.batch_size, help="training batch"
    )
    parser.add_argument(
        "--steps-per-execution",
        type=positive_int,
        default=defaults.steps_per_execution,
        help="keras-vae's setting (default: training's)",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=7, help="timed windows per contender"
    )
    parser.add_argument("--steps", type=positive_int, default=100, help="training steps per window")
    parser.add_argument(
        "--max-train-examples", type=positive_int, help="use part of the training split"
    )
    parser.add_argument("--data-dir", help="TFDS data folder")
    parser.add_argument("--idx-dir", help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch loop")
    parser.add_argument("--no-xla", action="store_true", help="leave out keras-vae with XLA")
    parser.add_argument("--skip-training", action="store_true", help="no training figures")
    parser.add_argument(
        "--compare-settings",
        action="store_true",
        help="also time keras-vae's training under settings fixed per process (oneDNN or "
        "Eigen kernels, thread pools, XLA), each in its own process, in turns",
    )
    parser.add_argument(
        "--vanilla-vae",
        action="store_true",
        help="also time the VanillaVAE (vanilla_vae_64) on the Noto emoji against its "
        "PyTorch form, with where each step's time goes",
    )
    parser.add_argument(
        "--vanilla-steps", type=positive_int, default=20, help="VanillaVAE steps per window"
    )
    parser.add_argument("--skip-inference", action="store_true", help="no decoder figures")
    parser.add_argument(
        "--serve-command",
        default=".venv-inference/bin/keras-vae-serve",
        help="keras-vae-serve of an environment with keras-vae-inference[serve] (make "
        "inference-deps makes it)",
    )
    parser.add_argument(
        "--triton-python",
        default=".venv-triton/bin/python",
        help="Python of the environment with nvidia-pytriton whose Triton server is timed "
        "too (make triton-deps makes it)",
    )
    parser.add_argument("--no-triton", action="store_true", help="leave out the Triton server")
    parser.add_argument(
        "--serve-seconds", type=positive_int, default=10, help="seconds per client count and round"
    )
    parser.add_argument(
        "--serve-rounds", type=positive_int, default=3, help="rounds of the serving points"
    )
    parser.add_argument("--skip-serving", action="store_true", help="no serving figures")
    parser.add_argument(
        "--skip-browser", action="store_true", help="no decoder figures from headless Chromium"
    )
    parser.add_argument("--output", default="runs/benchmark.json", help="where the JSON goes")
    parser.add_argument("--markdown", help="where the Markdown table goes (optional)")


def build_parser():
    """The benchmarks' argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _declare(parser)
    return parser


def main(argv=None):
    """Runs the benchmarks chosen by `argv` (the command line's if `None`) and writes their
    figures; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command = " ".join([PROG, *argv])
    # Imported once the options are read: `--help` and a bad option need no TensorFlow.
    from benchmarks.suite import run

    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
