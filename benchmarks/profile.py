"""Where a training step's time goes: TensorFlow's profiler, op by op, grouped by role.

`model.fit` runs under `tf.profiler.experimental`; the trace's op events (the
kernels TensorFlow's executor ran) are grouped by what they do for the network:
each kind of layer's forward pass, input gradient and weight gradient,
BatchNorm, bias adds, other element-wise ops, the optimizer's update, waiting
for the input pipeline, and the time inside the step when no op ran (Python,
function dispatch, scheduling). Convolutions and dense layers get GFLOP/s from
their FLOP counts (`flops.flops_by_kind`), so a slow kernel shows as a low rate.
"""

import re
import tempfile
from pathlib import Path

from .flops import first_counted_layer, flops_by_kind, layer_flops, layer_kind

# Keras names a layer after its class, so the ops of `keras_vae.matmul_conv`'s
# layers run under the scopes `matmul_conv2d…` and `matmul_conv2d_transpose…`.
MATMUL_CONVOLUTION_LAYER = "matmul_conv2d"
CONVOLUTION_OPS = {"Conv2D", "_FusedConv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"}
MATMUL_OPS = {"MatMul", "_FusedMatMul", "BatchMatMulV2"}
INPUT_EVENT = "IteratorGetNextOp::DoCompute"
IDLE = "outside any op (Python, dispatch, scheduling)"
PASSES = ("forward", "input gradient", "weight gradient")
CATEGORIES = (
    *(f"convolutions, {p}" for p in PASSES),
    *(f"transposed convolutions, {p}" for p in PASSES),
    "convolutions as one matmul (small maps), all passes",
    "dense layers, all passes",
    "BatchNorm, all passes",
    "bias adds and their gradients",
    "other element-wise ops (activations, sampling, loss)",
    "optimizer update",
    "waiting for the input pipeline",
    IDLE,
)


def _plain_op_type(op_type):
    """TensorFlow's own op type behind a oneDNN rewrite.

    On CPUs with AVX-512, TensorFlow's oneDNN graph pass renames the ops it
    takes over: `Conv2D` runs as `_MklNativeConv2D`, `_FusedConv2D` as
    `_MklNativeFusedConv2D`, a weight gradient with its bias's as
    `_MklNativeConv2DBackpropFilterWithBias`, `MatMul` as `_MklMatMul`.

    Args:
        op_type: the op type in the trace.

    Returns:
        The op type without the rewrite (`Conv2D`, `_FusedConv2D`,
        `Conv2DBackpropFilter`, `MatMul`); any other op type as it is.
    """
    match = re.fullmatch(r"_Mkl(?:Native)?(Fused(?!BatchNorm))?(\w+?)(?:WithBias)?", op_type)
    if match is None:
        return op_type
    fused, base = match.groups()
    return f"_Fused{base}" if fused else base


def op_category(name, optimizer_scope="adam"):
    """The role of one op of a training step, from its trace name `scope/...:OpType`.

    Args:
        name: the op event's name in the trace.
        optimizer_scope: the optimizer's name, the scope of its update ops.

    Returns:
        One of `CATEGORIES`.
    """
    scope, _, op_type = name.rpartition(":")
    op_type = _plain_op_type(op_type)
    parts = scope.split("/")
    if optimizer_scope in parts or op_type.startswith("ResourceApply"):
        return "optimizer update"
    if any(part.startswith(MATMUL_CONVOLUTION_LAYER) for part in parts):
        return "convolutions as one matmul (small maps), all passes"
    if op_type.startswith("FusedBatchNorm") or any("batch_normalization" in p for p in parts):
        return "BatchNorm, all passes"
    if op_type in CONVOLUTION_OPS:
        kind = "transposed convolutions" if "conv_transpose" in parts else "convolutions"
        if op_type == "Conv2DBackpropFilter":
            return f"{kind}, weight gradient"
        return f"{kind}, {'input gradient' if 'gradient_tape' in parts else 'forward'}"
    if op_type in MATMUL_OPS:
        return "dense layers, all passes"
    if op_type in ("BiasAdd", "BiasAddGrad"):
        return "bias adds and their gradients"
    return "other element-wise ops (activations, sampling, loss)"


def category_flops(vae):
    """FLOPs per example of each category a FLOP count applies to.

    A layer's input gradient and weight gradient cost as much as its forward
    pass, except the input gradient of the encoder's first layer, which nothing
    needs. Dense layers and convolutions as one matmul are one category each,
    all passes together.

    Returns:
        A dict category -> FLOPs per example and training step.
    """
    first = first_counted_layer(vae.encoder)
    first_kind, first_flops = layer_kind(first), layer_flops(first)
    names = {"convolution": "convolutions", "transposed convolution": "transposed convolutions"}
    all_passes = {
        "dense": "dense layers, all passes",
        "convolution as one matmul": "convolutions as one matmul (small maps), all passes",
    }
    flops = {}
    for kind, forward in flops_by_kind(vae).items():
        skipped = first_flops if kind == first_kind else 0
        if kind in all_passes:
            flops[all_passes[kind]] = 3 * forward - skipped
            continue
        flops[f"{names[kind]}, forward"] = forward
        flops[f"{names[kind]}, input gradient"] = forward - skipped
        flops[f"{names[kind]}, weight gradient"] = forward
    return flops


