import json
import re
import shutil

import numpy as np
import pytest

from keras_vae.run import RunError
from keras_vae.run_config import RunConfig
from pipelines.train import train


def test_evaluation_report_of_a_real_run(real_run, fashion_mnist_data_dir, tmp_path):
    from pipelines.evaluate import evaluate_run

    run_dir, summary = real_run
    autoencoder_config = RunConfig(
        model="autoencoder", epochs=1, max_train_examples=1280, max_test_examples=1000,
        data_dir=fashion_mnist_data_dir,
    )  # fmt: skip
    autoencoder_summary = train(autoencoder_config, tmp_path / "ae", verbose=0)
    assert "kl_loss" not in autoencoder_summary.test

    report = evaluate_run(run_dir, tmp_path / "ae", k=20, iwae_examples=300)
    assert report["test_examples"] == 1000
    # The summary of training and the report measure the same fixed test set
    # with the same noise: the same negative ELBO.
    for name in ("loss", "reconstruction_loss", "kl_loss"):
        assert report[name if name != "loss" else "negative_elbo"] == pytest.approx(
            summary.test[name], abs=0.01
        )
    assert report["test_set"] == summary.test_set
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
    protocol = report["protocol"]
    assert not protocol["published"] and (protocol["k"], protocol["examples"]) == (20, 300)
    assert (protocol["epochs"], protocol["train_examples"]) == (2, 6400)
    assert protocol["training_seconds"] == pytest.approx(sum(summary.epoch_seconds))
    assert "Not the published tables' protocol" in markdown


def test_evaluation_refuses_an_autoencoder_run_and_a_missing_one(real_run, tmp_path):
    from pipelines.evaluate import evaluate_run

    run_dir, _ = real_run
    with pytest.raises(RunError, match="nowhere.*is missing"):
        evaluate_run(run_dir, tmp_path / "nowhere")
    autoencoder_dir = tmp_path / "ae"
    autoencoder_dir.mkdir()
    (autoencoder_dir / "model.keras").write_bytes((run_dir / "model.keras").read_bytes())
    summary = json.loads((run_dir / "history.json").read_text())
    summary["config"]["model"] = "autoencoder"
    (autoencoder_dir / "history.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="Expected the run folder of a VAE.*autoencoder"):
        evaluate_run(autoencoder_dir)
    assert not (autoencoder_dir / "report").exists()


@pytest.mark.parametrize(("k", "examples"), [(0, 10), (5, 0), (2.5, 10)])
def test_evaluation_settings_are_checked_before_any_work(k, examples, tmp_path):
    from pipelines.evaluate import evaluate_run

    with pytest.raises(ValueError, match="to be a positive integer"):
        evaluate_run(tmp_path / "nowhere", k=k, iwae_examples=examples)


@pytest.mark.training
def test_a_run_on_unlabelled_images_is_evaluated(tmp_path):
    from PIL import Image

    from pipelines.evaluate import evaluate_run

    rng = np.random.default_rng(0)
    for split, count in (("train", 32), ("test", 8)):
        (tmp_path / "images" / split).mkdir(parents=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / split / f"{index}.png")
    config = RunConfig(
        dataset=str(tmp_path / "images"), binarize=False, likelihood="gaussian", epochs=1,
        batch_size=8, preset="mlp_28",
    )  # fmt: skip
    train(config, tmp_path / "run", verbose=0)
    report = evaluate_run(tmp_path / "run", k=2, iwae_examples=4)
    assert report["interpolation"]["from"] == "test image 1"
    assert report["gaussian"]["scale_learned"]
    pictures = tmp_path / "run" / "report"
    assert {"latent_space.png", "interpolation.png", "interpolation.gif"} <= {
        path.name for path in pictures.iterdir()
    }


@pytest.mark.training
def test_the_published_protocol_from_the_command_line(tmp_path, capsys):
    from keras_vae.likelihood_protocols import PUBLISHED_K
    from pipelines.cli import main

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (48, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "grey.npz", x_train=grey[:40], x_test=grey[40:])
    config = RunConfig(
        dataset=str(tmp_path / "grey.npz"), preset="mlp_28", epochs=1, batch_size=8,
        validation_examples=8,
    )  # fmt: skip
    train(config, tmp_path / "run", verbose=0)
    main(["evaluate", "--run-dir", str(tmp_path / "run"), "--protocol", "published"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    protocol = report["protocol"]
    assert protocol["published"]
    assert (
        (protocol["k"], protocol["examples"])
        == (PUBLISHED_K, 8)
        == (report["iwae"]["k"], report["iwae"]["examples"])
    )
    assert (protocol["train_examples"], protocol["validation_examples"]) == (32, 8)
    assert protocol["test_set"].endswith("8 images, binarised once (seed 0)")
    assert "This is the protocol of the published likelihood tables" in capsys.readouterr().out
    assert "This is the protocol" in (tmp_path / "run" / "report.md").read_text()
    estimates = np.load(tmp_path / "run" / "log_likelihoods.npy")
    assert estimates.shape == (8,)
    assert -estimates.mean() == pytest.approx(report["iwae"]["negative_log_likelihood"])

    # Runs compare image by image; runs evaluated otherwise are refused.
    shutil.copytree(tmp_path / "run", tmp_path / "other")
    main(["compare", str(tmp_path / "run"), str(tmp_path / "other")])
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 4 and table[-1].endswith("| +0.00 ± 0.00 |")
    main(["evaluate", "--run-dir", str(tmp_path / "other"), "--k", "3"])
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "run"), str(tmp_path / "other")]) == 1
    assert "Received: k 3 in" in capsys.readouterr().err


def test_progress_speaks_early_then_once_per_tenth(capsys):
    from pipelines.evaluate import _Progress

    progress = _Progress(first_after=0.0)
    for done in range(1, 101):
        progress(done, 100)
    lines = capsys.readouterr().out.splitlines()
    # Once at once (the first call), then at 10, 20, ... 90; never at the end.
    assert [line.split()[0] for line in lines] == ["1", *map(str, range(10, 100, 10))]
    assert all("of 100 images" in line and "s left" in line for line in lines)
