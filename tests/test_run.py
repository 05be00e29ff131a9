import json
from pathlib import Path

import numpy as np
import pytest

from keras_vae.presets import PRESETS
from keras_vae.run import RunData, RunError, RunFolder, build_model, load_run
from keras_vae.run_config import RunConfig
from tests.support.run_summaries import a_summary
from tests.support.toy_data import random_split, write_idx_dataset


def test_config_file_names_and_types_are_checked(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('preset = "mlp_28"\nepochs = 3\nlearning_rate = 1\n')
    assert RunConfig.from_file(path) == RunConfig(preset="mlp_28", epochs=3, learning_rate=1)
    cases = {
        "epoch = 3\n": r"Unknown keys in .*config.toml: \['epoch'\]",
        'epochs = "3"\n': r"Expected epochs in .*config.toml to be int. Received: '3'",
        "binarize = 1\n": "Expected binarize .* to be bool. Received: 1",
        "latent_dim = true\n": "Expected latent_dim .* to be int or None. Received: True",
        "epochs = [\n": "is not valid TOML",
        "epochs = 0\n": "Expected epochs to be a positive integer. Received: 0",
        'preset = "nope"\n': "Unknown preset 'nope'. Expected one of",
        'model = "autoencoder"\nkl_schedule = "linear"\n': "autoencoder has no KL term",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            RunConfig.from_file(path)


def test_changes_that_a_resumed_run_may_make():
    config = RunConfig()
    assert config.changes_from(config.replace(epochs=20, steps_per_execution=4)) == []
    assert config.changes_from(config.replace(seed=3, batch_size=64)) == ["batch_size", "seed"]
    assert config.changes_from({**config.to_dict(), "seed": 3}) == ["seed"]


def test_models_built_from_the_config():
    vae = build_model(RunConfig(preset="mlp_28", latent_dim=4, beta=0.5))
    assert (vae.name, vae.latent_dim, float(vae.beta.numpy())) == ("vae_mlp_28", 4, 0.5)
    autoencoder = build_model(RunConfig(model="autoencoder", preset="mlp_28"))
    assert autoencoder.name == "autoencoder_mlp_28" and not hasattr(autoencoder, "beta")


def test_the_test_set_is_fixed_by_the_test_seed_alone(tmp_path):
    source = write_idx_dataset(tmp_path / "idx", random_split(64, 0), random_split(48, 1))
    grey_levels = {"dataset": "mnist", "idx_dir": str(source), "data_dir": str(tmp_path / "tfds")}
    base = RunConfig(batch_size=16, max_test_examples=40, **grey_levels)
    test = RunData(base).test_set
    assert test.images.shape == (40, 28, 28, 1) and set(np.unique(test.images)) == {0.0, 1.0}
    assert test.description == "mnist test, 40 images, binarised once (seed 0)"
    # Neither the training seed nor the batch size changes it; the test seed does.
    same = RunData(base.replace(seed=5, batch_size=7)).test_set
    np.testing.assert_array_equal(same.images, test.images)
    fewer = RunData(base.replace(max_test_examples=10)).test_set
    np.testing.assert_array_equal(fewer.images, test.images[:10])
    other = RunData(base.replace(test_seed=1)).test_set
    assert not np.array_equal(other.images, test.images)


def test_a_validation_split_is_held_out_of_training(toy_idx_data):
    config = RunConfig(batch_size=100, validation_examples=224, **toy_idx_data)
    data = RunData(config)
    assert data.steps_per_epoch == (1024 - 224) // 100
    assert len(data.validation_set.images) == 224
    assert data.validation_set.description.startswith("mnist train[800:], 224 images")
    assert RunData(config.replace(validation_examples=0)).validation_set is None
    with pytest.raises(ValueError, match="validation_examples below the 1024"):
        _ = RunData(config.replace(validation_examples=1024)).steps_per_epoch


def test_the_run_folder_and_its_work_folder():
    folder = RunFolder("runs/default")
    assert folder.model.as_posix() == "runs/default/model.keras"
    assert folder.work_folder().path.as_posix() == "runs/.default.partial"
    assert folder.work_folder("worker-1").backup.as_posix() == "runs/.default.worker-1/backup"


def test_load_run_names_what_is_missing_or_unreadable(tmp_path):
    with pytest.raises(RunError, match="model.keras is missing.*finished training run"):
        load_run(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "history.json").write_text("{")
    with pytest.raises(RunError, match="history.json is not a training summary.*again"):
        load_run(tmp_path)
    record = json.loads(a_summary(config=RunConfig(epochs=3)).to_json())
    (tmp_path / "history.json").write_text(json.dumps({**record, "config": {"epochs": "ten"}}))
    with pytest.raises(RunError, match="Expected epochs"):
        load_run(tmp_path)
    (tmp_path / "history.json").write_text(json.dumps(record))
    assert load_run(tmp_path).config == RunConfig(epochs=3)


def test_a_damaged_model_file_is_named(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 half a zip")
    (tmp_path / "history.json").write_bytes(a_summary().to_json())
    with pytest.raises(RunError, match=r"model.keras cannot be loaded.*train the run again"):
        _ = load_run(tmp_path).model


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learning_rate": -1.0}, "learning_rate to be a positive number"),
        ({"beta": float("nan")}, "beta to be a non-negative number. Received: nan"),
        ({"batch_size": -5}, "batch_size to be a positive integer. Received: -5"),
        ({"latent_dim": 0}, "latent_dim to be a positive integer. Received: 0"),
    ],
)
def test_settings_out_of_range_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        RunConfig().replace(**changes)


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parent.parent / "pipelines" / "configs").glob("*.toml")),
    ids=lambda path: path.name,
)  # fmt: skip
def test_every_shipped_config_is_valid(path):
    config = RunConfig.from_file(path)
    assert config.epochs >= 1 and config.preset in PRESETS
