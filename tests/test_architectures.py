import keras
import numpy as np
import pytest

from keras_vae import architectures, presets


@pytest.mark.parametrize("shape", [(28, 28, 1), (30, 22, 3), (7, 9, 2), (64, 64, 3)])
def test_conv_pair_handles_any_image_size(shape):
    encoder = architectures.conv_encoder(shape, 4, filters=(8, 16))
    decoder = architectures.conv_decoder(shape, 4, filters=(16, 8), start_channels=16)
    mean, log_var = encoder(np.zeros((2,) + shape, "float32"))
    assert mean.shape == log_var.shape == (2, 4)
    assert decoder(np.zeros((2, 4), "float32")).shape == (2,) + shape


def test_mlp_pair_shapes():
    encoder = architectures.mlp_encoder((5, 6, 2), 3, hidden_units=(10, 7))
    decoder = architectures.mlp_decoder((5, 6, 2), 3, hidden_units=(7, 10))
    assert encoder.output_shape == [(None, 3), (None, 3)]
    assert decoder.output_shape == (None, 5, 6, 2)


def test_keras_io_preset_has_the_example_architecture():
    vae = presets.build_preset("keras_io_mnist")
    # The keras.io example's encoder has 69,076 weights and its decoder 65,089.
    assert vae.encoder.count_params() == 69_076
    assert vae.decoder.count_params() == 65_089
    assert vae.latent_dim == 2


def test_vanilla_vae_preset_has_the_reference_blocks():
    vae = presets.build_preset("vanilla_vae_64")
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
    vae = presets.build_preset(name, seed=0)
    assert vae.sample(2, seed=0).shape == (2,) + presets.PRESETS[name]["input_shape"]


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match=r"\(height, width, channels\).*\(28, 28\)"):
        architectures.conv_encoder((28, 28), 2)
    with pytest.raises(ValueError, match="latent_dim.*positive integer.*0"):
        architectures.mlp_decoder((28, 28, 1), 0)
    with pytest.raises(ValueError, match="Unknown preset.*'nope'"):
        presets.build_preset("nope")
