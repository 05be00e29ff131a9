"""The `keras-vae` command: one subcommand per job.

    keras-vae train --epochs 5 --run-dir runs/mine
    keras-vae evaluate --run-dir runs/mine
    keras-vae compare runs/mine runs/other
    keras-vae export --run-dir runs/mine --name mine
    keras-vae serve exported/mine
    keras-vae benchmark --help        (in a checkout: python -m benchmarks)

Every option is declared and checked here, before TensorFlow is imported: help
is quick, and a bad value is refused in one line before anything is written.
A job's module is imported only to run it. Errors print as one line; `--debug`
shows the traceback instead.
"""

import argparse
import dataclasses
import importlib
import os
import re
import subprocess
import sys
import tempfile

from keras_vae.files import check_folder_name
from keras_vae.likelihood_protocols import PROTOCOLS
from keras_vae.run_config import CHOICES, FIELD_HELP, RunConfig
from keras_vae_inference.bundle import VARIANTS

PROG = "keras-vae"
# Each job, its one-line summary, and the function that declares its options.
JOBS = {}


def job(name, summary):
    """Registers the options of the job `name` (a module of this package)."""

    def register(declare):
        JOBS[name] = (summary, declare)
        return declare

    return register


def positive_int(text):
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def bundle_name(text):
    """argparse type: a bundle's name, one folder name."""
    try:
        return check_folder_name(text, "bundle name")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


@job("train", "train a model and write its run folder (resumes an interrupted run)")
def _train(parser):
    parser.add_argument("--config", help="TOML file of settings; options given here override it")
    parser.add_argument("--run-dir", default="runs/default", help="the run folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument(
        "--fresh", action="store_true", help="discard an interrupted run instead of resuming it"
    )
    settings = parser.add_argument_group("settings (default: the config file's, else as shown)")
    for field in dataclasses.fields(RunConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = _value_type(field)
        text = FIELD_HELP[field.name]
        if field.default is not None and "(default:" not in text:
            text += f" (default: {field.default})"
        if kind is bool:
            settings.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            settings.add_argument(
                flag,
                type=kind,
                nargs=2 if field.type == list | None else None,
                default=None,
                choices=CHOICES.get(field.name),
                help=text,
            )


def _train_run_config(args):
    """Builds the run's `RunConfig` from the config file and the options (`args.run_config`);
    a bad value raises `ValueError` before TensorFlow is imported."""
    config = RunConfig.from_file(args.config) if args.config else RunConfig()
    changes = {
        key: value
        for key, value in vars(args).items()
        if key in RunConfig.field_names() and value is not None
    }
    args.run_config = config.replace(**changes)


@job("evaluate", "evaluate a run on its test set: ELBO, IWAE likelihood, pictures, report")
def _evaluate(parser):
    parser.add_argument("--run-dir", default="runs/default", help="the VAE's run folder")
    parser.add_argument("--autoencoder-run", help="an autoencoder run folder to compare with")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="quick",
        help="the IWAE estimate's settings: quick (k=1000 on the first 2,000 test images) or "
        "published (the likelihood tables': k=5000 on the whole test set)",
    )
    parser.add_argument(
        "--k", type=positive_int, help="importance samples per image (default: the protocol's)"
    )
    parser.add_argument(
        "--iwae-examples",
        type=positive_int,
        help="test images for IWAE, the first ones (default: the protocol's)",
    )
    parser.add_argument(
        "--interpolate",
        nargs=2,
        metavar=("FROM", "TO"),
        help="two class names to interpolate between, e.g. 2 7 on MNIST "
        "(default: the first test image and the first of another class)",
    )


@job("compare", "compare evaluated runs' likelihoods image by image, against the first run")
def _compare(parser):
    parser.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="evaluated run folders, the baseline first"
    )


@job("export", "export a run's decoder and encoder as a verified SavedModel + ONNX bundle")
def _export(parser):
    parser.add_argument("--run-dir", default="runs/default", help="training run folder")
    parser.add_argument("--name", type=bundle_name, default="default", help="bundle name")
    parser.add_argument("--output-dir", default="exported", help="where bundles go")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing bundle and all its versions (default: add the next version)",
    )
    parser.add_argument(
        "--variants", nargs="*", default=[], choices=VARIANTS, help="smaller decoders to add"
    )


@job("preset", "write a run's model as a preset folder that VAE.from_preset loads")
def _preset(parser):
    parser.add_argument("--run-dir", default="runs/default", help="trained run folder")
    parser.add_argument("--output", required=True, help="the preset folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")


@job("data", "prepare a dataset for offline use and print where it is")
def _data(parser):
    parser.add_argument(
        "name", help="dataset name: fashion_mnist, mnist, noto_emoji or another TFDS dataset"
    )
    parser.add_argument("--data-dir", help="TFDS data folder (default: TFDS' own)")
    parser.add_argument("--idx-dir", help="folder of MNIST-format IDX files to build it from")