def read_trace(log_dir):
    """The op events of a profiler trace: `(start_ps, end_ps, name)` per line of the host.

    Args:
        log_dir: the folder given to `tf.profiler.experimental.start`.

    Returns:
        A list of lists of events, one list per executor thread that ran ops,
        and one more for the waits on the input pipeline.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = Path(log_dir).glob("plugins/profile/*/*.xplane.pb")
    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    lines = []
    for plane in space.planes:
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            events = []
            for event in line.events:
                name = names[event.metadata_id]
                is_op = line.name.startswith("tf_Compute") and ":" in name and "::" not in name
                if is_op or name == INPUT_EVENT:
                    start = line.timestamp_ns * 1000 + event.offset_ps
                    events.append((start, start + event.duration_ps, name))
            if events:
                lines.append(events)
    return lines


def _union_ps(intervals):
    """Total length of the union of `(start, end)` intervals."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def summarise_trace(lines, steps, batch_size, flops=None, optimizer_scope="adam"):
    """Groups a trace's op time by category.

    Args:
        lines: from `read_trace`.
        steps: training steps the trace holds.
        batch_size: examples per step.
        flops: from `category_flops`, for GFLOP/s.
        optimizer_scope: the optimizer's name.

    Returns:
        A dict: `categories` (name, `ms_per_step`, `share` of the summed time,
        `gflops` where FLOPs are known, `distinct_ops`, and `ops`: the slowest
        three with their ms per step), `ms_per_step` (the trace's span from first op
        to last, per step), `op_ms_per_step` (op time summed over threads) and
        `concurrency` (summed op time over the time any op ran).
    """
    events = [event for line in lines for event in line]
    if not events:
        raise ValueError(
            "Expected op events in the profiler trace. Received none: was the "
            "training step run between `tf.profiler.experimental.start` and `stop`?"
        )
    span = max(end for _, end, _ in events) - min(start for start, _, _ in events)
    busy = _union_ps([(start, end) for start, end, _ in events])
    by_category = {name: {} for name in CATEGORIES}
    for start, end, name in events:
        category = (
            "waiting for the input pipeline"
            if name == INPUT_EVENT
            else op_category(name, optimizer_scope)
        )
        ops = by_category[category]
        ops[name] = ops.get(name, 0) + end - start
    by_category[IDLE] = {IDLE: span - busy}
    summed = sum(sum(ops.values()) for ops in by_category.values())
    per_step_ms = 1e-9 / steps
    categories = []
    for name in CATEGORIES:
        ops = by_category[name]
        picoseconds = sum(ops.values())
        row = {
            "name": name,
            "ms_per_step": picoseconds * per_step_ms,
            "share": picoseconds / summed,
            "gflops": None,
            "distinct_ops": len(ops),
            "ops": [
                {"name": op, "ms_per_step": time * per_step_ms}
                for op, time in sorted(ops.items(), key=lambda item: -item[1])[:3]
            ],
        }
        if flops and flops.get(name) and picoseconds:
            row["gflops"] = flops[name] * batch_size * steps / (picoseconds * 1e-12) / 1e9
        categories.append(row)
    op_time = summed - (span - busy)
    return {
        "categories": categories,
        "ms_per_step": span * per_step_ms,
        "op_ms_per_step": op_time * per_step_ms,
        "concurrency": op_time / busy,
    }


def profile_training(contender, steps=20):
    """Profiles `steps` steps of a Keras contender's `fit`, and times as many unprofiled.

    Args:
        contender: a `training.KerasContender` (a compiled `keras_vae.VAE`).
        steps: training steps in the profiled window (and in the unprofiled one).

    Returns:
        The dict of `summarise_trace`, with `unprofiled_ms_per_step` and
        `profiled_ms_per_step` (windows of `fit` timed the same way), `steps` and
        `batch_size`.
    """
    import tensorflow as tf

    model = contender.model
    examples, seconds = contender.window(steps)
    unprofiled = seconds / (examples / contender.batch_size)
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        try:
            examples, seconds = contender.window(steps)
        finally:
            tf.profiler.experimental.stop()
        lines = read_trace(log_dir)
    timed_steps = examples // contender.batch_size
    # The trace holds the window's first step too, which the window's clock leaves out.
    traced_steps = timed_steps + contender.steps_per_execution
    summary = summarise_trace(
        lines,
        traced_steps,
        contender.batch_size,
        category_flops(model),
        optimizer_scope=model.optimizer.name,
    )
    return {
        **summary,
        "unprofiled_ms_per_step": 1e3 * unprofiled,
        "profiled_ms_per_step": 1e3 * seconds / timed_steps,
        "steps": traced_steps,
        "batch_size": contender.batch_size,
    }
