"""Triton Inference Server model configurations (`config.pbtxt`) for ONNX models.

Triton reads a model repository laid out as `<model>/config.pbtxt` beside
`<model>/<version>/model.onnx`. The configuration is protobuf text format of
Triton's `ModelConfig` message; this module writes it for the onnxruntime
backend, with dynamic batching: the batch axis is left out of `dims` and
`max_batch_size` bounds the batches Triton forms from queued requests.

It also writes the same configuration for Triton's python backend, whose
`model.py` (`keras_vae/triton_model.py`) runs the ONNX file in onnxruntime:
Triton builds without the onnxruntime backend serve the bundle with it.
"""

import json
from pathlib import Path

# Triton's data types for the NumPy dtype names the manifest uses.
DATA_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64"}
MAX_BATCH_SIZE = 256
MAX_QUEUE_DELAY_MICROSECONDS = 500


BACKENDS = ("onnxruntime", "python")
# The python backend's model, copied into each version folder beside model.onnx.
PYTHON_MODEL = Path(__file__).with_name("triton_model.py")


def model_config(name, inputs, outputs, description="", backend="onnxruntime"):
    """Returns the `config.pbtxt` text of an ONNX model served by Triton.

    Args:
        name: the model's name, which is also its folder's name in the repository.
        inputs: the manifest's input specs, dicts with `name`, `dtype` and `shape`
            (the shape starting with the batch axis, `"batch"`).
        outputs: the output specs, in the same form.
        description: one line written as a comment at the top.
        backend: `"onnxruntime"`, or `"python"` for the python backend running
            `PYTHON_MODEL`; nothing else in the configuration differs.

    Returns:
        The configuration as text.
    """

    if backend not in BACKENDS:
        raise ValueError(f"Expected a backend among {list(BACKENDS)}. Received: {backend!r}.")

    def tensors(specs):
        entries = []
        for spec in specs:
            if spec["shape"][0] != "batch":
                raise ValueError(f"Expected a batch axis first. Received: {spec}")
            dims = ", ".join(str(int(d)) for d in spec["shape"][1:])
            # A batch of scalars: Triton wants dims of one or more axes, so it
            # is [ 1 ], reshaped to the model's [batch].
            shape = (
                f"    dims: [ {dims} ]\n"
                if dims
                else ("    dims: [ 1 ]\n    reshape: { shape: [ ] }\n")
            )
            entries.append(
                "  {\n"
                f"    name: {json.dumps(spec['name'])}\n"
                f"    data_type: {DATA_TYPES[spec['dtype']]}\n"
                f"{shape}"
                "  }"
            )
        return ",\n".join(entries)

    comment = f"# {description}\n" if description else ""
    return (
        f"{comment}"
        f"name: {json.dumps(name)}\n"
        f"backend: {json.dumps(backend)}\n"
        f"max_batch_size: {MAX_BATCH_SIZE}\n"
        f"input [\n{tensors(inputs)}\n]\n"
        f"output [\n{tensors(outputs)}\n]\n"
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_MICROSECONDS}\n"
        "}\n"
        "version_policy: { latest: { num_versions: 1 } }\n"
        "instance_group [ { kind: KIND_CPU, count: 1 } ]\n"
    )
