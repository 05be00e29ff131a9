"""The `model.py` that Triton's python backend runs: a bundle part's ONNX file in onnxruntime.

The exporter copies this file into each version folder of a part
(`decoder/<version>/model.py`) beside `model.onnx`, and writes the part's
configuration for the python backend (`decoder/configs/python.pbtxt`): a Triton
server that has no onnxruntime backend (the one in the `nvidia-pytriton` wheel
has only the python backend) then serves the bundle with
`--model-config-name=python`, with the same names, dims, datatypes, batching and
version policy as the onnxruntime configuration. It runs inside Triton's Python
stub only, which provides `triton_python_backend_utils`; it needs NumPy and
onnxruntime there.
"""

import json
import os

import numpy as np
import onnxruntime
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Runs the batches Triton's dynamic batcher forms as one onnxruntime call."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [tensor["name"] for tensor in config["output"]]
        folder = os.path.join(args["model_repository"], args["model_version"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("intra_op_thread_count", "0"))
        # Idle threads that spin would take the cores of Triton's own HTTP and gRPC threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            os.path.join(folder, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        # The graph's shape of one row of each input: a batch of scalars comes as
        # Triton's dims [1] and goes to the graph as [batch].
        shapes = {value.name: value.shape[1:] for value in self.session.get_inputs()}
        self.row_shapes = [tuple(shapes[name]) for name in self.inputs]

    def execute(self, requests):
        feeds = [
            [pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs]
            for request in requests
        ]
        batch = {
            name: np.concatenate([tensors[i] for tensors in feeds]).reshape(-1, *row_shape)
            for i, (name, row_shape) in enumerate(zip(self.inputs, self.row_shapes, strict=True))
        }
        results = self.session.run(self.outputs, batch)
        responses, start = [], 0
        for tensors in feeds:
            end = start + len(tensors[0])
            outputs = [
                pb_utils.Tensor(name, result[start:end])
                for name, result in zip(self.outputs, results, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
            start = end
        return responses
