import csv
import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.train import TrainConfig, execution_steps, main, train


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, fashion_mnist_data_dir):
    """A VAE trained briefly on real Fashion-MNIST: (run folder, summary)."""
    config = TrainConfig(
        epochs=2, max_train_examples=6400, max_test_examples=1000, data_dir=fashion_mnist_data_dir
    )
    run_dir = tmp_path_factory.mktemp("runs") / "vae"
    return run_dir, train(config, run_dir, verbose=0)


@pytest.mark.slow
def test_short_real_training_run_lowers_the_test_loss(real_run):
    run_dir, summary = real_run

    # An untrained decoder predicts p = 0.5 for every pixel: 784 ln 2 = 543.4 nats.
    losses = summary["history"]["val_loss"]
    assert losses[0] < 784 * np.log(2) - 100
    assert losses[1] < losses[0]
    test = summary["test"]
    assert test["loss"] == pytest.approx(test["reconstruction_loss"] + test["kl_loss"], rel=1e-6)

    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("report")) == [
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
    assert 50 % summary["steps_per_execution"] == 0
    assert int(model.optimizer.iterations.numpy()) == 2 * 50


def test_steps_per_execution_divides_the_epoch():
    assert execution_steps(468, 16) == 13
    assert execution_steps(50, 16) == 10
    assert execution_steps(7, 16) == 7
    assert execution_steps(13, 4) == 1
    assert execution_steps(96, 1) == 1
    with pytest.raises(ValueError, match="steps_per_execution"):
        TrainConfig(steps_per_execution=0).validate()


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


def test_kl_schedules_from_the_config():
    from pipelines.train import _kl_annealing

    assert _kl_annealing(TrainConfig(), 100) is None
    linear = _kl_annealing(TrainConfig(kl_schedule="linear", kl_warmup_epochs=2.5, beta=0.5), 100)
    assert linear.beta_at(125) == pytest.approx(0.25) and linear.beta_at(250) == 0.5
    cyclical = _kl_annealing(TrainConfig(kl_schedule="cyclical", kl_warmup_epochs=1), 100)
    assert cyclical.beta_at(25) == pytest.approx(0.5) and cyclical.beta_at(100) == 0.0
    with pytest.raises(ValueError, match="Unknown kl_schedule 'cosine'"):
        TrainConfig(kl_schedule="cosine").validate()
    with pytest.raises(ValueError, match="Unknown model 'gan'"):
        TrainConfig(model="gan").validate()


@pytest.mark.slow
def test_evaluation_report_of_a_real_run(real_run, fashion_mnist_data_dir, tmp_path):
    from pipelines.evaluate import evaluate_run

    run_dir, summary = real_run
    autoencoder_config = TrainConfig(
        model="autoencoder", epochs=1, max_train_examples=1280, max_test_examples=1000,
        data_dir=fashion_mnist_data_dir,
    )  # fmt: skip
    autoencoder_summary = train(autoencoder_config, tmp_path / "ae", verbose=0)
    assert "kl_loss" not in autoencoder_summary["test"]

    report = evaluate_run(run_dir, tmp_path / "ae", k=20, iwae_examples=300)
    assert report["test_examples"] == 1000
    assert report["negative_elbo"] == pytest.approx(
        report["reconstruction_loss"] + report["kl_loss"], rel=1e-6
    )
    # The k=20 bound is tighter than the single-sample ELBO, and both are far below
    # the 543 nats of a model that ignores its input.
    assert (
        report["iwae"]["negative_log_likelihood"] < report["negative_elbo"] < 784 * np.log(2) - 100
    )
    assert report["iwae"]["bits_per_dim"] == pytest.approx(
        report["iwae"]["negative_log_likelihood"] / (784 * np.log(2))
    )
    assert 0 < report["active_units"] <= report["latent_dim"] == 32
    assert report["autoencoder"]["test_reconstruction_loss"] > 0
    markdown = (run_dir / "report.md").read_text()
    for picture in re.findall(r"\]\((report/[^)]+)\)", markdown):
        assert (run_dir / picture).stat().st_size > 0, picture
    assert "manifold" not in markdown  # 32 latent dimensions: no 2-D manifold
    assert json.loads((run_dir / "report.json").read_text())["iwae"]["k"] == 20


@pytest.mark.slow
def test_export_of_a_real_run(real_run, tmp_path):
    from pipelines.export import export_run

    run_dir, summary = real_run
    manifest = export_run(run_dir, tmp_path / "bundle", variants=["float16"])
    assert manifest["training"]["test_metrics"] == summary["test"]
    assert manifest["training"]["dataset"] == "fashion_mnist"
    assert max(manifest["parity"]["decoder"].values()) <= 1e-4
    with pytest.raises(FileNotFoundError, match="finished training run"):
        export_run(tmp_path / "nowhere", tmp_path / "other")
