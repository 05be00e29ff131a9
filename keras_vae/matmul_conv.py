"""Convolutions computed as one matrix product, for small feature maps.

On maps of a few pixels with hundreds of channels (the last blocks of a deep
encoder, the first of its decoder) oneDNN's convolution kernels run at a few
GFLOP/s inside a training step, while the same arithmetic as one matrix
product runs several times faster. These layers keep the stock layers'
weights, config and output, and compute a stride-`s`, `"same"`-padded
convolution as a product of the input with the kernel reshaped to a matrix:
the convolution gathers its `k × k` taps first (im2col), the transposed
convolution scatters them after (col2im). Both use only reshapes, pads and
slices around the product, so their gradients are matrix products too.
"""

import math

import keras
from keras import layers, ops


def _taps(kernel_size, stride):
    """Each tap `(kh, kw)` as its phase `(kh % s, kw % s)` and shift `(kh // s, kw // s)`."""
    return [
        ((kh % stride, kw % stride), (kh // stride, kw // stride))
        for kh in range(kernel_size)
        for kw in range(kernel_size)
    ]


def _padding_before(size, kernel_size, stride):
    """The rows a `"same"` convolution over `size` rows pads before them."""
    return max((math.ceil(size / stride) - 1) * stride + kernel_size - size, 0) // 2


def conv2d_as_matmul(inputs, kernel, stride):
    """A `"same"`-padded, strided 2D convolution as one matrix product.

    Args:
        inputs: `(batch, height, width, in_channels)`.
        kernel: `(k, k, in_channels, out_channels)`, as in `keras.layers.Conv2D`.
        stride: the stride along both axes.

    Returns:
        `(batch, ceil(height / stride), ceil(width / stride), out_channels)`.
    """
    _, height, width, channels = inputs.shape
    k, s = kernel.shape[0], stride
    out_h, out_w = math.ceil(height / s), math.ceil(width / s)
    shifts = (k - 1) // s
    # Pad so that the padded map splits into s × s phases of (out + shifts) rows.
    top = _padding_before(height, k, s)
    left = _padding_before(width, k, s)
    rows, cols = (out_h + shifts) * s, (out_w + shifts) * s
    padding = [[0, 0], [top, rows - height - top], [left, cols - width - left], [0, 0]]
    padded = ops.pad(inputs, padding)
    phases = ops.reshape(padded, (-1, out_h + shifts, s, out_w + shifts, s, channels))
    patches = ops.concatenate(
        [
            phases[:, dh : dh + out_h, ph, dw : dw + out_w, pw, :]
            for (ph, pw), (dh, dw) in _taps(k, s)
        ],
        axis=-1,
    )
    return ops.matmul(patches, ops.reshape(kernel, (k * k * channels, -1)))


def conv2d_transpose_as_matmul(inputs, kernel, stride):
    """A `"same"`-padded, strided 2D transposed convolution as one matrix product.

    Args:
        inputs: `(batch, height, width, in_channels)`.
        kernel: `(k, k, out_channels, in_channels)`, as in
            `keras.layers.Conv2DTranspose`.
        stride: the stride along both axes.

    Returns:
        `(batch, height * stride, width * stride, out_channels)`.
    """
    _, height, width, _ = inputs.shape
    k, s, channels = kernel.shape[0], stride, kernel.shape[2]
    shifts = (k - 1) // s
    # Every input pixel's contribution to each of the k × k taps, at once.
    taps = ops.matmul(inputs, ops.transpose(ops.reshape(kernel, (k * k * channels, -1))))
    taps = ops.reshape(taps, (-1, height, width, k * k, channels))
    # Output pixel (i·s + a, j·s + b) of the padded map sums the taps of phase
    # (a, b), each shifted by its (kh // s, kw // s): gather each phase, then
    # interleave the s × s phases (depth to space).
    phase_maps = {}
    for index, ((ph, pw), (dh, dw)) in enumerate(_taps(k, s)):
        shifted = ops.pad(
            taps[:, :, :, index, :], [[0, 0], [dh, shifts - dh], [dw, shifts - dw], [0, 0]]
        )
        phase_maps[ph, pw] = phase_maps[ph, pw] + shifted if (ph, pw) in phase_maps else shifted
    zeros = ops.zeros_like(next(iter(phase_maps.values())))
    rows = [
        ops.stack([phase_maps.get((ph, pw), zeros) for pw in range(s)], axis=3) for ph in range(s)
    ]
    full = ops.reshape(
        ops.stack(rows, axis=2), (-1, (height + shifts) * s, (width + shifts) * s, channels)
    )
    # The transposed convolution is the adjoint of the "same" convolution from
    # height·s rows, whose padding before the map is cropped here.
    top = _padding_before(height * s, k, s)
    left = _padding_before(width * s, k, s)
    return full[:, top : top + height * s, left : left + width * s, :]


def _check_supported(layer):
    """Refuses the settings the matrix-product form does not compute."""
    unsupported = {
        "padding": (layer.padding, "same"),
        "data_format": (layer.data_format, "channels_last"),
        "dilation_rate": (tuple(layer.dilation_rate), (1, 1)),
        "kernel_size": (tuple(layer.kernel_size), (layer.kernel_size[0],) * 2),
        "strides": (tuple(layer.strides), (layer.strides[0],) * 2),
    }
    if getattr(layer, "groups", 1) != 1:
        unsupported["groups"] = (layer.groups, 1)
    if getattr(layer, "output_padding", None) is not None:
        unsupported["output_padding"] = (layer.output_padding, None)
    for name, (value, expected) in unsupported.items():
        if value != expected:
            raise ValueError(
                f"Expected `{name}={expected!r}` for `{type(layer).__name__}` (square "
                "kernels and strides, 'same' padding, channels last); use the stock "
                f"Keras layer otherwise. Received: {name}={value!r}"
            )


@keras.saving.register_keras_serializable(package="keras_vae")
class MatmulConv2D(layers.Conv2D):
    """`keras.layers.Conv2D` computed as one matrix product (im2col).

    Same weights, config and output as the stock layer, for square kernels
    and strides, `"same"` padding and channels last; faster where the output
    map is a few pixels wide and deep in channels.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_supported(self)

    def convolution_op(self, inputs, kernel):
        return conv2d_as_matmul(inputs, kernel, self.strides[0])


@keras.saving.register_keras_serializable(package="keras_vae")
class MatmulConv2DTranspose(layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` computed as one matrix product (col2im).

    Same weights, config and output as the stock layer, for square kernels
    and strides, `"same"` padding and channels last; faster where the input
    map is a few pixels wide and deep in channels.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_supported(self)

    def call(self, inputs):
        outputs = conv2d_transpose_as_matmul(inputs, self.kernel, self.strides[0])
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            return self.activation(outputs)
        return outputs
