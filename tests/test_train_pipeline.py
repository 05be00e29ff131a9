import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.train import TrainConfig, main, train


@pytest.mark.slow
def test_short_real_training_run_lowers_the_test_loss(tmp_path, fashion_mnist_data_dir):
    config = TrainConfig(
        epochs=2,
        max_train_examples=6400,
        max_test_examples=1000,
        data_dir=fashion_mnist_data_dir,
    )
    run_dir = tmp_path / "run"
    summary = train(config, run_dir, verbose=0)

    # An untrained decoder predicts p = 0.5 for every pixel: 784 ln 2 = 543.4 nats.
    losses = summary["history"]["val_loss"]
    assert losses[0] < 784 * np.log(2) - 100
    assert losses[1] < losses[0]
    test = summary["test"]
    assert test["loss"] == pytest.approx(test["reconstruction_loss"] + test["kl_loss"], rel=1e-6)

    assert sorted(p.name for p in run_dir.iterdir()) == [
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

    model = keras.models.load_model(run_dir / "model.keras")
    assert model.sample(3, seed=0).shape == (3, 28, 28, 1)


def test_an_existing_run_folder_is_kept_unless_overwrite_is_asked(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        train(TrainConfig(), run_dir)
    assert (run_dir / "model.keras").read_bytes() == b"precious"


def test_a_failed_run_leaves_no_partial_folder(tmp_path):
    with pytest.raises(ValueError, match="Unknown preset"):
        train(TrainConfig(preset="nope", max_train_examples=10), tmp_path / "run", verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('preset = "mlp_28"\nepochs = 3\n')
    assert TrainConfig.from_file(path) == TrainConfig(preset="mlp_28", epochs=3)
    path.write_text("epoch = 3\n")
    with pytest.raises(ValueError, match=r"Unknown keys.*\['epoch'\]"):
        TrainConfig.from_file(path)
    with pytest.raises(SystemExit):
        main(["--epochs", "three"])
