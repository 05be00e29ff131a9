"""Every model class and every preset survives a `.keras` round trip unchanged."""

import numpy as np
import pytest

import keras_vae
from keras_vae.presets import PRESETS, is_two_level
from tests.support.model_saving import run_model_saving_test


def _images(shape, n=4):
    return np.random.default_rng(0).uniform(size=(n, *shape)).astype("float32")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_round_trips_through_a_keras_file(preset, tmp_path):
    model_class = keras_vae.HierarchicalVAE if is_two_level(preset) else keras_vae.VAE
    model = model_class.from_preset(preset)
    run_model_saving_test(model, _images(PRESETS[preset]["input_shape"]), tmp_path=tmp_path)


@pytest.mark.parametrize(
    "model_class, options",
    [(keras_vae.Autoencoder, {}), (keras_vae.ConditionalVAE, {"num_classes": 3})],
    ids=["Autoencoder", "ConditionalVAE"],
)
def test_every_model_class_round_trips_through_a_keras_file(model_class, options, tmp_path):
    model = model_class.from_preset("keras_io_mnist", **options)
    labels = np.array([0, 1, 2, 1]) if options else None
    run_model_saving_test(model, _images((28, 28, 1)), labels, tmp_path=tmp_path)
