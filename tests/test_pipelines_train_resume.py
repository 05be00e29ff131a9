"""A training run killed at chosen moments resumes; a changed config does not resume silently."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_vae.run_config import RunConfig
from keras_vae.run_summary import RunSummary
from pipelines.train import train

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout, process):
    """Polls `condition` until it holds; fails if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def kill_when(condition, command, env, timeout=240):
    """Starts the training command and SIGKILLs it as soon as `condition` holds."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(condition, timeout=timeout, process=process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.training
def test_a_run_killed_mid_training_and_at_its_end_resumes_where_it_stopped(toy_idx_data, tmp_path):
    config = RunConfig(preset="keras_io_mnist", epochs=12, batch_size=32,
                       max_test_examples=64, **toy_idx_data)  # fmt: skip
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "pipelines", "train", "--run-dir", str(run_dir)] + [
        f"--{key.replace('_', '-')}={value}"
        for key, value in config.to_dict().items()
        if value is not None and not isinstance(value, bool)
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    work = tmp_path / ".killed.partial"

    def epochs_done():
        try:
            return json.loads((work / "backup" / "latest.json").read_text())["epoch"]
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    kill_when(lambda: epochs_done() >= 3, command, env)
    assert not run_dir.exists()
    killed_at = epochs_done()
    assert 3 <= killed_at < 12

    # Killed again after the last epoch, while the model and pictures are written:
    # the last checkpoint is still there.
    kill_when(lambda: (work / "model.keras").exists(), command, env)
    assert not run_dir.exists() and epochs_done() == 12

    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    summary = RunSummary.from_json((run_dir / "history.json").read_text())
    assert summary.resumed_from_epoch == 12
    assert summary.epoch_seconds == []  # no epoch ran again
    assert len(summary.history["loss"]) == 12
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "straight") == ["killed"]
    assert "backup" not in {p.name for p in run_dir.iterdir()}

    # Weights, optimizer state, sampling noise and data order all came back:
    # the result is the uninterrupted run's, bit for bit.
    uninterrupted = train(config, tmp_path / "straight", verbose=0)
    assert summary.weights_sha256 == uninterrupted.weights_sha256
    model = keras.models.load_model(run_dir / "model.keras")
    assert np.all(np.isfinite(model.sample(4, seed=0)))


def test_a_changed_config_does_not_resume_silently(toy_idx_data, tmp_path):
    partial = tmp_path / ".run.partial"
    partial.mkdir()
    (partial / "config.json").write_text(
        json.dumps({**RunConfig(**toy_idx_data).to_dict(), "seed": 99})
    )
    (partial / "backup").mkdir()
    (partial / "backup" / "latest.json").write_text('{"epoch": 1, "weights": "w.h5"}')
    with pytest.raises(ValueError, match=r"interrupted run with other settings \(seed\).*--fresh"):
        train(RunConfig(**toy_idx_data), tmp_path / "run")
    assert (partial / "backup" / "latest.json").is_file()
