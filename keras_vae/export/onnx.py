"""The ONNX file of one part: converted by tf2onnx, fixed up, checked; its float16 variant."""

import json

import numpy as np
import onnx
import onnxruntime
import tf2onnx

from keras_vae.export.errors import ExportVerificationError
from keras_vae.files import write_bytes_atomically
from keras_vae_inference import bundle

# Opset 17 is the newest that tf2onnx 1.17 converts this model to and that
# onnxruntime-web and older runtimes still accept.
OPSET = 17
# A two-level bundle's sampler hashes its seeds with BitwiseXor, new in opset 18
# (onnxruntime 1.14 and later).
SAMPLER_OPSET = 18
# Ops that would make a graph's answers random; none may be exported.
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
              "Multinomial", "Bernoulli"}  # fmt: skip


def convert_to_onnx(function, path, outputs, properties, opset=OPSET):
    """Converts a `tf.function` to ONNX with its outputs in the order given.

    Args:
        function: a `tf.function` with an input signature.
        path: the ONNX file to write.
        outputs: the output names, in the order consumers will see them.
        properties: dict of strings stored as the model's `metadata_props`,
            with `doc_string` as its summary.
        opset: the ONNX opset to convert to.
    """
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=function.input_signature, opset=opset
    )
    expected = ([spec.name for spec in function.input_signature], sorted(outputs))
    received = ([v.name for v in proto.graph.input], sorted(v.name for v in proto.graph.output))
    if received != expected:
        raise ExportVerificationError(
            f"tf2onnx named the inputs and outputs {received}; expected {expected}."
        )
    # tf2onnx orders outputs by name; `session.run(None, ...)` returns them in
    # graph order, so it must be the documented one (mean before log_var).
    ordered = sorted(proto.graph.output, key=lambda value: outputs.index(value.name))
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)
    onnx.helper.set_model_props(proto, properties)
    proto.doc_string = properties["keras_vae.summary"]
    # tf2onnx names each unknown dimension separately; consumers want one `batch`.
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    random_ops = sorted({node.op_type for node in proto.graph.node} & RANDOM_OPS)
    if random_ops:
        raise ExportVerificationError(f"The ONNX graph contains random ops {random_ops}.")
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    write_bytes_atomically(path, proto.SerializeToString())


def run_onnx(path, feeds):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def make_variant(name, work, version, feeds, reference):
    """Writes a smaller decoder; returns its file, size and error against float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path = work / bundle.variant_file(name, version)
    source = onnx.load(str(work / bundle.onnx_file("decoder", version)))
    # Inputs and outputs stay float32, so consumers call it like the original.
    # The converter appends the input's Cast last; strict consumers need the
    # nodes in topological order.
    converted = convert_float_to_float16(source, keep_io_types=True)
    _sort_topologically(converted.graph)
    write_bytes_atomically(path, converted.SerializeToString())
    onnx.checker.check_model(str(path), full_check=True)
    output = run_onnx(path, feeds)[bundle.IMAGE]
    return {
        "file": bundle.variant_file(name, version),
        "bytes": path.stat().st_size,
        "max_abs_error_vs_float32": float(np.max(np.abs(output - reference))),
    }


def _sort_topologically(graph):
    """Reorders a graph's nodes so that each comes after the nodes it reads from."""
    available = {"", *(v.name for v in graph.input), *(t.name for t in graph.initializer)}
    remaining, ordered = list(graph.node), []
    while remaining:
        ready = [node for node in remaining if all(name in available for name in node.input)]
        if not ready:
            raise ExportVerificationError("The ONNX graph has a cycle or an undefined input.")
        for node in ready:
            available.update(node.output)
        ordered += ready
        placed = {id(node) for node in ready}
        remaining = [node for node in remaining if id(node) not in placed]
    del graph.node[:]
    graph.node.extend(ordered)


def onnx_properties(part, description, signature, metadata, package_version, version):
    """The manifest's essentials as ONNX `metadata_props`, so a lone file describes itself."""

    def shapes(values):
        return ", ".join(f"{v['name']} {v['dtype']} {v['shape']}" for v in values)

    summary = (
        f"keras-vae {part} of {description['name']}: {shapes(signature['inputs'])} -> "
        f"{shapes(signature['outputs'])}; "
        + "; ".join(f"{v['name']}: {v['meaning']}" for v in signature["outputs"])
        + "."
    )
    return {
        "keras_vae.format": bundle.FORMAT,
        "keras_vae.format_version": str(bundle.FORMAT_VERSION),
        "keras_vae.part": part,
        "keras_vae.model_version": str(version),
        "keras_vae.summary": summary,
        "keras_vae.latent_dim": str(description["latent_dim"]),
        "keras_vae.image_shape": json.dumps(description["image_shape"]),
        "keras_vae.likelihood": description["likelihood"],
        "keras_vae.inputs": json.dumps(signature["inputs"]),
        "keras_vae.outputs": json.dumps(signature["outputs"]),
        "keras_vae.training_dataset": str((metadata or {}).get("dataset", "unknown")),
        "keras_vae.version": str(package_version),
    }
