"""The training-step profile: op times grouped by role, checked on hand-made traces and
on real traces of the default network and the VanillaVAE."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from benchmarks.flops import vae_flops
from benchmarks.profile import (
    IDLE,
    INPUT_EVENT,
    category_flops,
    op_category,
    profile_training,
    summarise_trace,
)
from benchmarks.training import KerasContender
from keras_vae.matmul_conv import MatmulConv2D, MatmulConv2DTranspose


def _rows(summary):
    return {row["name"]: row for row in summary["categories"]}


def test_ops_are_grouped_by_their_layers_pass():
    step = "StatefulPartitionedCall/"
    tape = step + "gradient_tape/"
    cases = {
        step + "encoder/activation/Relu:_FusedConv2D": "convolutions, forward",
        tape + "encoder/conv2d_1/convolution/Conv2DBackpropInput:Conv2DBackpropInput": (
            "convolutions, input gradient"
        ),
        tape + "encoder/conv2d_1/convolution/Conv2DBackpropFilter:Conv2DBackpropFilter": (
            "convolutions, weight gradient"
        ),
        # A transposed convolution's forward pass is a convolution's input
        # gradient, and its input gradient a convolution.
        step + "decoder/conv2d_transpose/conv_transpose:Conv2DBackpropInput": (
            "transposed convolutions, forward"
        ),
        tape + "decoder/conv2d_transpose/conv_transpose/Conv2D:Conv2D": (
            "transposed convolutions, input gradient"
        ),
        tape + "decoder/params/conv_transpose/Conv2DBackpropFilter:Conv2DBackpropFilter": (
            "transposed convolutions, weight gradient"
        ),
        tape + "decoder/dense/MatMul/MatMul_1:MatMul": "dense layers, all passes",
        step + "encoder/batch_normalization_3/moments/mean:Mean": "BatchNorm, all passes",
        step + "decoder/conv2d_transpose/BiasAdd:BiasAdd": "bias adds and their gradients",
        step + "adam/Sqrt_9:Sqrt": "optimizer update",
        tape + "decoder/activation_4/ReluGrad:ReluGrad": (
            "other element-wise ops (activations, sampling, loss)"
        ),
    }
    # The same ops as TensorFlow's oneDNN pass renames them on CPUs with AVX-512.
    onednn_cases = {
        step + "encoder/activation/Relu:_MklNativeFusedConv2D": "convolutions, forward",
        tape + "encoder/conv2d_1/convolution/Conv2DBackpropInput:_MklNativeConv2DBackpropInput": (
            "convolutions, input gradient"
        ),
        tape + "encoder/conv2d_1/convolution/Conv2DBackpropFilter"
        ":_MklNativeConv2DBackpropFilterWithBias": "convolutions, weight gradient",
        tape + "decoder/conv2d_transpose/conv_transpose/Conv2D:_MklNativeConv2D": (
            "transposed convolutions, input gradient"
        ),
        tape + "decoder/dense/MatMul/MatMul_1:_MklMatMul": "dense layers, all passes",
        step + "encoder/dense/Relu:_MklNativeFusedMatMul": "dense layers, all passes",
        step + "encoder/bn/FusedBatchNormV3:_MklNativeFusedBatchNormV3": "BatchNorm, all passes",
    }
    for name, category in {**cases, **onednn_cases}.items():
        assert op_category(name) == category, name
    assert op_category(step + "sgd/Mul:Mul", optimizer_scope="sgd") == "optimizer update"


def test_a_hand_made_trace_is_summed_per_category_with_the_gaps_between_ops():
    ms = 10**9  # picoseconds
    # Two executor threads over 2 steps, 10 ms from first op to last: the
    # weight gradient (0-4 ms) overlaps the forward pass (2-5 ms); nothing runs
    # from 5 to 6 ms; the optimizer runs 6-9 ms and the input waits 9-10 ms.
    filter_op = "gradient_tape/decoder/t/conv_transpose/Conv2DBackpropFilter:Conv2DBackpropFilter"
    forward_op = "decoder/t/conv_transpose:Conv2DBackpropInput"
    lines = [
        [(0, 4 * ms, filter_op), (6 * ms, 9 * ms, "adam/Sub:Sub")],
        [(2 * ms, 5 * ms, forward_op)],
        [(9 * ms, 10 * ms, INPUT_EVENT)],
    ]
    flops = {"transposed convolutions, weight gradient": 1e6}
    summary = summarise_trace(lines, steps=2, batch_size=100, flops=flops)
    rows = _rows(summary)
    assert summary["ms_per_step"] == pytest.approx(5.0)
    assert summary["op_ms_per_step"] == pytest.approx((4 + 3 + 3 + 1) / 2)
    assert summary["concurrency"] == pytest.approx(11 / 9)
    assert rows["transposed convolutions, weight gradient"]["ms_per_step"] == pytest.approx(2.0)
    assert rows["transposed convolutions, forward"]["ms_per_step"] == pytest.approx(1.5)
    assert rows["optimizer update"]["ms_per_step"] == pytest.approx(1.5)
    assert rows["waiting for the input pipeline"]["ms_per_step"] == pytest.approx(0.5)
    assert rows[IDLE]["ms_per_step"] == pytest.approx(0.5)
    assert sum(row["share"] for row in rows.values()) == pytest.approx(1.0)
    assert rows["optimizer update"]["share"] == pytest.approx(3 / 12)
    # 1 MFLOP x 100 examples x 2 steps in 4 ms.
    assert rows["transposed convolutions, weight gradient"]["gflops"] == pytest.approx(50.0)
    assert rows["transposed convolutions, forward"]["gflops"] is None
    with pytest.raises(ValueError, match="Expected op events"):
        summarise_trace([], steps=1, batch_size=1)


@pytest.mark.parametrize(
    "preset, shape, batch_norm, matmul_layers",
    [
        ("fashion_mnist_conv", (28, 28, 1), False, 0),
        # The 64x64 VanillaVAE's steps under the profiler cost the most of the fast tier.
        pytest.param("vanilla_vae_64", (64, 64, 3), True, 2, marks=pytest.mark.training),
    ],
)
def test_a_real_trace_holds_every_layers_three_passes_once_per_step(
    preset, shape, batch_norm, matmul_layers
):
    keras.utils.set_random_seed(0)
    model = keras_vae.VAE.from_preset(preset, load_weights=False, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=2)
    images = np.random.default_rng(0).random((8, *shape)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4, drop_remainder=True).repeat()
    contender = KerasContender(preset, model, dataset, batch_size=4)
    contender.window(2)
    profile = profile_training(contender, steps=4)
    rows = _rows(profile)
    assert profile["steps"] == 6 and profile["batch_size"] == 4

    layers = {"convolutions": 0, "transposed convolutions": 0, "as one matmul": 0}
    for network in (model.encoder, model.decoder):
        for layer in network.layers:
            if isinstance(layer, (MatmulConv2D, MatmulConv2DTranspose)):
                layers["as one matmul"] += 1
            elif isinstance(layer, keras.layers.Conv2DTranspose):
                layers["transposed convolutions"] += 1
            elif isinstance(layer, keras.layers.Conv2D):
                layers["convolutions"] += 1
    # The VanillaVAE's 2x2 maps: the encoder's last block and the decoder's first.
    matmul_row = rows["convolutions as one matmul (small maps), all passes"]
    assert layers.pop("as one matmul") == matmul_layers
    assert (matmul_row["ms_per_step"] > 0) == bool(matmul_layers)
    assert (matmul_row["gflops"] is not None) == bool(matmul_layers)
    for kind, count in layers.items():
        # One kernel per layer and pass; no input gradient for the first layer.
        first = int(kind == "convolutions")
        assert rows[f"{kind}, forward"]["distinct_ops"] == count
        assert rows[f"{kind}, weight gradient"]["distinct_ops"] == count
        assert rows[f"{kind}, input gradient"]["distinct_ops"] == count - first
        assert rows[f"{kind}, weight gradient"]["gflops"] > 0
    assert (rows["BatchNorm, all passes"]["ms_per_step"] > 0) == batch_norm
    assert rows["optimizer update"]["ms_per_step"] > 0
    assert sum(row["share"] for row in rows.values()) == pytest.approx(1.0)
    # The categories' FLOPs add up to the training step's count.
    assert sum(category_flops(model).values()) == vae_flops(model)["training_step"]
    assert profile["ms_per_step"] <= profile["op_ms_per_step"] + rows[IDLE]["ms_per_step"] + 1e-9
