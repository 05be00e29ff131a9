import csv
import json
import math
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.run import RunError
from keras_vae.run_config import RunConfig
from pipelines.cli import main
from pipelines.train import execution_steps, train


def test_short_real_training_run_lowers_the_test_loss(real_run):
    run_dir, summary = real_run

    # An untrained decoder predicts p = 0.5 for every pixel: 784 ln 2 = 543.4 nats.
    losses = summary.history["val_loss"]
    assert losses[0] < 784 * np.log(2) - 100
    assert losses[1] < losses[0]
    test = summary.test
    assert test["loss"] == pytest.approx(test["reconstruction_loss"] + test["kl_loss"], rel=1e-6)

    # The training's files; the evaluation's (report*, log_likelihoods.npy) may be there
    # too when the evaluation tests ran first on this shared run.
    training_files = [
        p.name for p in run_dir.iterdir() if not p.name.startswith(("report", "log_likelihoods"))
    ]
    assert sorted(training_files) == [
        "history.csv",
        "history.json",
        "model.keras",
        "reconstructions.png",
        "samples.png",
        "tensorboard",
    ]
    assert json.loads((run_dir / "history.json").read_text())["test"] == test
    with open(run_dir / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["val_loss"]) for row in rows] == pytest.approx(losses, rel=1e-6)
    samples = tf.io.decode_png((run_dir / "samples.png").read_bytes()).numpy()
    assert samples.shape == (8 * 30 + 2, 8 * 30 + 2, 1) and samples.std() > 0
    pairs = tf.io.decode_png((run_dir / "reconstructions.png").read_bytes()).numpy()
    # 24 (original, binarised input, reconstruction) triplets, 6 per row.
    assert pairs.shape == (4 * 30 + 2, 18 * 30 + 2, 1)
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert any((run_dir / "tensorboard" / "images").glob("events.out.tfevents.*"))

    model = keras.models.load_model(run_dir / "model.keras")
    assert model.sample(3, seed=0).shape == (3, 28, 28, 1)
    # Several steps per execution, yet every epoch is exactly 6400 / 128 steps.
    assert 50 % summary.steps_per_execution == 0
    assert int(model.optimizer.iterations.numpy()) == 2 * 50


def test_steps_per_execution_divides_the_epoch():
    assert execution_steps(468, 16) == 13
    assert execution_steps(50, 16) == 10
    assert execution_steps(7, 16) == 7
    assert execution_steps(13, 4) == 1
    assert execution_steps(96, 1) == 1


