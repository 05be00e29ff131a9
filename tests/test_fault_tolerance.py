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
from test_data import write_dataset
from test_multi_worker import prototype_split

import keras_vae
from keras_vae.callbacks import BackupCheckpoint, NonFiniteLossError, StopOnNonFiniteLoss
from pipelines.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    source = write_dataset(folder / "idx", prototype_split(1024, 0), prototype_split(64, 1))
    from keras_vae.data import dataset_builder

    dataset_builder("mnist", data_dir=str(folder / "tfds"), source_dir=str(source))
    return {"dataset": "mnist", "idx_dir": str(source), "data_dir": str(folder / "tfds")}


def wait_for(condition, timeout, process):
    """Polls `condition` until it holds; fails if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(toy_data, tmp_path):
    config = TrainConfig(preset="keras_io_mnist", epochs=12, batch_size=32,
                         max_test_examples=64, **toy_data)  # fmt: skip
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "pipelines.train", "--run-dir", str(run_dir)] + [
        f"--{key.replace('_', '-')}={value}"
        for key, value in json.loads(json.dumps(config.__dict__)).items()
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


def small_vae():
    keras.utils.set_random_seed(0)
    return keras_vae.VAE.from_preset("keras_io_mnist", seed=0)


def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    vae = small_vae()
    vae.compile(optimizer="adam")
    images = (prototype_split(128, 0)[0][..., None] / 255).astype("float32")

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                bias = self.model.decoder.get_layer("params").bias
                bias.assign(np.full(bias.shape, np.inf, "float32"))

    backup = BackupCheckpoint(tmp_path / "backup")
    with pytest.raises(NonFiniteLossError, match=r"epoch 3, by step 1.*after epoch 2.*untouched"):
        vae.fit(images, batch_size=32, epochs=5, verbose=0,
                callbacks=[backup, StopOnNonFiniteLoss(backup), Poison()])  # fmt: skip
    assert backup.latest() == {"epoch": 2, "weights": "epoch-0002.weights.h5"}
    restored = small_vae()
    restored.compile(optimizer="adam")
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(tmp_path / "backup" / "epoch-0002.weights.h5")
    assert all(np.all(np.isfinite(w)) for w in restored.get_weights())


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    vae = small_vae()
    vae.compile(optimizer="adam")
    images = (prototype_split(64, 0)[0][..., None] / 255).astype("float32")
    backup = BackupCheckpoint(tmp_path / "backup")
    vae.fit(images, batch_size=32, epochs=1, verbose=0, callbacks=[backup])
    # fit removes the backup when it finishes; make one by hand, then break the next.
    backup.set_model(vae)
    backup.on_epoch_end(0)
    original_save = vae.save_weights

    def dies_half_way(path, overwrite=True):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt("killed")

    vae.save_weights = dies_half_way
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    vae.save_weights = original_save
    assert backup.latest() == {"epoch": 1, "weights": "epoch-0001.weights.h5"}
    fresh = small_vae()
    fresh.compile(optimizer="adam")
    resumer = BackupCheckpoint(tmp_path / "backup")
    resumer.set_model(fresh)
    resumer.on_train_begin()
    assert resumer.restored_epoch == 1
    for restored, saved in zip(fresh.get_weights(), vae.get_weights(), strict=True):
        np.testing.assert_array_equal(restored, saved)


def test_non_finite_input_data_is_reported_with_its_position():
    vae = small_vae()
    vae.compile(optimizer="adam")
    images = (prototype_split(64, 0)[0][..., None] / 255).astype("float32")
    images[37, 3, 4, 0] = np.nan  # batch 3 (1-based) of 16, position 5
    with pytest.raises(Exception, match=r"(?s)training step.*3.*examples.*\[5\]"):
        vae.fit(images, batch_size=16, epochs=1, verbose=0, shuffle=False)


def test_a_changed_config_does_not_resume_silently(toy_data, tmp_path):
    partial = tmp_path / ".run.partial"
    partial.mkdir()
    (partial / "config.json").write_text(
        json.dumps({**TrainConfig(**toy_data).__dict__, "seed": 99})
    )
    with pytest.raises(ValueError, match=r"interrupted run with other settings \(seed\).*--fresh"):
        train(TrainConfig(**toy_data), tmp_path / "run")


def test_mixed_precision_keeps_sampling_kl_and_likelihood_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        vae = small_vae()
        vae.compile(optimizer="adam")
        images = (prototype_split(64, 0)[0][..., None] / 255).astype("float32")
        history = vae.fit(images, batch_size=32, epochs=2, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
    convolutions = [c for c in vae.encoder.layers if isinstance(c, keras.layers.Conv2D)]
    assert convolutions and all(c.compute_dtype == "float16" for c in convolutions)
    for layer in (vae.sampler, vae.likelihood, vae.encoder.get_layer("mean"),
                  vae.decoder.get_layer("params")):  # fmt: skip
        assert layer.compute_dtype == "float32", layer.name
    assert np.all(np.isfinite(history["loss"])) and history["loss"][1] < history["loss"][0]
