import keras
import numpy as np
import pytest

from keras_vae import architectures


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


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match=r"\(height, width, channels\).*\(28, 28\)"):
        architectures.conv_encoder((28, 28), 2)
    with pytest.raises(ValueError, match="latent_dim.*positive integer.*0"):
        architectures.mlp_decoder((28, 28, 1), 0)


def test_a_gated_layer_is_a_linear_unit_times_a_sigmoid_gate():
    from keras_vae.architectures import mlp_decoder

    decoder = mlp_decoder((4, 4, 1), latent_dim=3, hidden_units=(5,), activation="gated")
    dense = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Dense)]
    (w_gate, b_gate), (w_unit, b_unit), (w_out, b_out) = (
        [np.asarray(v, "float64") for v in layer.get_weights()] for layer in dense
    )
    if dense[0].activation is not keras.activations.sigmoid:  # the order Keras built them in
        (w_gate, b_gate), (w_unit, b_unit) = (w_unit, b_unit), (w_gate, b_gate)
    z = np.random.default_rng(0).normal(size=(7, 3))
    hidden = (z @ w_unit + b_unit) / (1 + np.exp(-(z @ w_gate + b_gate)))
    expected = (hidden @ w_out + b_out).reshape(7, 4, 4, 1)
    np.testing.assert_allclose(decoder(z.astype("float32")), expected, rtol=1e-5, atol=1e-5)


def test_log_var_bounds_clip_the_log_variance_and_nothing_else(tmp_path):
    encoder = architectures.mlp_encoder((4, 4, 1), 3, hidden_units=(8,), log_var_bounds=(-6, 2))
    top = architectures.mlp_gaussian(3, 2, hidden_units=(8,), log_var_bounds=(-6, 2))
    # Large inputs drive the unclipped heads far outside [-6, 2].
    images = np.random.default_rng(0).normal(scale=1e3, size=(64, 4, 4, 1)).astype("float32")
    mean, log_var = (np.asarray(v) for v in encoder(images))
    raw = np.asarray(keras.Model(encoder.input, encoder.get_layer("log_var").input)(images))
    np.testing.assert_array_equal(log_var, np.clip(raw, -6, 2))
    assert raw.min() < -6 and raw.max() > 2 and np.abs(mean).max() > 6
    top_log_var = np.asarray(top(np.full((4, 3), 1e4, "float32"))[1])
    assert top_log_var.min() >= -6 and top_log_var.max() <= 2
    encoder.save(tmp_path / "encoder.keras")
    loaded = keras.saving.load_model(tmp_path / "encoder.keras")
    np.testing.assert_array_equal(loaded(images)[1], log_var)
    with pytest.raises(ValueError, match=r"minimum < maximum.*minimum=2.*maximum=-6"):
        architectures.Clip(2, -6)


def _published_gated_conv_parameters(layers):
    """Parameters of gated convolutions `(in, out, kernel)`: two kernels and biases each."""
    return sum(
        2 * (kernel * kernel * inputs * outputs + outputs) for inputs, outputs, kernel in layers
    )


def test_the_gated_conv_networks_have_the_published_convhvaes_layers():
    # The published ConvHVAE's q(z|x) and p(x|z) layer tables (Tomczak & Welling, 2018),
    # with the decoder taking z1 alone.
    encoder = architectures.gated_conv_encoder((28, 28, 1), 40)
    convolutions = [(1, 32, 7), (32, 32, 3), (32, 64, 5), (64, 64, 3), (64, 6, 3)]
    heads = 2 * (6 * 7 * 7 * 40 + 40)
    assert encoder.count_params() == _published_gated_conv_parameters(convolutions) + heads
    assert encoder.output_shape == [(None, 40), (None, 40)]
    decoder = architectures.gated_conv_decoder((28, 28, 1), 40)
    gated_dense = 2 * (40 * 300 + 300) + 2 * (300 * 784 + 784)
    convolutions = [(1, 64, 3), (64, 64, 3), (64, 64, 3), (64, 64, 3)]
    last = 64 * 1 + 1
    assert decoder.count_params() == (
        gated_dense + _published_gated_conv_parameters(convolutions) + last
    )
    assert decoder.output_shape == (None, 28, 28, 1)


def test_a_gated_convolution_is_a_convolution_times_a_sigmoid_gate():
    decoder = architectures.gated_conv_decoder((5, 5, 1), 2, hidden_units=(), channels=(3,))
    z = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    (reshape,) = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Reshape)]
    image_map = keras.Model(decoder.input, reshape.output)  # the 5x5x1 map
    convs = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Conv2D)][:2]
    (k_gate, b_gate), (k_unit, b_unit) = (
        [np.asarray(v, "float64") for v in layer.get_weights()] for layer in convs
    )
    if convs[0].activation is not keras.activations.sigmoid:
        (k_gate, b_gate), (k_unit, b_unit) = (k_unit, b_unit), (k_gate, b_gate)

    def same_conv(x, kernel, bias):  # a 3x3 "same" convolution by its definition
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = np.zeros((*x.shape[:3], kernel.shape[-1]))
        for i in range(5):
            for j in range(5):
                patch = padded[:, i : i + 3, j : j + 3, :]
                out[:, i, j] = np.einsum("bhwc,hwco->bo", patch, kernel)
        return out + bias

    x = np.asarray(image_map(z), "float64")
    gated = same_conv(x, k_unit, b_unit) / (1 + np.exp(-same_conv(x, k_gate, b_gate)))
    *_, multiply = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Multiply)]
    gated_layer = keras.Model(decoder.input, multiply.output)
    np.testing.assert_allclose(gated_layer(z), gated, rtol=1e-5, atol=1e-5)
