"""The HTTP server of keras-vae-inference, run from its installed wheel, spoken to by real clients:
plain HTTP for TF Serving's REST API, Triton's `tritonclient.http` for the Open Inference
Protocol. Answers are compared with onnxruntime run in this process."""

import asyncio
import json
import re
import subprocess
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from keras_vae_inference import ExportedVAE
from keras_vae_inference.server import Batcher
from pipelines.benchmarks.serving import running_server

TRITON_CLIENT = Path(__file__).resolve().parent / "triton_client.py"


def request(url, body=None, timeout=60):
    """(HTTP status, decoded JSON answer) of a GET, or of a POST of `body` (bytes or JSON)."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data), timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(serving_venv, real_bundle, tmp_path_factory):
    """The server of the real bundle on a free port: (base URL, ExportedVAE of the bundle)."""
    python, _ = serving_venv
    directory, _ = real_bundle
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(Path(python).parent / "keras-vae-serve", directory, log, threads=2) as url:
        yield url, ExportedVAE(directory)


@pytest.mark.slow
def test_tf_serving_rest_api(server):
    url, vae = server
    z = np.random.default_rng(0).standard_normal((3, vae.latent_dim)).astype(np.float32)
    expected = vae.decode(z)
    assert request(f"{url}/v1/models/decoder") == (200, {"name": "decoder", "ready": True})
    status, rows = request(f"{url}/v1/models/decoder:predict", {"instances": z.tolist()})
    assert status == 200
    np.testing.assert_allclose(np.array(rows["predictions"]), expected, atol=1e-6)
    named = {"instances": [{"z": row} for row in z.tolist()]}
    _, rows = request(f"{url}/v1/models/decoder:predict", named)
    np.testing.assert_allclose(np.array(rows["predictions"]), expected, atol=1e-6)
    _, columns = request(f"{url}/v1/models/decoder:predict", {"inputs": {"z": z.tolist()}})
    np.testing.assert_allclose(np.array(columns["outputs"]), expected, atol=1e-6)
    # Two outputs: one object per instance (rows), one list per output (columns).
    mean, log_var = vae.encode(expected)
    _, rows = request(f"{url}/v1/models/encoder:predict", {"instances": expected.tolist()})
    np.testing.assert_allclose([p["mean"] for p in rows["predictions"]], mean, atol=1e-6)
    np.testing.assert_allclose([p["log_var"] for p in rows["predictions"]], log_var, atol=1e-6)
    _, columns = request(f"{url}/v1/models/encoder:predict", {"inputs": expected.tolist()})
    np.testing.assert_allclose(columns["outputs"]["mean"], mean, atol=1e-6)
    _, rows = request(f"{url}/v1/models/sampler:predict", {"instances": [7, 8]})
    for seed, prediction in zip((7, 8), rows["predictions"], strict=True):
        np.testing.assert_allclose(prediction["image"], vae.sample(1, seed=seed)[0], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("decoder", b'{"instances": [[0, 0', 400, "not valid JSON"),
        ("decoder", {"instances": [[0.0, 1.0]]}, 400, r"Expected 'z' of shape \[batch, 32\]"),
        ("decoder", b'{"instances": [[NaN' + b", 0" * 31 + b"]]}", 400, "NaN or infinite"),
        ("decoder", {"instances": []}, 400, "Expected between 1 and 4096 rows"),
        ("decoder", {"instances": [["a"] * 32]}, 400, "nested lists of numbers"),
        ("decoder", {"instances": [[0.0] * 32], "inputs": [[0.0] * 32]}, 400, '"instances"'),
        ("decoder", {"instances": [{"x": [0.0] * 32}]}, 400, "Expected the input named 'z'"),
        ("encoder", {"instances": [[[[2.0]] * 28] * 28]}, 400, r"'images' in \[0.0, 1.0\]"),
        ("sampler", {"instances": [1.5]}, 400, "'seed' as integers"),
        ("sampler", {"instances": [-1]}, 400, r"'seed' in \[0, "),
        ("generator", {"instances": [[0.0] * 32]}, 404, "generator does not exist"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem_and_serving_goes_on(
    server, path, body, status, message
):
    url, vae = server
    received, answer = request(f"{url}/v1/models/{path}:predict", body)
    assert received == status
    assert re.search(message, answer["error"]), answer
    z = np.zeros((1, vae.latent_dim), np.float32)
    received, rows = request(f"{url}/v1/models/decoder:predict", {"instances": z.tolist()})
    assert received == 200
    np.testing.assert_allclose(rows["predictions"], vae.decode(z), atol=1e-6)


@pytest.mark.slow
def test_open_inference_protocol_with_tritons_client(server, serving_venv, tmp_path):
    url, vae = server
    python, _ = serving_venv
    rng = np.random.default_rng(1)
    z = rng.standard_normal((5, vae.latent_dim)).astype(np.float32)
    images = vae.decode(z)
    seeds = np.array([3, 4, 5], np.int64)
    np.savez(tmp_path / "requests.npz", z=z, images=images, seeds=seeds)
    result = subprocess.run(
        [python, TRITON_CLIENT, url.removeprefix("http://"), tmp_path / "requests.npz",
         tmp_path / "out.npz", tmp_path / "out.json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    arrays, report = np.load(tmp_path / "out.npz"), json.loads((tmp_path / "out.json").read_text())
    assert report["live"] and report["ready"] and all(report["models_ready"].values())
    metadata = report["metadata"]["decoder"]
    assert metadata["inputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, vae.latent_dim]}]
    assert metadata["outputs"] == [
        {"name": "image", "datatype": "FP32", "shape": [-1, *vae.image_shape]}
    ]
    mean, log_var = vae.encode(images)
    sampled_z = np.stack(
        [np.random.default_rng(int(s)).standard_normal(vae.latent_dim) for s in seeds]
    )
    for suffix in ("binary", "json"):
        np.testing.assert_allclose(arrays[f"decoder_{suffix}"], images, atol=1e-6)
        np.testing.assert_allclose(arrays[f"mean_{suffix}"], mean, atol=1e-6)
        np.testing.assert_allclose(arrays[f"log_var_{suffix}"], log_var, atol=1e-6)
        np.testing.assert_allclose(arrays[f"sampled_z_{suffix}"], sampled_z, atol=1e-6)
        np.testing.assert_allclose(arrays[f"sampled_{suffix}"], vae.decode(sampled_z), atol=1e-6)
    np.testing.assert_allclose(arrays["decoder_after_errors"], images, atol=1e-6)
    errors = report["errors"]
    expected = {
        "wrong latent size": ("400", f"Expected 'z' of shape [batch, {vae.latent_dim}]"),
        "wrong dtype": ("400", "Expected input 'z' of datatype FP32. Received: INT64"),
        "nan": ("400", "NaN or infinite"),
        "empty batch": ("400", "Expected between 1 and 4096 rows"),
        "unknown model": ("404", "generator does not exist"),
        "images out of range": ("400", "Expected 'images' in [0.0, 1.0]"),
    }
    for case, (status, message) in expected.items():
        assert errors[case]["status"] == status, (case, errors[case])
        assert message in errors[case]["message"], (case, errors[case])


@pytest.mark.slow
def test_concurrent_requests_each_get_their_own_answer(server):
    url, vae = server
    z = np.random.default_rng(2).standard_normal((32, vae.latent_dim)).astype(np.float32)

    def decode(row):
        status, answer = request(f"{url}/v1/models/decoder:predict", {"instances": [row.tolist()]})
        assert status == 200
        return np.array(answer["predictions"][0])

    with ThreadPoolExecutor(16) as pool:
        received = list(pool.map(decode, z))
    np.testing.assert_allclose(np.stack(received), vae.decode(z), atol=1e-6)


def test_the_batcher_runs_the_requests_that_queue_while_it_is_busy_together():
    calls, release = [], threading.Event()

    def double(rows):
        calls.append(rows.copy())
        if len(calls) == 1:
            release.wait(timeout=30)
        return rows * 2, rows.sum(axis=1)

    async def scenario():
        batcher = Batcher(double, max_rows=5)
        first = asyncio.create_task(batcher(np.ones((1, 2))))
        while not calls:  # the first request is running
            await asyncio.sleep(0.001)
        queued = [asyncio.create_task(batcher(np.full((n, 2), n, float))) for n in (2, 3, 4)]
        await asyncio.sleep(0.01)
        release.set()
        return await first, await asyncio.gather(*queued)

    first, queued = asyncio.run(scenario())
    # Queued while busy: 2 + 3 rows run together; 4 more would pass max_rows, so they wait.
    assert [len(call) for call in calls] == [1, 5, 4]
    np.testing.assert_array_equal(first[0], np.full((1, 2), 2.0))
    for n, (doubled, sums) in zip((2, 3, 4), queued, strict=True):
        np.testing.assert_array_equal(doubled, np.full((n, 2), 2.0 * n))
        np.testing.assert_array_equal(sums, np.full(n, 2.0 * n))


def test_an_error_reaches_the_requests_of_its_batch_only():
    def fail_on_negative(rows):
        if (rows < 0).any():
            raise ValueError("negative")
        return (rows,)

    async def scenario():
        batcher = Batcher(fail_on_negative, max_rows=1)
        results = await asyncio.gather(
            batcher(np.ones((1, 1))), batcher(-np.ones((1, 1))), batcher(np.ones((1, 1))),
            return_exceptions=True,
        )  # fmt: skip
        return results

    good, bad, good_again = asyncio.run(scenario())
    assert isinstance(bad, ValueError)
    np.testing.assert_array_equal(good[0], np.ones((1, 1)))
    np.testing.assert_array_equal(good_again[0], np.ones((1, 1)))


@pytest.mark.slow
def test_the_server_command_refuses_a_missing_bundle_or_version(
    serving_venv, real_bundle, tmp_path
):
    python, _ = serving_venv
    command = Path(python).parent / "keras-vae-serve"
    directory, _ = real_bundle
    for arguments, message in (
        ([tmp_path / "nowhere"], "No manifest.json"),
        ([directory, "--version", "9"], "Expected a version of"),
        ([directory, "--port", "0"], "Expected --port between 1 and 65535"),
        ([directory, "--max-batch-rows", "0"], "Expected --max-batch-rows of at least 1"),
    ):
        result = subprocess.run(
            [command, *map(str, arguments)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr.splitlines()[-1]
