"""The HTTP server of keras-vae-inference, run from its installed wheel, spoken to by real clients:
plain HTTP for TF Serving's REST API, Triton's `tritonclient.http` for the Open Inference
Protocol. Answers are compared with onnxruntime run in this process."""

import asyncio
import http.client
import json
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from keras_vae_inference import ExportedVAE
from keras_vae_inference.batcher import Batcher
from tests.support.hostile_requests import bad_requests
from tests.support.servers import running_server

TRITON_CLIENT = Path(__file__).resolve().parent / "support" / "triton_client.py"


def request(url, body=None, timeout=60):
    """(HTTP status, decoded JSON answer) of a GET, or of a POST of `body` (bytes or JSON)."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data), timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def serve_command(serving_venv):
    """The `keras-vae-serve` command of the inference environment."""
    return serving_venv.parent / "keras-vae-serve"


@pytest.fixture(scope="module")
def server(serve_command, real_bundle, tmp_path_factory):
    """The server of the real bundle on a free port: (base URL, ExportedVAE of the bundle)."""
    directory, _ = real_bundle
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(serve_command, directory, log, threads=2) as url:
        yield url, ExportedVAE(directory)


def test_tf_serving_rest_api(server):
    url, vae = server
    z = np.random.default_rng(0).standard_normal((3, vae.latent_dim)).astype(np.float32)
    expected = vae.decode(z)
    status = {"version": str(vae.version), "state": "AVAILABLE",
              "status": {"error_code": "OK", "error_message": ""}}  # fmt: skip
    assert request(f"{url}/v1/models/decoder") == (200, {"model_version_status": [status]})
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


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("decoder", b'{"instances": [[0, 0', 400, "not valid JSON"),
        ("decoder", {"instances": [[0.0, 1.0]]}, 400, r"Expected 'z' of shape \[batch, 32\]"),
        ("decoder", b'{"instances": [[NaN' + b", 0" * 31 + b"]]}", 400, "NaN or infinite"),
        ("decoder", {"instances": []}, 400, "Expected between 1 and 4096 rows"),
        ("decoder", {"instances": [["a"] * 32]}, 400, "nested lists of numbers"),
        ("decoder", {"instances": [[0.0] * 32], "inputs": [[0.0] * 32]}, 400, '"instances"'),
        ("decoder", {"instances": [{"x": [0.0] * 32}]}, 400, r"Expected the inputs named \['z'\]"),
        ("encoder", {"instances": [[[[2.0]] * 28] * 28]}, 400, r"'images' in \[0.0, 1.0\]"),
        ("sampler", {"instances": [1.5]}, 400, "'seed' as integers"),
        ("sampler", {"instances": [-1]}, 400, r"'seed' in \[0, "),
        ("generator", {"instances": [[0.0] * 32]}, 404, "'generator' does not exist"),
        (
            "decoder",
            {"instances": [[0.0] * 32], "signature_name": "x" * 500},
            400,
            r'Expected signature_name "serving_default". Received: \'x{59}\.$',
        ),
        (
            "decoder",
            {"instances": [[0.0] * 32], **{f"k{i}": 1 for i in range(99)}},
            400,
            r"Expected no keys beside the data. Received: \['k0', 'k1', 'k10', 'k11', 'k12', "
            r"'k13', 'k14', 'k15'\]\.$",
        ),
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


def _exact_answer(connection, vae, z):
    """Posts `z` as binary tensors on `connection`; checks the answer against `vae`."""
    body, headers = v2_body({"z": z}, binary=True)
    connection.request("POST", "/v2/models/decoder/infer", body, headers)
    answer = connection.getresponse()
    payload = answer.read()
    assert answer.status == 200, payload
    length = int(answer.getheader("Inference-Header-Content-Length"))
    image = np.frombuffer(payload[length:], np.float32).reshape(vae.decode(z).shape)
    np.testing.assert_allclose(image, vae.decode(z), atol=1e-6)


def test_each_bad_v2_request_gets_a_400_naming_it_and_its_connection_serves_on(server):
    url, vae = server
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    z = np.random.default_rng(7).standard_normal((2, vae.latent_dim)).astype(np.float32)
    for bad in bad_requests(vae.latent_dim):
        connection.request("POST", bad.path, bad.body, bad.headers)
        answer = connection.getresponse()
        error = json.loads(answer.read())["error"]
        assert (answer.status, bad.words in error) == (400, True), (bad.name, error)
        _exact_answer(connection, vae, z)  # the same connection, kept alive
    # Data nested any way, in row-major order, is read as Triton reads it.
    nested = {"inputs": [{"name": "z", "shape": [2, vae.latent_dim], "datatype": "FP32",
                          "data": z.reshape(4, -1).tolist()}]}  # fmt: skip
    status, answer = request(f"{url}/v2/models/decoder/infer", nested)
    assert status == 200
    np.testing.assert_allclose(answer["outputs"][0]["data"], vae.decode(z).ravel(), atol=1e-6)


def test_no_route_changes_the_server_and_it_listens_on_this_machine_only(server):
    url, vae = server
    for path in ("/v2/repository/models/sampler/unload", "/v2/repository/models/decoder/load",
                 "/v2/repository/index", "/v1/models/sampler:unload"):  # fmt: skip
        status, answer = request(f"{url}{path}", b"{}")
        assert status == 404 and "No route" in answer["error"], path
    status, answer = request(f"{url}/v2/models/decoder/infer")  # a GET
    assert status == 405 and "Expected POST on this route. Received: GET" in answer["error"]
    status, answer = request(f"{url}/v1/models/sampler:predict", {"instances": [3]})
    assert status == 200
    np.testing.assert_allclose(answer["predictions"][0]["image"], vae.sample(1, 3)[0], atol=1e-6)
    port = url.rsplit(":", 1)[1]
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                               text=True, check=True).stdout.split()  # fmt: skip
    assert f"127.0.0.1:{port}" in listening and f"0.0.0.0:{port}" not in listening


def test_open_inference_protocol_with_tritons_client(server, serving_venv, tmp_path):
    url, vae = server
    python = serving_venv
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
        "wrong dtype": ("400", "Expected input 'z' of datatype FP32. Received: 'INT64'"),
        "nan": ("400", "NaN or infinite"),
        "empty batch": ("400", "Expected between 1 and 4096 rows"),
        "unknown model": ("404", "'generator' does not exist"),
        "images out of range": ("400", "Expected 'images' in [0.0, 1.0]"),
    }
    for case, (status, message) in expected.items():
        assert errors[case]["status"] == status, (case, errors[case])
        assert message in errors[case]["message"], (case, errors[case])


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


def test_a_request_right_after_the_last_batch_ends_starts_a_new_one():
    async def scenario():
        batcher = Batcher(lambda rows: (rows + 1,), max_rows=4)
        first = await batcher(np.zeros((1, 1)))
        # The worker that ran it has just returned; this request must not wait for it.
        second = await asyncio.wait_for(batcher(np.ones((1, 1))), timeout=30)
        return first, second

    first, second = asyncio.run(scenario())
    np.testing.assert_array_equal(first[0], np.ones((1, 1)))
    np.testing.assert_array_equal(second[0], np.full((1, 1), 2.0))


def test_a_failing_batch_runs_again_request_by_request_so_only_the_bad_one_fails():
    calls = []

    def fail_on_negative(rows):
        calls.append(len(rows))
        if (rows < 0).any():
            raise ValueError("negative")
        return (rows * 2,)

    async def scenario():
        batcher = Batcher(fail_on_negative, max_rows=8)
        return await asyncio.gather(
            batcher(np.ones((1, 1))), batcher(-np.ones((2, 1))), batcher(np.full((3, 1), 3.0)),
            return_exceptions=True,
        )  # fmt: skip

    good, bad, good_again = asyncio.run(scenario())
    # One batch of all three, then each alone.
    assert calls == [6, 1, 2, 3]
    assert isinstance(bad, ValueError)
    np.testing.assert_array_equal(good[0], np.full((1, 1), 2.0))
    np.testing.assert_array_equal(good_again[0], np.full((3, 1), 6.0))


@pytest.mark.parametrize("max_rows, parts", [(1, [256, 256, 88]), (300, [300, 300])])
def test_a_request_larger_than_a_batch_is_computed_in_parts_of_a_batch(max_rows, parts):
    calls = []

    def square_and_sum(rows, weights):
        calls.append(len(rows))
        return rows**2, (rows * weights).sum(axis=1)

    rows = np.arange(1200, dtype=float).reshape(600, 2)
    weights = np.random.default_rng(0).standard_normal((600, 2))
    squares, sums = asyncio.run(Batcher(square_and_sum, max_rows=max_rows)(rows, weights))
    assert calls == parts
    np.testing.assert_array_equal(squares, rows**2)
    np.testing.assert_allclose(sums, np.einsum("ij,ij->i", rows, weights), rtol=1e-12)


def test_rows_that_overflow_float32_fail_alone_beside_valid_clients(server):
    url, vae = server
    z = np.random.default_rng(3).standard_normal((64, vae.latent_dim)).astype(np.float32)
    expected = vae.decode(z)
    poison = {"instances": [[1e39] * vae.latent_dim]}  # finite in JSON, infinite in float32

    def valid(index):
        body = {"instances": [z[index].tolist()]}
        status, answer = request(f"{url}/v1/models/decoder:predict", body)
        return status, np.array(answer["predictions"][0], np.float32)

    def poisoning(_):
        return request(f"{url}/v1/models/decoder:predict", poison)

    with ThreadPoolExecutor(16) as pool:
        bad = [pool.submit(poisoning, i) for i in range(64)]
        good = list(pool.map(valid, [i % 64 for i in range(256)]))
    for status, answer in (future.result() for future in bad):
        assert status == 400 and "NaN or infinite" in answer["error"]
    assert all(status == 200 for status, _ in good)
    np.testing.assert_allclose(
        np.stack([image for _, image in good]), expected[np.arange(256) % 64], atol=1e-6
    )


def test_the_server_command_refuses_a_missing_bundle_or_version(
    serve_command, real_bundle, tmp_path
):
    directory, _ = real_bundle
    for arguments, message in (
        ([tmp_path / "nowhere"], "No manifest.json"),
        ([directory, "--version", "9"], "Expected a version of"),
        ([directory, "--port", "0"], "Expected --port between 1 and 65535"),
        ([directory, "--max-batch-rows", "0"], "Expected --max-batch-rows of at least 1"),
        ([directory, "--workers", "0"], "Expected --workers of at least 1"),
        ([directory, "--threads", "0"], "Expected --threads of at least 1"),
        ([directory, "--body-timeout", "nan"], "Expected --body-timeout above 0 seconds"),
        ([directory, "--header-timeout", "0"], "Expected --header-timeout above 0 seconds"),
        ([directory, "--max-connections", "0"], "Expected --max-connections of at least 1"),
    ):
        result = subprocess.run(
            [serve_command, *map(str, arguments)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr.splitlines()[-1]


def v2_body(inputs, binary):
    """(body, headers) of an Open Inference Protocol request of float32 `inputs`, tensors as
    JSON or binary (then answered in binary too)."""
    tensors = [{"name": n, "shape": list(v.shape), "datatype": "FP32"} for n, v in inputs.items()]
    headers = {}
    if binary:
        for tensor, values in zip(tensors, inputs.values(), strict=True):
            tensor["parameters"] = {"binary_data_size": values.nbytes}
        header = json.dumps({"inputs": tensors, "parameters": {"binary_data_output": True}})
        body = header.encode() + b"".join(v.tobytes() for v in inputs.values())
        headers["Inference-Header-Content-Length"] = str(len(header))
    else:
        for tensor, values in zip(tensors, inputs.values(), strict=True):
            tensor["data"] = values.reshape(-1).tolist()
        body = json.dumps({"inputs": tensors}).encode()
    return body, headers


def v2_request(url, inputs, binary):
    """(status, {output: array}) of an Open Inference Protocol request of float32 `inputs`."""
    posted = urllib.request.Request(url, *v2_body(inputs, binary))
    try:
        with urllib.request.urlopen(posted, timeout=60) as answer:
            payload, length = answer.read(), answer.headers.get("Inference-Header-Content-Length")
            status = answer.status
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    header = json.loads(payload[: int(length)] if length else payload)
    outputs, offset = {}, int(length or 0)
    for output in header["outputs"]:
        if "data" in output:
            values = np.array(output["data"], np.float32)
        else:
            size = output["parameters"]["binary_data_size"]
            values = np.frombuffer(payload[offset : offset + size], np.float32)
            offset += size
        outputs[output["name"]] = values.reshape(output["shape"])
    return status, outputs


def test_a_conditional_bundle_is_served_over_both_protocols(
    serve_command, conditional_bundle, tmp_path
):
    directory, _ = conditional_bundle
    vae = ExportedVAE(directory)
    rng = np.random.default_rng(4)
    z = rng.standard_normal((6, vae.latent_dim)).astype(np.float32)
    classes = vae.model_inputs.num_classes
    labels = np.eye(classes, dtype=np.float32)[np.arange(6) % classes]
    images = vae.decode(z, labels)
    mean, log_var = vae.encode(images, labels)
    with running_server(serve_command, directory, tmp_path / "server.log", threads=2) as url:
        metadata = request(f"{url}/v2/models/decoder")[1]
        assert [tensor["name"] for tensor in metadata["inputs"]] == ["z", "labels"]
        for binary in (False, True):
            status, out = v2_request(f"{url}/v2/models/decoder/infer",
                                     {"z": z, "labels": labels}, binary)  # fmt: skip
            assert status == 200, out
            np.testing.assert_allclose(out["image"], images, atol=1e-6)
            _, out = v2_request(f"{url}/v2/models/encoder/infer",
                                {"images": images, "labels": labels}, binary)  # fmt: skip
            np.testing.assert_allclose(out["mean"], mean, atol=1e-6)
            np.testing.assert_allclose(out["log_var"], log_var, atol=1e-6)
        rows = [{"z": a.tolist(), "labels": b.tolist()} for a, b in zip(z, labels, strict=True)]
        _, answer = request(f"{url}/v1/models/decoder:predict", {"instances": rows})
        np.testing.assert_allclose(answer["predictions"], images, atol=1e-6)
        columns = {"inputs": {"images": images.tolist(), "labels": labels.tolist()}}
        _, answer = request(f"{url}/v1/models/encoder:predict", columns)
        np.testing.assert_allclose(answer["outputs"]["mean"], mean, atol=1e-6)
        seeds = [{"seed": 7 + i, "labels": labels[i].tolist()} for i in range(3)]
        _, answer = request(f"{url}/v1/models/sampler:predict", {"instances": seeds})
        for i, prediction in enumerate(answer["predictions"]):
            expected = vae.sample(1, seed=7 + i, labels=labels[i : i + 1])
            np.testing.assert_allclose(prediction["image"], expected[0], atol=1e-6)
        # Without labels, or with labels outside [0, 1], the request is refused by name.
        status, answer = request(f"{url}/v1/models/decoder:predict", {"instances": z.tolist()})
        assert status == 400 and "['z', 'labels']" in answer["error"]
        status, out = v2_request(f"{url}/v2/models/decoder/infer",
                                 {"z": z, "labels": labels * 3}, True)  # fmt: skip
        assert status == 400 and "Expected 'labels' in [0.0, 1.0]" in out["error"]


def test_a_two_level_bundle_is_served_with_its_sampler_and_upper_layer(
    serve_command, two_level_bundle, tmp_path
):
    directory, _, hvae, images = two_level_bundle
    seeds = [3, 4, 2**62 + 1]
    expected = [np.asarray(v) for v in hvae.sample_from_seeds(np.array(seeds))]
    mean, log_var = (np.asarray(v) for v in hvae.encoder(images[:4]))
    with running_server(serve_command, directory, tmp_path / "server.log", threads=2) as url:
        models = {request(f"{url}/v2/models/{name}")[0] for name in
                  ("decoder", "encoder", "sampler", "top_decoder", "top_encoder")}  # fmt: skip
        assert models == {200}
        _, answer = request(f"{url}/v1/models/sampler:predict",
                            {"instances": [{"seed": s} for s in seeds]})  # fmt: skip
        for name, keras_value in zip(("image", "z", "z2"), expected, strict=True):
            served = np.array([p[name] for p in answer["predictions"]], np.float32)
            np.testing.assert_allclose(served, keras_value, atol=1e-5)
        for binary in (False, True):
            _, out = v2_request(f"{url}/v2/models/encoder/infer", {"images": images[:4]}, binary)
            np.testing.assert_allclose(out["mean"], mean, atol=1e-5)
            np.testing.assert_allclose(out["log_var"], log_var, atol=1e-5)
            _, out = v2_request(f"{url}/v2/models/decoder/infer", {"z": expected[1]}, binary)
            np.testing.assert_allclose(out["image"], expected[0], atol=1e-5)
            _, out = v2_request(f"{url}/v2/models/top_decoder/infer", {"z": expected[2]}, binary)
            top_mean = np.asarray(hvae.top_decoder(expected[2])[0])
            np.testing.assert_allclose(out["mean"], top_mean, atol=1e-5)
        status, answer = request(f"{url}/v1/models/sampler:predict", {"instances": [{"seed": -1}]})
        assert status == 400 and "'seed'" in answer["error"]


def _answer_when_closed(connection):
    """(status line, JSON body) of the one answer on `connection` before the server closes it."""
    reply = b""
    while chunk := connection.recv(65536):
        reply += chunk
    connection.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), json.loads(body)


def test_stalled_clients_get_a_408_while_other_clients_are_answered(
    serve_command, real_bundle, tmp_path
):
    directory, _ = real_bundle
    vae = ExportedVAE(directory)
    options = ("--body-timeout", "1", "--header-timeout", "2", "--workers", "1")
    with running_server(serve_command, directory, tmp_path / "server.log", options=options) as url:
        host, port = url.removeprefix("http://").split(":")
        silent, headers, body = (
            socket.create_connection((host, int(port)), timeout=30) for _ in range(3)
        )
        headers.sendall(b"POST /v1/models/decoder:predict HTTP/1.1\r\nHost: x\r\n")
        head = b"POST /v1/models/decoder:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000"
        body.sendall(head + b'\r\n\r\n{"in')
        # A client that asks for three 12 MB answers and reads none of them.
        many = np.zeros((4096, vae.latent_dim), np.float32)
        tensors, fields = v2_body({"z": many}, binary=True)
        start = b"POST /v2/models/decoder/infer HTTP/1.1\r\nHost: x\r\n"
        lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in fields.items())
        unread = socket.create_connection((host, int(port)), timeout=30)
        unread.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        length = f"Content-Length: {len(tensors)}\r\n\r\n".encode()
        unread.sendall((start + lines + length + tensors) * 3)
        z = np.random.default_rng(5).standard_normal((1, vae.latent_dim))
        status, answer = request(f"{url}/v1/models/decoder:predict", {"instances": z.tolist()})
        assert status == 200
        np.testing.assert_allclose(answer["predictions"], vae.decode(z), atol=1e-6)
        status, error = _answer_when_closed(body)
        assert status == "HTTP/1.1 408 Request Timeout"
        assert "within 1 s of its headers. Received: 4 bytes" in error["error"]
        for connection in (silent, headers):
            status, error = _answer_when_closed(connection)
            assert status == "HTTP/1.1 408 Request Timeout"
            assert "headers within 2 s" in error["error"]
        # A keep-alive connection has the same time for its next request's headers.
        keep = http.client.HTTPConnection(host, int(port), timeout=30)
        keep.request("GET", "/v2/health/ready")
        assert keep.getresponse().read() == b'{"ready":true}'
        keep.sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\n")
        status, error = _answer_when_closed(keep.sock)
        assert status == "HTTP/1.1 408 Request Timeout"
        status, answer = request(f"{url}/v1/models/decoder:predict", {"instances": z.tolist()})
        assert status == 200
        unread.close()


def _server_processes(url):
    """The pids of the processes that listen on `url`'s port: the server and its workers."""
    port = url.rsplit(":", 1)[1]
    listing = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", listing)})


