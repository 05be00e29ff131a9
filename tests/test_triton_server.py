"""Exported bundles served by the real Triton Inference Server, spoken to by Triton's own clients.

The `nvidia-pytriton` wheel's `tritonserver` (core 2.51, python backend only)
serves each bundle as its model repository through the python-backend
configuration the bundle ships (`<part>/configs/python.pbtxt` and
`<part>/<version>/model.py`); answers are compared with onnxruntime run in this
process on the same `model.onnx` files.
"""

import http.client
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from keras_vae_inference import bundle as bundle_format
from tests.support.hostile_requests import bad_requests
from tests.support.servers import running_triton

ROOT = Path(__file__).resolve().parent.parent
TRITON_PYTHON = ROOT / ".venv-triton" / "bin" / "python"
CHECKS = Path(__file__).resolve().parent / "support" / "triton_checks.py"
DATATYPES = {"float32": "FP32", "int64": "INT64"}
# Fields of Triton's model configuration the export sets; Triton fills in the rest.
EXPORTED_FIELDS = ("name", "max_batch_size", "version_policy")


@pytest.fixture(scope="module")
def triton_python():
    if not TRITON_PYTHON.is_file():
        pytest.fail(f"No Triton environment at {TRITON_PYTHON}: run `make triton-deps`.")
    return TRITON_PYTHON


@pytest.fixture(scope="module")
def autoencoder_bundle(small_trained_vae, tmp_path_factory):
    """An autoencoder exported twice into one bundle: versions 1 and 2."""
    import keras

    import keras_vae
    from keras_vae.export import export_bundle

    vae, images = small_trained_vae
    autoencoder = keras_vae.Autoencoder(
        keras.models.clone_model(vae.encoder), keras.models.clone_model(vae.decoder)
    )
    directory = tmp_path_factory.mktemp("exported") / "autoencoder"
    export_bundle(autoencoder, directory, images[:16])
    return directory, export_bundle(autoencoder, directory, images[:16])


def model_requests(manifest, rng):
    """`(spec, arrays)`: each part's inputs (5 rows, drawn within their ranges) and outputs."""
    spec, arrays = {"models": {}, "versions": sorted(manifest["versions"], key=int)}, {}
    for part in manifest["parts"]:
        inputs = {}
        for tensor in manifest[part]["inputs"]:
            shape = [5, *tensor["shape"][1:]]
            key = inputs[tensor["name"]] = f"{part}.{tensor['name']}"
            if tensor["name"] == "seed":
                # Triton's shape of a batch of scalars: dims [1].
                arrays[key] = rng.integers(0, 2**63 - 1, (5, 1), dtype=np.int64)
            elif tensor["name"] == "labels":
                arrays[key] = np.eye(shape[1], dtype=np.float32)[np.arange(5) % shape[1]]
            elif tensor["name"] == "images":
                arrays[key] = rng.random(shape).astype(np.float32)
            else:
                arrays[key] = rng.standard_normal(shape).astype(np.float32)
        outputs = [tensor["name"] for tensor in manifest[part]["outputs"]]
        spec["models"][part] = {"inputs": inputs, "outputs": outputs}
    return spec, arrays


