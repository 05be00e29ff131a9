"""Floating-point operations of a Keras model's convolutions and dense layers.

Counts the multiply-adds of `Conv2D`, `Conv2DTranspose` and `Dense` layers as
two operations each, the convention of FLOP counters such as PyTorch's
`torch.utils.flop_counter`. Biases, activations, the sampling and the loss are
left out: element-wise work that is a small share of a convolutional network's.
"""

import math

import keras

from keras_vae.matmul_conv import MatmulConv2D, MatmulConv2DTranspose


def layer_flops(layer):
    """Returns the forward FLOPs of one example through `layer` (0 if not counted or `None`)."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Each input pixel scatters a kernel_h x kernel_w x out_channels patch.
        _, height, width, channels = layer.input.shape
        kernel = math.prod(layer.kernel_size)
        return 2 * height * width * channels * kernel * layer.filters
    if isinstance(layer, keras.layers.Conv2D):
        _, height, width, filters = layer.output.shape
        kernel = math.prod(layer.kernel_size) * layer.input.shape[-1]
        return 2 * height * width * filters * kernel
    if isinstance(layer, keras.layers.Dense):
        return 2 * layer.input.shape[-1] * layer.units
    return 0


def layer_kind(layer):
    """Returns `"convolution as one matmul"`, `"transposed convolution"`,
    `"convolution"`, `"dense"` or `None`."""
    if isinstance(layer, (MatmulConv2D, MatmulConv2DTranspose)):
        return "convolution as one matmul"
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return "transposed convolution"
    if isinstance(layer, keras.layers.Conv2D):
        return "convolution"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return None


def _counted_layers(model):
    """The counted layers of a functional `model`, nested models flattened, in order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _counted_layers(layer)
        elif layer_kind(layer):
            yield layer


def model_flops(model):
    """Returns the forward FLOPs of one example through a functional `model`."""
    return sum(layer_flops(layer) for layer in _counted_layers(model))


def flops_by_kind(vae):
    """Forward FLOPs per example of a VAE's layers, by kind of layer.

    Args:
        vae: a `keras_vae.VAE`, or any object with functional `encoder` and
            `decoder` models.

    Returns:
        A dict: kind (see `layer_kind`) -> forward FLOPs of its layers.
    """
    kinds = {}
    for network in (vae.encoder, vae.decoder):
        for layer in _counted_layers(network):
            kinds[layer_kind(layer)] = kinds.get(layer_kind(layer), 0) + layer_flops(layer)
    return kinds


def first_counted_layer(model):
    """The first counted layer of `model`, or `None`: in an encoder, the layer whose
    input gradient a training step never computes."""
    return next(_counted_layers(model), None)


def vae_flops(vae):
    """Counts the FLOPs per example of a VAE's decoding and of a training step.

    A training step runs the encoder and the decoder forward, then for every
    layer the gradient of its weights (as many FLOPs as its forward pass) and
    of its input (as many again), except the input gradient of the encoder's
    first layer, which nothing needs.

    Args:
        vae: a `keras_vae.VAE`, or any object with functional `encoder` and
            `decoder` models.

    Returns:
        A dict: `encoder_forward`, `decoder_forward`, `forward` (both) and
        `training_step` (forward and backward), FLOPs per example.
    """
    encoder = model_flops(vae.encoder)
    decoder = model_flops(vae.decoder)
    forward = encoder + decoder
    return {
        "encoder_forward": encoder,
        "decoder_forward": decoder,
        "forward": forward,
        "training_step": 3 * forward - layer_flops(first_counted_layer(vae.encoder)),
    }