# What a job builds from several options at once, before it is imported; a
# `ValueError` is reported as a usage error.
PREPARE = {"train": _train_run_config}


class _HelpWithDefaults(argparse.HelpFormatter):
    """Adds each option's default to its help, where it has one worth showing."""

    HIDDEN = (None, False, [], argparse.SUPPRESS)

    def _get_help_string(self, action):
        text = action.help or ""
        shown = "(default:" in text or "%(default)" in text
        if action.option_strings and not shown and action.default not in self.HIDDEN:
            text += " (default: %(default)s)"
        return text


def build_parser():
    """The `keras-vae` parser, with one subparser per job (serve is its own).

    Returns:
        A tuple `(parser, {job: subparser})`.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Variational autoencoders for Keras: train, evaluate, export, serve.",
        epilog=f"Run '{PROG} JOB --help' for a job's options.",
    )
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    subparsers = {}
    for name, (summary, declare) in JOBS.items():
        subparser = subparsers[name] = jobs.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            formatter_class=_HelpWithDefaults,
        )
        declare(subparser)
        subparser.add_argument(
            "--debug", action="store_true", help="show the traceback of an error"
        )
    jobs.add_parser("serve", help="serve a bundle over HTTP (TF Serving REST and Open Inference)")
    jobs.add_parser("benchmark", help="in a checkout: measure speed (python -m benchmarks)")
    return parser, subparsers


def main(argv=None):
    """Runs `keras-vae JOB [options]`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        # The server is keras-vae-inference's, with its own options.
        from keras_vae_inference import server

        return server.main(argv[1:], prog=f"{PROG} serve")
    if argv[:1] == ["benchmark"]:
        return _benchmark(argv[1:])
    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    subparser = subparsers[args.job]
    try:
        PREPARE.get(args.job, lambda args: None)(args)
    except ValueError as error:
        subparser.error(str(error))
    try:
        _start_tensorflow(f"{__package__}.{args.job}").run(args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.job}: interrupted.", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"{PROG} {args.job}: error: {_one_line(error)}", file=sys.stderr)
        print("(run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


# The benchmarks lie beside this package in a checkout; the wheel has none.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark(argv):
    """Runs `python -m benchmarks ARGV` of the checkout this package is in; returns its status."""
    if not os.path.isfile(os.path.join(CHECKOUT, "benchmarks", "__main__.py")):
        print(
            f"{PROG} benchmark: the benchmarks are not installed with keras-vae. Run them "
            "from a checkout of its repository: `make bench`, or `python -m benchmarks --help`.",
            file=sys.stderr,
        )
        return 2
    path = os.pathsep.join(filter(None, [CHECKOUT, os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "benchmarks", *argv]
    return subprocess.run(command, env={**os.environ, "PYTHONPATH": path}).returncode


def run_module(module_name):
    """Runs `python -m pipelines.<job> [options]` as `keras-vae <job> [options]`, then exits.

    Args:
        module_name: the job module's name, `pipelines.<job>`.
    """
    sys.exit(main([module_name.rsplit(".", 1)[1], *sys.argv[1:]]))


# TensorFlow's start-up notices on a machine without a GPU. Its C++ logging
# writes them before it reads TF_CPP_MIN_LOG_LEVEL, so they are filtered here.
_START_NOTICES = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"),
)
# cuInit fails where there is no driver, which the notices above said; with a
# driver, the same line is a real error and is kept.
_NO_DRIVER_ERROR = re.compile(r"cuda_platform\.cc:\d+\] failed call to cuInit")


def _start_tensorflow(job_module):
    """Imports a job's module (and TensorFlow) and lists the devices, without
    TensorFlow's start-up notices; every other line it writes is kept."""
    # Level 1 drops TensorFlow's C++ INFO lines (the CPU feature notice).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    terminal = sys.stderr.isatty()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            module = importlib.import_module(job_module)
            import tensorflow as tf

            tf.config.list_physical_devices()
            if "tensorflow_datasets" in sys.modules and not terminal:
                # Its progress bars redraw one line: unreadable in a log file.
                sys.modules["tensorflow_datasets"].disable_progress_bar()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            no_driver = any(_START_NOTICES[1].search(line) for line in lines)
            for line in lines:
                notice = any(pattern.search(line) for pattern in _START_NOTICES)
                if not notice and not (no_driver and _NO_DRIVER_ERROR.search(line)):
                    sys.stderr.write(line)
    return module


def _one_line(error):
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _value_type(field):
    """The type of a config field's values: `int` for `int | None`, etc.

    The one list field, `image_size`, holds integers."""
    if field.type == list | None:
        return int
    for kind in (bool, int, float):
        if field.type is kind or kind in getattr(field.type, "__args__", ()):
            return kind
    return str
