"""The bundle as a Triton model repository, checked with Triton's own `ModelConfig` protobuf
(from the `tritonclient` package, in the serving environment) against the ONNX graphs."""

import json
import subprocess

import onnx
import pytest

from keras_vae import triton
from keras_vae_inference import bundle

PARSE = """
import json, sys
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

for path in sys.argv[1:]:
    config = text_format.Parse(open(path).read(), model_config_pb2.ModelConfig())
    print(json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True)))
"""
ONNX_TO_TRITON = {onnx.TensorProto.FLOAT: "TYPE_FP32"}


def graph_tensors(values):
    return [
        {
            "name": value.name,
            "data_type": ONNX_TO_TRITON[value.type.tensor_type.elem_type],
            # The batch axis is Triton's, not part of dims.
            "dims": [str(d.dim_value) for d in value.type.tensor_type.shape.dim[1:]],
        }
        for value in values
    ]


def test_the_bundle_is_a_triton_repository_matching_its_onnx_graphs(
    exported_bundle, serving_venv, tmp_path
):
    directory, manifest = exported_bundle
    python = serving_venv
    parts = ("decoder", "encoder")
    parsed = subprocess.run(
        [python, "-c", PARSE, *(str(directory / part / "config.pbtxt") for part in parts)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stderr
    configs = dict(zip(parts, map(json.loads, parsed.stdout.splitlines()), strict=True))
    for part, config in configs.items():
        assert config["name"] == part  # Triton wants the folder's name
        assert config["backend"] == "onnxruntime"
        assert int(config["max_batch_size"]) > 0  # 0 would turn batching off
        assert "dynamic_batching" in config
        assert config["version_policy"] == {"latest": {"num_versions": 1}}
        for version in manifest["versions"]:
            # Triton's onnxruntime backend loads <model>/<version>/model.onnx.
            graph = onnx.load(str(directory / part / version / "model.onnx")).graph
            assert config["input"] == graph_tensors(graph.input)
            assert config["output"] == graph_tensors(graph.output)
            # The python backend's model, listed and hashed like every file.
            model_py = bundle.triton_python_model(part, version)
            assert (directory / model_py).read_bytes() == triton.PYTHON_MODEL.read_bytes()
            assert manifest["files"][model_py]["sha256"] == bundle.sha256(directory / model_py)
        # The python backend's configuration differs from the onnxruntime one in the backend only.
        text = (directory / bundle.triton_config(part)).read_text()
        python_config = directory / bundle.triton_python_config(part)
        assert python_config.read_text() == text.replace(
            'backend: "onnxruntime"', 'backend: "python"'
        )
        assert bundle.triton_python_config(part) in manifest["files"]


def test_an_unknown_backend_is_refused():
    spec = {"name": "z", "dtype": "float32", "shape": ["batch", 3]}
    with pytest.raises(ValueError, match="Expected a backend among"):
        triton.model_config("decoder", [spec], [spec], backend="tensorflow")


def test_a_tensor_without_a_batch_axis_is_refused():
    spec = {"name": "z", "dtype": "float32", "shape": [3]}
    with pytest.raises(ValueError, match="Expected a batch axis first"):
        triton.model_config("decoder", [spec], [spec])