def _resources(pids):
    """(resident MiB, open descriptors) of the processes, summed."""
    resident = descriptors = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        resident += int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024
        descriptors += len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return resident, descriptors


def test_a_soak_of_mixed_valid_and_bad_requests_leaves_answers_memory_and_descriptors(
    serve_command, real_bundle, tmp_path
):
    directory, _ = real_bundle
    vae = ExportedVAE(directory)
    log = tmp_path / "server.log"
    bad = bad_requests(vae.latent_dim)
    z = np.random.default_rng(11).standard_normal((8, vae.latent_dim)).astype(np.float32)

    def client(index, rounds):
        """Sends `rounds` times: one valid request, then one bad one; returns the bad count."""
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for turn in range(rounds):
            _exact_answer(connection, vae, z[index : index + 1 + turn % 4])
            request_ = bad[(index + turn) % len(bad)]
            connection.request("POST", request_.path, request_.body, request_.headers)
            answer = connection.getresponse()
            assert answer.status == 400 and request_.words in json.loads(answer.read())["error"]
        connection.close()
        return rounds

    with running_server(serve_command, directory, log) as url:
        pids = _server_processes(url)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(client, range(8), [25] * 8))  # warm-up: allocations settle
        before = _resources(pids)
        with ThreadPoolExecutor(8) as pool:
            refused = sum(pool.map(client, range(8), [200] * 8))
        # The server closes its side of the clients' connections when it reads their end.
        deadline = time.monotonic() + 30
        while (after := _resources(pids))[1] > before[1] and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the condition, bounded by the deadline
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(client, range(8), [1] * 8))  # and it still answers exactly
    print(f"soak: {2 * refused} requests; resident MiB, descriptors {before} -> {after}")
    assert after[1] == before[1], (before, after)
    assert after[0] < before[0] + 64, (before, after)  # MiB
    lines = log.read_text().splitlines()
    refusals = [line for line in lines if ": 400 " in line]
    assert len(refusals) == 8 * 25 + refused + 8
    assert "Traceback" not in log.read_text()


def test_past_its_connection_limit_a_worker_answers_503_and_recovers(
    serve_command, real_bundle, tmp_path
):
    directory, _ = real_bundle
    options = ("--max-connections", "3", "--workers", "1")
    with running_server(serve_command, directory, tmp_path / "server.log", options=options) as url:
        host, port = url.removeprefix("http://").split(":")
        held = [socket.create_connection((host, int(port)), timeout=30) for _ in range(2)]
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", "/v2/health/ready")  # the third connection
        answer = connection.getresponse()
        assert (answer.status, answer.read()) == (503, b"Service Unavailable")
        connection.close()
        for socket_ in held:
            socket_.close()
        # The worker counts a connection until it reads its end; then it answers again.
        deadline = time.monotonic() + 30
        while (status := _status(f"{url}/v2/health/ready")) == 503 and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the condition, bounded by the deadline
        assert status == 200


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
