import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import architectures
from keras_vae.matmul_conv import MatmulConv2D, MatmulConv2DTranspose

# (height, width, in channels, out channels, kernel, stride): the VanillaVAE's
# 2x2 maps, odd and non-square maps, a kernel wider than two strides, stride 1.
SHAPES = [
    (4, 4, 32, 48, 3, 2),
    (2, 2, 48, 32, 3, 2),
    (5, 7, 3, 4, 3, 2),
    (9, 6, 2, 5, 5, 2),
    (6, 6, 3, 2, 4, 3),
    (5, 5, 3, 4, 3, 1),
]


def _pair(stock_class, matmul_class, filters, kernel, stride, input_shape):
    """The stock layer and the matmul one, built on `input_shape`, with the same weights."""
    kwargs = dict(strides=stride, padding="same", activation="relu")
    stock = stock_class(filters, kernel, **kwargs)
    ours = matmul_class(filters, kernel, **kwargs)
    stock.build(input_shape)
    ours.build(input_shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in stock.get_weights()]
    stock.set_weights(weights)
    ours.set_weights(weights)
    return stock, ours


def _output_and_gradients(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        # A weighted sum, so every output pixel's gradient differs.
        weights = tf.reshape(tf.sin(tf.range(tf.size(y), dtype=y.dtype) / 7), tf.shape(y))
        loss = tf.reduce_sum(y * weights)
    dx, dkernel, dbias = tape.gradient(loss, [x, layer.kernel, layer.bias])
    return [y.numpy(), dx.numpy(), dkernel.numpy(), dbias.numpy()]


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("height, width, cin, cout, kernel, stride", SHAPES)
def test_matmul_layers_compute_tensorflows_convolutions(
    transpose, height, width, cin, cout, kernel, stride
):
    classes = (
        (keras.layers.Conv2DTranspose, MatmulConv2DTranspose)
        if transpose
        else (keras.layers.Conv2D, MatmulConv2D)
    )
    stock, ours = _pair(*classes, cout, kernel, stride, (3, height, width, cin))
    x = np.random.default_rng(1).normal(size=(3, height, width, cin)).astype("float32")
    expected = _output_and_gradients(stock, x)
    received = _output_and_gradients(ours, x)
    assert received[0].shape == tuple(stock.compute_output_shape((3, height, width, cin)))
    names = ("output", "dx", "dkernel", "dbias")
    for name, want, got in zip(names, expected, received, strict=True):
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, atol=2e-6 * scale, err_msg=name)


@pytest.mark.parametrize(
    "settings, name",
    [
        (dict(padding="valid"), "padding"),
        (dict(dilation_rate=2), "dilation_rate"),
        (dict(strides=(1, 2)), "strides"),
        (dict(kernel_size=(3, 1)), "kernel_size"),
        (dict(data_format="channels_first"), "data_format"),
    ],
)
@pytest.mark.parametrize("layer_class", [MatmulConv2D, MatmulConv2DTranspose])
def test_settings_the_matmul_form_does_not_compute_are_refused(layer_class, settings, name):
    kwargs = dict(filters=4, kernel_size=3, padding="same") | settings
    with pytest.raises(ValueError, match=rf"Expected `{name}=.*Received: {name}="):
        layer_class(**kwargs)


def test_only_maps_of_at_most_two_pixels_take_the_matmul_path():
    vanilla = keras_vae.VAE.from_preset("vanilla_vae_64", load_weights=False)

    def kinds(network):
        return [
            (type(layer).__name__, layer.input.shape[1], layer.output.shape[1])
            for layer in network.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
        ]

    # 64 -> 32 -> 16 -> 8 -> 4 -> 2: only the last convolution has a 2x2 output.
    assert [kind[0] for kind in kinds(vanilla.encoder)] == ["Conv2D"] * 4 + ["MatmulConv2D"]
    # 2 -> 4 -> ... -> 64, then the stride-1 output layer: only the first has a 2x2 input.
    assert kinds(vanilla.decoder)[0] == ("MatmulConv2DTranspose", 2, 4)
    assert {kind[0] for kind in kinds(vanilla.decoder)[1:]} == {"Conv2DTranspose"}
    default = keras_vae.VAE.from_preset("fashion_mnist_conv", load_weights=False)
    assert not [
        layer
        for network in (default.encoder, default.decoder)
        for layer in network.layers
        if isinstance(layer, (MatmulConv2D, MatmulConv2DTranspose))
    ]
    assert architectures.MATMUL_MAP_SIZE == 2


def test_a_saved_model_with_matmul_layers_reloads_them_with_their_weights(tmp_path):
    decoder = architectures.conv_decoder((8, 8, 1), 3, filters=(16, 8), start_channels=16)
    (matmul_layer,) = [
        layer for layer in decoder.layers if isinstance(layer, MatmulConv2DTranspose)
    ]
    path = tmp_path / "decoder.keras"
    decoder.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in decoder.layers]
    z = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(z, verbose=0), decoder.predict(z, verbose=0))
    # The stock layer's config is the same but for the class: weights transfer as they are.
    stock = keras.layers.Conv2DTranspose.from_config(matmul_layer.get_config())
    assert stock.get_config() == matmul_layer.get_config()
