"""Encoder/decoder pairs: an MLP, a convolutional network and the gated convolutional
networks of the published two-level VAE, for H×W×C images.

Encoders map images to `[mean, log_var]`; decoders map latent vectors to
unconstrained per-pixel parameters of the same shape as the images (a
`Likelihood` turns them into a mean image).
"""

import math

import keras
from keras import layers

from keras_vae.matmul_conv import MatmulConv2D, MatmulConv2DTranspose

# Maps of at most this many rows and columns (a convolution's output, a
# transposed convolution's input) are convolved as one matrix product: oneDNN's
# kernels on the VanillaVAE's two 2x2 layers make its training step 1.6x slower,
# and the product on its 4x4 maps as well is no faster
# (`python -m benchmarks --vanilla-vae`, in a checkout).
MATMUL_MAP_SIZE = 2


def _check_shape(input_shape):
    if len(input_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ValueError(
            "Expected `input_shape` to be (height, width, channels) of positive "
            f"integers. Received: input_shape={input_shape!r}"
        )
    return tuple(input_shape)


def _check_positive(name, value):
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {value!r}")


def _activation(name):
    if name == "leaky_relu":
        # The negative slope of PyTorch's nn.LeakyReLU, used by the reference VAEs.
        return layers.LeakyReLU(negative_slope=0.01)
    return layers.Activation(name)


def _dense(hidden, units, activation):
    """A dense layer and its activation; "gated" is a gated linear unit,
    `Dense(h) * sigmoid(Dense(h))` (Dauphin et al., 2017), as in the MLP VAEs
    of the published likelihood tables (Tomczak & Welling, 2018)."""
    if activation != "gated":
        return _activation(activation)(layers.Dense(units)(hidden))
    return _gated(hidden, layers.Dense, units)


def _gated(hidden, layer, *args, **kwargs):
    """A gated linear unit of `layer(*args, **kwargs)`: `layer(h) * sigmoid(layer'(h))`,
    two layers of the same shape, the gate's made first."""
    gate = layer(*args, activation="sigmoid", **kwargs)(hidden)
    return layers.Multiply()([layer(*args, **kwargs)(hidden), gate])


@keras.saving.register_keras_serializable(package="keras_vae")
class Clip(layers.Layer):
    """Clips its input to `[minimum, maximum]` (PyTorch's `Hardtanh`).

    Args:
        minimum: the lower bound.
        maximum: the upper bound.
    """

    def __init__(self, minimum, maximum, **kwargs):
        super().__init__(**kwargs)
        if not minimum < maximum:
            raise ValueError(
                f"Expected `minimum < maximum`. Received: minimum={minimum!r}, maximum={maximum!r}"
            )
        self.minimum = float(minimum)
        self.maximum = float(maximum)

    def call(self, inputs):
        return keras.ops.clip(inputs, self.minimum, self.maximum)

    def get_config(self):
        return {**super().get_config(), "minimum": self.minimum, "maximum": self.maximum}


def _gaussian_head(hidden, latent_dim, log_var_bounds=None):
    # Output layers compute in float32 even under a mixed-precision policy.
    mean = layers.Dense(latent_dim, dtype="float32", name="mean")(hidden)
    if log_var_bounds is None:
        log_var = layers.Dense(latent_dim, dtype="float32", name="log_var")(hidden)
        return [mean, log_var]
    log_var = layers.Dense(latent_dim, dtype="float32")(hidden)
    log_var = Clip(*log_var_bounds, dtype="float32", name="log_var")(log_var)
    return [mean, log_var]


def _encoder(input_shape, latent_dim, trunk, log_var_bounds=None):
    """An encoder: `trunk` maps the images to flat features, a Gaussian head follows."""
    input_shape = _check_shape(input_shape)
    _check_positive("latent_dim", latent_dim)
    images = keras.Input(input_shape, name="images")
    head = _gaussian_head(trunk(images), latent_dim, log_var_bounds)
    return keras.Model(images, head, name="encoder")


def mlp_encoder(input_shape, latent_dim, hidden_units=(512,), activation="relu",
                log_var_bounds=None):  # fmt: skip
    """An MLP encoder: flatten, dense layers, then the posterior mean and log-variance.

    Args:
        input_shape: `(height, width, channels)` of the images.
        latent_dim: size of the latent space.
        hidden_units: sizes of the hidden dense layers.
        activation: activation of the hidden layers, or `"gated"`.
        log_var_bounds: `None`, or `(minimum, maximum)` the log-variance is
            clipped to, as the published two-level VAEs do (-6, 2).

    Returns:
        A `keras.Model` mapping images to `[mean, log_var]`.
    """

    def trunk(images):
        hidden = layers.Flatten()(images)
        for units in hidden_units:
            hidden = _dense(hidden, units, activation)
        return hidden

    return _encoder(input_shape, latent_dim, trunk, log_var_bounds)


def _decoder(output_shape, latent_dim, body):
    """A decoder: `body` maps `z` to per-pixel parameters of shape `output_shape`."""
    output_shape = _check_shape(output_shape)
    _check_positive("latent_dim", latent_dim)
    z = keras.Input((latent_dim,), name="z")
    return keras.Model(z, body(z, output_shape), name="decoder")


def mlp_decoder(output_shape, latent_dim, hidden_units=(512,), activation="relu"):
    """An MLP decoder, the mirror of `mlp_encoder`.

    Args:
        output_shape: `(height, width, channels)` of the images.
        latent_dim: size of the latent space.
        hidden_units: sizes of the hidden dense layers, from the latent side.
        activation: activation of the hidden layers, or `"gated"`.

    Returns:
        A `keras.Model` mapping `z` to per-pixel parameters of shape `output_shape`.
    """

    def body(z, output_shape):
        hidden = z
        for units in hidden_units:
            hidden = _dense(hidden, units, activation)
        params = layers.Dense(math.prod(output_shape), dtype="float32")(hidden)
        return layers.Reshape(output_shape, dtype="float32", name="params")(params)

    return _decoder(output_shape, latent_dim, body)


def mlp_gaussian(input_dim, latent_dim, hidden_units=(300,), activation="relu", name="gaussian",
                 log_var_bounds=None):  # fmt: skip
    """An MLP from vectors to a diagonal Gaussian: a hierarchical VAE's upper layer.

    Args:
        input_dim: size of the input vectors.
        latent_dim: size of the Gaussian's vectors.
        hidden_units: sizes of the hidden dense layers.
        activation: activation of the hidden layers, or `"gated"`.
        name: the model's name.
        log_var_bounds: `None`, or `(minimum, maximum)` the log-variance is
            clipped to.

    Returns:
        A `keras.Model` mapping `(batch, input_dim)` to `[mean, log_var]`,
        each `(batch, latent_dim)`.
    """
    _check_positive("input_dim", input_dim)
    _check_positive("latent_dim", latent_dim)
    inputs = keras.Input((input_dim,), name="z")
    hidden = inputs
    for units in hidden_units:
        hidden = _dense(hidden, units, activation)
    return keras.Model(inputs, _gaussian_head(hidden, latent_dim, log_var_bounds), name=name)


def coarse_map_side(height, width, stride, transpose):
    """The longer side of the coarser map a strided (transposed) convolution works
    on: a convolution's output, a transposed convolution's input.

    Args:
        height: rows of the layer's input map.
        width: columns of the layer's input map.
        stride: the layer's stride.
        transpose: whether the layer is a transposed convolution.

    Returns:
        The side, in pixels, that `MATMUL_MAP_SIZE` is set against.
    """
    if not transpose:
        height, width = math.ceil(height / stride), math.ceil(width / stride)
    return max(height, width)


def _conv_layer(x, transpose):
    """The convolution class for a stride-2 block whose input is `x`."""
    _, height, width, _ = x.shape
    if coarse_map_side(height, width, 2, transpose) <= MATMUL_MAP_SIZE:
        return MatmulConv2DTranspose if transpose else MatmulConv2D
    return layers.Conv2DTranspose if transpose else layers.Conv2D


def _conv_block(x, filters, kernel_size, batch_norm, activation, transpose):
    conv = _conv_layer(x, transpose)
    x = conv(filters, kernel_size, strides=2, padding="same", use_bias=not batch_norm)(x)
    if batch_norm:
        # Synchronised statistics keep training on N replicas equal to one device.
        x = layers.BatchNormalization(synchronized=True)(x)
    return _activation(activation)(x)


def conv_encoder(
    input_shape,
    latent_dim,
    filters=(32, 64),
    hidden_units=(),
    kernel_size=3,
    batch_norm=False,
    activation="relu",
):
    """A convolutional encoder: stride-2 conv blocks, dense layers, Gaussian head.

    Args:
        input_shape: `(height, width, channels)` of the images; any size.
        latent_dim: size of the latent space.
        filters: channels of each stride-2 convolution block.
        hidden_units: sizes of dense layers after flattening.
        kernel_size: size of the convolution kernels.
        batch_norm: whether each block has (synchronised) batch normalisation.
        activation: `"relu"`, `"leaky_relu"` or any Keras activation name.

    Returns:
        A `keras.Model` mapping images to `[mean, log_var]`.
    """

    def trunk(images):
        hidden = images
        for channels in filters:
            hidden = _conv_block(hidden, channels, kernel_size, batch_norm, activation, False)
        hidden = layers.Flatten()(hidden)
        for units in hidden_units:
            hidden = _dense(hidden, units, activation)
        return hidden

    return _encoder(input_shape, latent_dim, trunk)


def conv_decoder(
    output_shape,
    latent_dim,
    filters=(64, 32),
    start_channels=64,
    kernel_size=3,
    batch_norm=False,
    activation="relu",
    projection_activation=True,
):
    """A convolutional decoder: a dense projection, stride-2 transposed convolutions.

    The projection reshapes to `ceil(H / 2**n) × ceil(W / 2**n) × start_channels`
    for `n = len(filters)` blocks; the upsampled map is cropped to `H × W`, so
    any image size works. A last stride-1 transposed convolution gives the `C`
    output channels.

    Args:
        output_shape: `(height, width, channels)` of the images.
        latent_dim: size of the latent space.
        filters: channels of each stride-2 transposed convolution block.
        start_channels: channels of the map the dense projection reshapes to.
        kernel_size: size of the convolution kernels.
        batch_norm: whether each block has (synchronised) batch normalisation.
        activation: `"relu"`, `"leaky_relu"` or any Keras activation name.
        projection_activation: whether `activation` follows the dense projection.

    Returns:
        A `keras.Model` mapping `z` to per-pixel parameters of shape `output_shape`.
    """
    height, width, channels = _check_shape(output_shape)
    _check_positive("latent_dim", latent_dim)
    _check_positive("start_channels", start_channels)
    scale = 2 ** len(filters)
    start = (math.ceil(height / scale), math.ceil(width / scale), start_channels)
    z = keras.Input((latent_dim,), name="z")
    hidden = layers.Dense(math.prod(start))(z)
    if projection_activation:
        hidden = _activation(activation)(hidden)
    hidden = layers.Reshape(start)(hidden)
    for block_channels in filters:
        hidden = _conv_block(hidden, block_channels, kernel_size, batch_norm, activation, True)
    extra_rows, extra_cols = start[0] * scale - height, start[1] * scale - width
    if extra_rows or extra_cols:
        hidden = layers.Cropping2D(
            (
                (extra_rows // 2, extra_rows - extra_rows // 2),
                (extra_cols // 2, extra_cols - extra_cols // 2),
            )
        )(hidden)
    # A stride-1 transposed convolution computes what a convolution would (with
    # the kernel flipped), but oneDNN's weight gradient for it is several times
    # faster when `channels` is small: ~10% of a training step of the default model.
    params = layers.Conv2DTranspose(
        channels, kernel_size, padding="same", dtype="float32", name="params"
    )(hidden)
    return keras.Model(z, params, name="decoder")


def _gated_conv(hidden, channels, kernel_size, strides):
    """A gated convolution, `Conv(h) * sigmoid(Conv(h))`: the convolutional
    form of `_dense`'s gated linear unit, as the published ConvHVAE has it."""
    return _gated(hidden, layers.Conv2D, channels, kernel_size, strides, padding="same")


def gated_conv_encoder(
    input_shape,
    latent_dim,
    convolutions=((32, 7, 1), (32, 3, 2), (64, 5, 1), (64, 3, 2), (6, 3, 1)),
    log_var_bounds=None,
):
    """A gated convolutional encoder, the published ConvHVAE's (Tomczak & Welling,
    2018): gated convolutions, flatten, then the posterior mean and log-variance.

    Args:
        input_shape: `(height, width, channels)` of the images.
        latent_dim: size of the latent space.
        convolutions: `(channels, kernel_size, stride)` of each gated convolution.
        log_var_bounds: `None`, or `(minimum, maximum)` the log-variance is
            clipped to.

    Returns:
        A `keras.Model` mapping images to `[mean, log_var]`.
    """

    def trunk(images):
        hidden = images
        for channels, kernel_size, strides in convolutions:
            hidden = _gated_conv(hidden, channels, kernel_size, strides)
        return layers.Flatten()(hidden)

    return _encoder(input_shape, latent_dim, trunk, log_var_bounds)


def gated_conv_decoder(output_shape, latent_dim, hidden_units=(300,), channels=(64, 64, 64, 64),
                       kernel_size=3):  # fmt: skip
    """A gated convolutional decoder, the published ConvHVAE's: gated dense layers
    to one image-sized map, gated stride-1 convolutions over it, a 1x1 convolution.

    Args:
        output_shape: `(height, width, channels)` of the images.
        latent_dim: size of the latent space.
        hidden_units: sizes of the gated dense layers before the image-sized one.
        channels: channels of each gated convolution.
        kernel_size: size of their kernels.

    Returns:
        A `keras.Model` mapping `z` to per-pixel parameters of shape `output_shape`.
    """

    def body(z, output_shape):
        hidden = z
        for units in (*hidden_units, math.prod(output_shape)):
            hidden = _dense(hidden, units, "gated")
        hidden = layers.Reshape(output_shape)(hidden)
        for width in channels:
            hidden = _gated_conv(hidden, width, kernel_size, 1)
        return layers.Conv2D(output_shape[-1], 1, dtype="float32", name="params")(hidden)

    return _decoder(output_shape, latent_dim, body)


# The builder pairs a preset's `architecture` names.
ARCHITECTURES = {
    "conv": (conv_encoder, conv_decoder),
    "gated_conv": (gated_conv_encoder, gated_conv_decoder),
    "mlp": (mlp_encoder, mlp_decoder),
}


def conditional_networks(architecture, input_shape, latent_dim, num_classes, encoder=None,
                         decoder=None):  # fmt: skip
    """An encoder and a decoder that also take a one-hot label, as in the classic CVAE.

    The encoder sees the label as `num_classes` extra image channels (each
    constant over the image), the decoder as `num_classes` extra latent inputs;
    inside, they are the architecture's own networks.

    Args:
        architecture: a key of `ARCHITECTURES`, e.g. `"conv"`.
        input_shape: `(height, width, channels)` of the images.
        latent_dim: size of the latent space.
        num_classes: number of classes of the label.
        encoder: keyword arguments of the encoder builder, or `None`.
        decoder: keyword arguments of the decoder builder, or `None`.

    Returns:
        A pair of `keras.Model`s: `[images, labels] -> [mean, log_var]` and
        `[z, labels] -> per-pixel parameters`.
    """
    height, width, channels = _check_shape(input_shape)
    _check_positive("num_classes", num_classes)
    build_encoder, build_decoder = ARCHITECTURES[architecture]
    images = keras.Input(input_shape, name="images")
    labels = keras.Input((num_classes,), name="labels")
    label_maps = layers.UpSampling2D((height, width))(layers.Reshape((1, 1, num_classes))(labels))
    body = build_encoder((height, width, channels + num_classes), latent_dim, **(encoder or {}))
    conditional_encoder = keras.Model(
        [images, labels], body(layers.Concatenate()([images, label_maps])), name="encoder"
    )
    z = keras.Input((latent_dim,), name="z")
    decoder_labels = keras.Input((num_classes,), name="labels")
    body = build_decoder(input_shape, latent_dim + num_classes, **(decoder or {}))
    conditional_decoder = keras.Model(
        [z, decoder_labels], body(layers.Concatenate()([z, decoder_labels])), name="decoder"
    )
    return conditional_encoder, conditional_decoder