def test_an_existing_run_folder_is_kept_unless_overwrite_is_asked(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        train(RunConfig(), run_dir)
    assert (run_dir / "model.keras").read_bytes() == b"precious"


def test_a_failed_run_leaves_no_partial_folder(tmp_path):
    with pytest.raises(ValueError, match="Unknown preset"):
        train(RunConfig(preset="nope"), tmp_path / "run", verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_kl_schedules_from_the_config():
    from pipelines.train import _kl_annealing

    assert _kl_annealing(RunConfig(), 100) is None
    linear = _kl_annealing(RunConfig(kl_schedule="linear", kl_warmup_epochs=2.5, beta=0.5), 100)
    assert linear.beta_at(125) == pytest.approx(0.25) and linear.beta_at(250) == 0.5
    cyclical = _kl_annealing(RunConfig(kl_schedule="cyclical", kl_warmup_epochs=1), 100)
    assert cyclical.beta_at(25) == pytest.approx(0.5) and cyclical.beta_at(100) == 0.0
    with pytest.raises(ValueError, match="Unknown kl_schedule 'cosine'"):
        RunConfig(kl_schedule="cosine").validate()
    with pytest.raises(ValueError, match="Unknown model 'gan'"):
        RunConfig(model="gan").validate()


def test_the_cli_parses_flags_over_the_config_file(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('preset = "mlp_28"\nepochs = 3\n')
    with pytest.raises(SystemExit):
        main(["train", "--epochs", "three"])
    with pytest.raises(SystemExit) as stop:
        main(["train", "--config", str(path), "--epochs", "0", "--run-dir", str(tmp_path / "run")])
    assert stop.value.code == 2
    assert "Expected epochs to be a positive integer" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def small_config(toy_idx_data, **changes):
    """One quick epoch of the keras.io network on the prototype images."""
    values = dict(preset="keras_io_mnist", epochs=1, batch_size=32, max_train_examples=64,
                  max_test_examples=32, **toy_idx_data)  # fmt: skip
    return RunConfig(**{**values, **changes})


def test_an_epoch_without_a_whole_batch_is_refused_before_anything_is_written(
    toy_idx_data, tmp_path
):
    config = small_config(toy_idx_data, max_train_examples=10, batch_size=128)
    with pytest.raises(ValueError, match="max_train_examples to be at least batch_size"):
        train(config, tmp_path / "run", verbose=0)
    # A training split smaller than one batch: 10 of the 1,024 toy examples are
    # left after the validation split.
    config = small_config(toy_idx_data, max_train_examples=None, validation_examples=1014,
                          batch_size=128)  # fmt: skip
    with pytest.raises(ValueError, match="at least one batch of 128.*Received: 10 examples"):
        train(config, tmp_path / "run", verbose=0)
    assert list(tmp_path.iterdir()) == []
    for run_dir in (tmp_path / "run" / "..", "."):
        with pytest.raises(ValueError, match="run folder's name"):
            train(config, run_dir, verbose=0)


@pytest.mark.training
def test_small_batches_train_and_draw_every_picture(toy_idx_data, tmp_path):
    summary = train(small_config(toy_idx_data, batch_size=16, max_test_examples=20),
                    tmp_path / "run", verbose=0)  # fmt: skip
    assert summary.history["loss"] and (tmp_path / "run" / "reconstructions.png").is_file()
    pairs = tf.io.decode_png((tmp_path / "run" / "reconstructions.png").read_bytes()).numpy()
    assert pairs.shape == (4 * 30 + 2, 18 * 30 + 2, 1)  # all 20 test images, 6 per row
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.training
def test_a_work_folder_without_a_checkpoint_is_started_afresh(toy_idx_data, tmp_path):
    # What a setup error used to leave: settings, but nothing trained.
    partial = tmp_path / ".run.partial"
    partial.mkdir()
    other = small_config(toy_idx_data, seed=99).to_dict()
    (partial / "config.json").write_text(json.dumps(other))
    summary = train(small_config(toy_idx_data), tmp_path / "run", verbose=0)
    assert summary.config.seed == 0 and summary.resumed_from_epoch == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.training
def test_a_damaged_checkpoint_names_the_file_and_the_fix(toy_idx_data, tmp_path):
    config = small_config(toy_idx_data)
    backup = tmp_path / ".run.partial" / "backup"
    backup.mkdir(parents=True)
    (tmp_path / ".run.partial" / "config.json").write_text(json.dumps(config.to_dict()))
    (backup / "latest.json").write_text('{"epoch": 1, "weights": "epoch-0001.weights.h5"}')
    (backup / "epoch-0001.weights.h5").write_bytes(b"half a file")
    with pytest.raises(RunError, match=r"epoch-0001.weights.h5 is missing or unreadable.*--fresh"):
        train(config, tmp_path / "run", verbose=0)
    (backup / "latest.json").write_text('{"epoch": 1, "weig')
    with pytest.raises(RunError, match=r"latest.json is unreadable.*--fresh"):
        train(config, tmp_path / "run", verbose=0)
    assert train(config, tmp_path / "run", fresh=True, verbose=0).resumed_from_epoch == 0


@pytest.mark.training
def test_a_finished_run_killed_before_its_move_is_moved_without_training(toy_idx_data, tmp_path):
    config = small_config(toy_idx_data)
    first = train(config, tmp_path / "done", verbose=0)
    # A complete work folder (summary written, settings removed) that a kill kept
    # from being moved into place; and the old run a finished swap leaves behind.
    (tmp_path / "done").rename(tmp_path / ".run.partial")
    assert train(config, tmp_path / "run", verbose=0) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    old = tmp_path / ".run.partial"
    old.mkdir()
    (old / "history.json").write_bytes(first.to_json())
    os.utime(old / "history.json", ns=(0, 0))
    second = train(config, tmp_path / "run", overwrite=True, verbose=0)
    assert second.resumed_from_epoch == 0 and second.epoch_seconds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_cosine_schedule_decays_the_learning_rate_to_zero_over_the_run():
    from keras_vae.run import build_optimizer

    config = RunConfig(learning_rate=0.002, learning_rate_schedule="cosine", epochs=4)
    optimizer = build_optimizer(config, steps_per_epoch=25)
    optimizer.build([])
    for step in (0, 30, 50, 99, 100, 130):
        optimizer.iterations.assign(step)
        expected = 0.002 * 0.5 * (1 + math.cos(math.pi * min(step, 100) / 100))
        assert float(optimizer.learning_rate) == pytest.approx(expected, abs=1e-7)
    assert float(build_optimizer(config.replace(learning_rate_schedule="constant"))
                 .learning_rate) == pytest.approx(0.002)  # fmt: skip


def test_the_printed_test_loss_adds_up_with_the_kl_weight_it_was_taken_at():
    from pipelines.train import loss_line
    from tests.support.run_summaries import a_summary

    def terms(line):
        loss, reconstruction, *kl = map(float, re.findall(r"\d+\.\d+|\d+(?= ×)", line))
        return loss, reconstruction, kl

    # Mid warm-up: the loss is reconstruction + beta × KL, beta from the last epoch.
    warming = a_summary(
        history={"loss": [3.0, 2.0], "beta": [0.01, 0.02]},
        test={"loss": 399.03 + 0.02 * 43.98, "reconstruction_loss": 399.03, "kl_loss": 43.98},
    )
    line = loss_line(warming)
    assert "= reconstruction 399.03 + 0.02 × KL 43.98." in line
    loss, reconstruction, (beta, kl) = terms(line)
    assert loss == pytest.approx(reconstruction + beta * kl, abs=0.01)
    # No schedule: the config's beta of 1, and the plain sum.
    line = loss_line(a_summary())
    assert line == "Test loss 1.50 nats per example = reconstruction 1.00 + KL 0.50."
    autoencoder = a_summary(test={"loss": 1.0, "reconstruction_loss": 1.0})
    assert loss_line(autoencoder).endswith("= reconstruction 1.00.")
