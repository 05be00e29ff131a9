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

from keras_vae.run import RunConfig
from pipelines.train import train

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout, process):
    """Polls `condition` until it holds; fails if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(toy_idx_data, tmp_path):
    config = RunConfig(preset="keras_io_mnist", epochs=12, batch_size=32,
                         max_test_examples=64, **toy_idx_data)  # fmt: skip
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "pipelines.train", "--run-dir", str(run_dir)] + [
        f"--{key.replace('_', '-')}={value}"
        for key, value in config.to_dict().items()
        if value is not None and not isinstance(value, bool)
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    pointer = tmp_path / ".killed.partial" / "backup" / "latest.json"

    def epochs_done():
        try:
            return json.loads(pointer.read_text())["epoch"]
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(lambda: epochs_done() >= 3, timeout=240, process=process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not run_dir.exists()
    killed_at = epochs_done()
    assert 3 <= killed_at < 12

    restarted = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    summary = json.loads((run_dir / "history.json").read_text())
    assert summary["resumed_from_epoch"] == killed_at
    assert len(summary["epoch_seconds"]) == 12 - killed_at  # only the missing epochs ran
    assert len(summary["history"]["loss"]) == 12
    assert not (tmp_path / ".killed.partial").exists()

    # Weights, optimizer state, sampling noise and data order all came back:
    # the result is the uninterrupted run's, bit for bit.
    uninterrupted = train(config, tmp_path / "straight", verbose=0)
    assert summary["weights_sha256"] == uninterrupted["weights_sha256"]
    model = keras.models.load_model(run_dir / "model.keras")
    assert np.all(np.isfinite(model.sample(4, seed=0)))


def test_a_changed_config_does_not_resume_silently(toy_idx_data, tmp_path):
    partial = tmp_path / ".run.partial"
    partial.mkdir()
    (partial / "config.json").write_text(
        json.dumps({**RunConfig(**toy_idx_data).to_dict(), "seed": 99})
    )
    with pytest.raises(ValueError, match=r"interrupted run with other settings \(seed\).*--fresh"):
        train(RunConfig(**toy_idx_data), tmp_path / "run")
