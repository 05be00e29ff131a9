"""The `keras-vae` command: help, refusals before any work, one-line errors."""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import JOBS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent

# Loads the command line and prints one job's help, reporting what it imported.
HELP_PROBE = """
import sys
from pipelines.cli import main
try:
    main([{job!r}, "--help"])
except SystemExit:
    pass
print("IMPORTED", "tensorflow" in sys.modules, "keras" in sys.modules)
"""


@pytest.mark.parametrize("job", sorted(JOBS))
def test_help_never_imports_tensorflow(job):
    done = subprocess.run(
        [sys.executable, "-c", HELP_PROBE.format(job=job)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"usage: keras-vae {job}" in done.stdout
    assert done.stdout.strip().endswith("IMPORTED False False")


def test_every_option_has_help_and_shows_its_choices_and_default():
    _, subparsers = build_parser()
    for name, subparser in subparsers.items():
        text = subparser.format_help()
        for action in subparser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            if action.choices:
                assert "{" + ",".join(action.choices) + "}" in text
            hidden = action.default in (None, False, [], argparse.SUPPRESS)
            if action.option_strings and not hidden and "(default:" not in action.help:
                assert f"(default: {action.default})" in " ".join(text.split()), (
                    f"{name} {action.option_strings[0]} hides its default {action.default!r}"
                )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--preset", "nope"], "invalid choice: 'nope'"),
        (["--batch-size", "0"], "Expected batch_size to be a positive integer. Received: 0"),
        (["--epochs", "0"], "Expected epochs to be a positive integer. Received: 0"),
        (
            ["--max-train-examples", "100", "--batch-size", "128"],
            "Expected max_train_examples to be at least batch_size",
        ),
        (["--learning-rate", "-1"], "Expected learning_rate to be a positive number"),
    ],
)
def test_bad_training_settings_are_refused_in_one_line_before_anything_is_written(
    arguments, message, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["train", "--run-dir", str(run_dir), *arguments])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert message in error[-1] and error[-1].startswith("keras-vae train: error:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.processes
def test_a_failing_job_prints_one_line_and_debug_shows_the_traceback(tmp_path):
    command = [sys.executable, "-m", "pipelines", "export", "--run-dir", str(tmp_path / "nowhere"),
               "--output-dir", str(tmp_path / "exported")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("keras-vae export:")]
    assert len(errors) == 1 and "nowhere" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "exported").exists()
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_a_run_refused_before_its_first_checkpoint_leaves_no_work_folder(toy_idx_data, tmp_path):
    run_dir = tmp_path / "run"
    # The option is free text; the model refuses the name when it is built.
    data = [f"--{key.replace('_', '-')}={value}" for key, value in toy_idx_data.items()]
    status = main(["train", "--run-dir", str(run_dir), "--likelihood", "poisson", *data])
    assert status == 1
    assert list(tmp_path.iterdir()) == []


def test_exporting_a_run_whose_model_file_is_damaged_names_the_file(real_run, tmp_path, capsys):
    run_dir, _ = real_run
    damaged = tmp_path / "run"
    shutil.copytree(run_dir, damaged)
    model = damaged / "model.keras"
    model.write_bytes(model.read_bytes()[:5000])
    status = main(["export", "--run-dir", str(damaged), "--output-dir", str(tmp_path / "out")])
    assert status == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-2].startswith(f"keras-vae export: error: {model} cannot be loaded")
    assert "damaged" in error[-2] and not (tmp_path / "out" / "default").exists()


@pytest.mark.processes
def test_each_job_module_run_with_python_m_is_the_keras_vae_job():
    runs = {
        job: subprocess.Popen([sys.executable, "-m", f"pipelines.{job}", "--help"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for job in sorted(JOBS)
    }  # fmt: skip
    for job, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        assert out.startswith(f"usage: keras-vae {job} "), out


def test_serve_hands_its_arguments_to_the_inference_server(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: keras-vae serve") and "--max-batch-rows" in text


# What TensorFlow, Keras and setuptools print that a normal run must not show.
NOISE = ("absl::InitializeLog", "Could not find cuda drivers", "cuInit", "cpu_feature_guard",
         "shuffle=True", "retracing", "is deprecated", "Traceback")  # fmt: skip


@pytest.mark.training
def test_a_logged_run_has_no_start_up_noise_and_no_progress_bar_redraws(toy_idx_data, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    run_dir = tmp_path / "run"
    data = [f"--{key.replace('_', '-')}={value}" for key, value in toy_idx_data.items()]
    jobs = [
        ["train", "--run-dir", str(run_dir), "--preset", "keras_io_mnist", "--epochs", "2",
         "--max-train-examples", "256", "--max-test-examples", "64", "--batch-size", "32", *data],
        ["evaluate", "--run-dir", str(run_dir), "--k", "10", "--iwae-examples", "64"],
        ["export", "--run-dir", str(run_dir), "--output-dir", str(tmp_path / "exported")],
    ]  # fmt: skip
    outputs = {}
    for job in jobs:
        done = subprocess.run([sys.executable, "-m", "pipelines", *job], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        noisy = [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)]
        assert not noisy, f"{job[0]} printed {noisy}"
        assert "\r" not in done.stdout and "\b" not in done.stdout
        outputs[job[0]] = done.stdout
    # One line per epoch, and each long evaluation step says when it starts and ends.
    assert re.search(r"^Epoch 2/2$", outputs["train"], re.M)
    assert len(re.findall(r" - loss: ", outputs["train"])) == 2
    assert "IWAE estimate, k=10, on 64 images ..." in outputs["evaluate"]
    assert outputs["evaluate"].count("done in") == 4
    assert outputs["export"].startswith("Exporting ")
