import ast
import inspect

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import presets


def test_keras_io_preset_has_the_example_architecture():
    vae = keras_vae.VAE.from_preset("keras_io_mnist")
    # The keras.io example's encoder has 69,076 weights and its decoder 65,089.
    assert vae.encoder.count_params() == 69_076
    assert vae.decoder.count_params() == 65_089
    assert vae.latent_dim == 2


def test_vanilla_vae_preset_has_the_reference_blocks():
    vae = keras_vae.VAE.from_preset("vanilla_vae_64")
    convs = [layer for layer in vae.encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [32, 64, 128, 256, 512]
    assert all(layer.strides == (2, 2) for layer in convs)
    assert vae.encoder.get_layer("mean").input.shape == (None, 2 * 2 * 512)
    transposed = [
        layer for layer in vae.decoder.layers if isinstance(layer, keras.layers.Conv2DTranspose)
    ]
    assert [layer.filters for layer in transposed] == [256, 128, 64, 32, 32, 3]
    assert [layer.strides for layer in transposed] == [(2, 2)] * 5 + [(1, 1)]
    assert vae.latent_dim == 128 and vae.image_shape == (64, 64, 3)
    images = vae.predict(np.random.default_rng(0).random((2, 64, 64, 3)), verbose=0)
    assert images.shape == (2, 64, 64, 3)
    assert images.min() >= 0.0 and images.max() <= 1.0


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_builds_and_decodes_to_its_image_shape(name):
    vae = keras_vae.VAE.from_preset(name, seed=0)
    assert vae.sample(2, seed=0).shape == (2,) + presets.PRESETS[name]["input_shape"]


def test_presets_are_plain_data():
    tree = ast.parse(inspect.getsource(presets))
    assert not [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert all(
        set(preset) == {"description", "architecture", "input_shape", "latent_dim",
                        "encoder", "decoder", "likelihood"}
        for preset in presets.PRESETS.values()
    )  # fmt: skip


def test_preset_changes_and_unknown_names():
    vae = keras_vae.VAE.from_preset("mlp_28", input_shape=(8, 6, 3), latent_dim=5, beta=0.5)
    assert (vae.image_shape, vae.latent_dim, float(vae.beta.numpy())) == ((8, 6, 3), 5, 0.5)
    assert vae.name == "vae_mlp_28"
    with pytest.raises(ValueError, match="Unknown preset.*'nope'"):
        keras_vae.VAE.from_preset("nope")
    with pytest.raises(ValueError, match="latent_dim.*positive integer.*0"):
        keras_vae.VAE.from_preset("mlp_28", latent_dim=0)
