"""One saving test for every model class, as keras-hub's `run_model_saving_test`."""

import json

import keras
import numpy as np


def run_model_saving_test(model, images, labels=None, tmp_path=None):
    """Saves `model` as a `.keras` file, loads it in safe mode and checks it is the same model.

    The reloaded model must be of the same class with the same config and
    weights, and answer the NumPy API (`encode`, `reconstruct`, seeded `sample`)
    exactly as the original does.

    Args:
        model: a keras-vae model (`VAE`, `Autoencoder`, `ConditionalVAE`, ...), built.
        images: a few images of the model's shape, in [0, 1].
        labels: their labels, for a conditional model.
        tmp_path: the folder to save into.
    """
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    # As JSON: the file holds the config as JSON, where tuples come back as lists.
    assert _json(restored.get_config()) == _json(model.get_config())
    assert [w.path for w in restored.weights] == [w.path for w in model.weights]
    for saved, loaded in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy(), err_msg=saved.path)
    np.testing.assert_array_equal(
        restored.reconstruct(images, labels), model.reconstruct(images, labels)
    )
    for mine, theirs in zip(
        restored.encode(images, labels), model.encode(images, labels), strict=True
    ):
        np.testing.assert_array_equal(mine, theirs)
    if hasattr(model, "sampler"):
        sample_labels = None if labels is None else labels[:2]
        np.testing.assert_array_equal(
            restored.sample(2, seed=3, labels=sample_labels),
            model.sample(2, seed=3, labels=sample_labels),
        )


def _json(config):
    return json.dumps(config, sort_keys=True, default=repr)