def run_checks(python, http_url, grpc_url, spec, arrays, folder):
    (folder / "spec.json").write_text(json.dumps(spec))
    np.savez(folder / "requests.npz", **arrays)
    result = subprocess.run(
        [python, CHECKS, http_url.removeprefix("http://"), grpc_url, folder / "spec.json",
         folder / "requests.npz", folder / "out.npz", folder / "out.json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return np.load(folder / "out.npz"), json.loads((folder / "out.json").read_text())


def parsed_config(python, path):
    """A `config.pbtxt` as Triton's `ModelConfig` message, as a dict (Triton's own protobuf)."""
    script = (
        "import json, sys\n"
        "from google.protobuf import json_format, text_format\n"
        "from tritonclient.grpc import model_config_pb2\n"
        "config = text_format.Parse(open(sys.argv[1]).read(), model_config_pb2.ModelConfig())\n"
        "print(json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True)))\n"
    )
    result = subprocess.run([python, "-c", script, path], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tensors(entries):
    return [(t["name"], t["data_type"], [int(d) for d in t["dims"]]) for t in entries]


@pytest.mark.parametrize(
    "name", ["real_bundle", "autoencoder_bundle", "conditional_bundle", "two_level_bundle"]
)
def test_triton_serves_the_bundle_as_exported(name, request, triton_python, tmp_path):
    directory, manifest = request.getfixturevalue(name)[:2]
    repository = tmp_path / "repository"
    shutil.copytree(directory, repository)  # Triton reads a copy; the bundle stays as exported
    spec, arrays = model_requests(manifest, np.random.default_rng(0))
    with running_triton(triton_python, repository, tmp_path / "triton.log") as (http_url, grpc):
        outputs, report = run_checks(triton_python, http_url, grpc, spec, arrays, tmp_path)
    latest = str(manifest["latest_version"])
    # The version policy (latest: 1) loads the newest version only, and every model is READY.
    assert report["ready"] and report["grpc_ready"]
    assert sorted((m["name"], m["version"], m["state"]) for m in report["index"]) == [
        (part, latest, "READY") for part in sorted(manifest["parts"])
    ]
    for part in manifest["parts"]:
        served = report["models"][part]
        assert served["ready"] == {version: version == latest for version in spec["versions"]}
        # Triton's metadata, over HTTP and gRPC, is the manifest's signature.
        for tensor_kind in ("inputs", "outputs"):
            expected = [
                {"name": t["name"], "datatype": DATATYPES[t["dtype"]],
                 "shape": [-1, *(t["shape"][1:] or [1])]}
                for t in manifest[part][tensor_kind]
            ]  # fmt: skip
            assert served["metadata"][tensor_kind] == expected
            grpc_tensors = [
                {**t, "shape": [int(d) for d in t["shape"]]}
                for t in served["grpc_metadata"][tensor_kind]
            ]
            assert grpc_tensors == expected
        assert served["metadata"]["versions"] == [latest]
        # The configuration Triton loaded is the onnxruntime one, but for the backend.
        exported = parsed_config(triton_python, repository / bundle_format.triton_config(part))
        loaded = served["config"]
        assert loaded["backend"] == "python" and exported["backend"] == "onnxruntime"
        for field in EXPORTED_FIELDS:
            assert loaded[field] == exported[field], field
        assert tensors(loaded["input"]) == tensors(exported["input"])
        assert tensors(loaded["output"]) == tensors(exported["output"])
        assert loaded["dynamic_batching"]["max_queue_delay_microseconds"] == int(
            exported["dynamic_batching"]["max_queue_delay_microseconds"]
        )
        # Answers equal in-process onnxruntime on the same file, over every protocol.
        session = onnxruntime.InferenceSession(
            directory / bundle_format.onnx_file(part, latest), providers=["CPUExecutionProvider"]
        )
        feeds = {
            name: arrays[key].reshape(-1, *shape[1:])
            for (name, key), shape in zip(
                spec["models"][part]["inputs"].items(),
                (value.shape for value in session.get_inputs()), strict=True,
            )
        }  # fmt: skip
        names = spec["models"][part]["outputs"]
        expected_outputs = dict(zip(names, session.run(names, feeds), strict=True))
        for protocol in ("binary", "json", "grpc"):
            for output, values in expected_outputs.items():
                np.testing.assert_allclose(
                    outputs[f"{part}.{output}.{protocol}"], values, atol=1e-6, rtol=0
                )
    # Concurrent batch-1 clients were batched by Triton's dynamic batcher.
    batches = report["decoder_batches"]
    assert max(map(int, batches["batches"])) > 1, batches
    assert batches["executions"] < batches["inferences"], batches


def test_triton_refuses_a_broken_configuration_with_its_own_message(
    exported_bundle, triton_python, tmp_path
):
    directory, manifest = exported_bundle
    repository = tmp_path / "repository"
    shutil.copytree(directory, repository)
    config = repository / bundle_format.triton_python_config("decoder")
    latent = manifest["decoder"]["inputs"][0]["shape"][1]
    text = config.read_text()
    assert f"dims: [ {latent} ]" in text
    config.write_text(text.replace(f"dims: [ {latent} ]", "dims: [ 0 ]", 1))
    log = tmp_path / "triton.log"
    options = ["--exit-on-error=false"]
    with running_triton(triton_python, repository, log, options, ready=False) as (http_url, _):
        index = subprocess.run(
            [triton_python, "-c",
             "import json, sys, tritonclient.http as h\n"
             "print(json.dumps(h.InferenceServerClient(sys.argv[1]).get_model_repository_index()))",
             http_url.removeprefix("http://")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert index.returncode == 0, index.stderr
    states = {m["name"]: m for m in json.loads(index.stdout)}
    assert states["encoder"]["state"] == "READY"
    assert states["decoder"]["state"] == "UNAVAILABLE"
    message = "model input 'z' dimension must be integer >= 1"
    assert message in states["decoder"]["reason"]
    assert message in log.read_text()


def test_triton_decides_on_the_bad_requests_as_the_table_says(real_bundle, triton_python, tmp_path):
    directory, manifest = real_bundle
    latent = manifest["decoder"]["inputs"][0]["shape"][1]
    repository = tmp_path / "repository"
    shutil.copytree(directory, repository)
    decisions = {}
    with running_triton(triton_python, repository, tmp_path / "triton.log") as (http_url, _):
        host, port = http_url.removeprefix("http://").split(":")
        for bad in bad_requests(latent):
            if bad.triton is not None:
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                connection.request("POST", bad.path, bad.body, bad.headers)
                status = connection.getresponse().status
                connection.close()
                decisions[bad.name] = "answered" if status == 200 else "refused"
        # Values nested any way in row-major order: Triton reads them; so does keras-vae-serve.
        nested = {"inputs": [{"name": "z", "shape": [1, latent], "datatype": "FP32",
                              "data": np.zeros((2, latent // 2)).tolist()}]}  # fmt: skip
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        connection.request("POST", "/v2/models/decoder/infer", json.dumps(nested))
        assert connection.getresponse().status == 200
    table = {bad.name: bad.triton for bad in bad_requests(latent) if bad.triton is not None}
    assert decisions == table


def test_the_launcher_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    result = subprocess.run(
        [sys.executable, ROOT / "examples" / "triton" / "serve.py", tmp_path],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Expected an export bundle" in result.stderr
