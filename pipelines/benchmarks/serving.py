"""The HTTP server under load: batch-1 decode requests from concurrent clients on loopback.

Each client keeps one connection open and sends Open Inference Protocol (V2)
requests for one latent vector, one after the other, for a fixed time, with
tensors as JSON or as binary data (the protocol's binary extension, which
Triton's client uses); latency is measured per request at the client. In-process onnxruntime on the
same vectors is the reference. Clients and server share the machine's cores.
"""

import contextlib
import http.client
import json
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from keras_vae_inference import ExportedVAE

CLIENTS = (1, 8, 64)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(command, bundle, log_path, threads=None, options=(), timeout=120):
    """Starts `keras-vae-serve` on a free port and stops it on leaving.

    Args:
        command: the path of the `keras-vae-serve` executable.
        bundle: the bundle folder to serve.
        log_path: file that receives the server's output.
        threads: onnxruntime threads per model, or `None` for the server's default.
        options: further command-line options of the server.
        timeout: seconds to wait until the server reports ready.

    Yields:
        The server's base URL, `http://127.0.0.1:<port>`.

    Raises:
        RuntimeError: the server stopped or was not ready within `timeout`.
    """
    port = free_port()
    arguments = [str(command), str(bundle), "--port", str(port)]
    if threads:
        arguments += ["--threads", str(threads)]
    with _running([*arguments, *options], f"http://127.0.0.1:{port}", log_path, timeout) as url:
        yield url


# Where examples/triton/serve.py lies in a checkout.
TRITON_LAUNCHER = Path(__file__).resolve().parents[2] / "examples" / "triton" / "serve.py"


@contextlib.contextmanager
def running_triton(python, bundle, log_path, options=(), timeout=180, ready=True):
    """Starts the real Triton server (examples/triton/serve.py) on free ports, stops it on leaving.

    Args:
        python: the Python of the environment with `nvidia-pytriton` (.venv-triton).
        bundle: the bundle folder, served as Triton's model repository.
        log_path: file that receives the server's output.
        options: further options of `tritonserver`.
        timeout: seconds to wait until the server reports ready.
        ready: whether to wait until every model is ready (`/v2/health/ready`);
            `False` waits until the server is live only.

    Yields:
        `(HTTP base URL, gRPC address)`: `http://127.0.0.1:<port>`, `127.0.0.1:<port>`.

    Raises:
        RuntimeError: the server stopped or was not ready within `timeout`.
    """
    http_port, grpc_port = free_port(), free_port()
    arguments = [str(python), str(TRITON_LAUNCHER), str(bundle), "--http-port", str(http_port),
                 "--grpc-port", str(grpc_port), "--", *options]  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    health = "ready" if ready else "live"
    with _running(arguments, url, log_path, timeout, health):
        yield url, f"127.0.0.1:{grpc_port}"


@contextlib.contextmanager
def _running(arguments, url, log_path, timeout, health="ready"):
    """Runs a server process until the block ends, once it answers `/v2/health/<health>`."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(f"{url}/v2/health/{health}"):
            if process.poll() is not None or time.monotonic() > deadline:
                with open(log_path) as log:
                    raise RuntimeError(f"The server at {url} did not get ready:\n{log.read()}")
            time.sleep(0.2)  # not listening yet: poll again
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def benchmark_serving(command, bundle, log_path, threads, clients=CLIENTS, seconds=5.0):
    """Times batch-1 decode requests to the server (JSON and binary tensors, with and
    without batching) and in-process onnxruntime.

    Args:
        command: the path of the `keras-vae-serve` executable.
        bundle: the bundle folder.
        log_path: file that receives the server's output.
        threads: onnxruntime threads, in the server and in process.
        clients: the numbers of concurrent clients to try.
        seconds: how long each setting runs.

    Returns:
        A list of rows: `runtime`, `clients`, `requests`, `requests_per_second`,
        `p50_ms`, `p99_ms`, `max_abs_error_vs_in_process`.
    """
    vae = ExportedVAE(bundle, threads=threads)
    latents = np.random.default_rng(0).standard_normal((256, vae.latent_dim)).astype(np.float32)
    expected = vae.decode(latents)
    rows = [_in_process(vae, latents, seconds)]
    _print(rows[-1])
    flat = expected.reshape(len(latents), -1)
    servers = (
        ((), (("server, JSON", False), ("server, binary tensors", True))),
        (("--max-batch-rows", "1"), (("server, JSON, no batching", False),)),
    )
    for options, runs in servers:
        with running_server(command, bundle, log_path, threads, options) as url:
            for name, binary in runs:
                for count in clients:
                    latencies, elapsed, error = _load(url, latents, flat, count, seconds, binary)
                    rows.append(_row(name, count, latencies, elapsed, error))
                    _print(rows[-1])
    return rows


def _in_process(vae, latents, seconds):
    latencies, index = [], 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        vae.decode(latents[index % len(latents)][None])
        latencies.append(time.perf_counter() - begin)
        index += 1
    return _row("onnxruntime in process", 1, latencies, time.perf_counter() - started, 0.0)


def _load(url, latents, expected, count, seconds, binary):
    host, port = url.removeprefix("http://").split(":")
    stop = time.perf_counter() + seconds

    def client(offset):
        """Sends requests until `stop`; returns (latencies, largest error)."""
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        latencies, worst, index = [], 0.0, offset
        while time.perf_counter() < stop:
            row = index % len(latents)
            body, headers = _request(latents[row], binary)
            begin = time.perf_counter()
            connection.request("POST", "/v2/models/decoder/infer", body, headers)
            answer = connection.getresponse()
            payload = answer.read()
            latencies.append(time.perf_counter() - begin)
            if answer.status != 200:
                raise RuntimeError(f"The server answered {answer.status}: {payload[:200]!r}")
            worst = max(worst, float(np.max(np.abs(_image(answer, payload) - expected[row]))))
            index += count
        connection.close()
        return latencies, worst

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(client, range(count)))
    elapsed = time.perf_counter() - started
    latencies = [value for mine, _ in results for value in mine]
    return latencies, elapsed, max(w for _, w in results)


def _request(z, binary):
    """The body and headers of a V2 request for one latent vector, as JSON or binary tensors."""
    tensor = {"name": "z", "shape": [1, len(z)], "datatype": "FP32"}
    if not binary:
        body = json.dumps({"inputs": [{**tensor, "data": z.tolist()}]})
        return body, {"Content-Type": "application/json"}
    header = json.dumps({
        "inputs": [{**tensor, "parameters": {"binary_data_size": z.nbytes}}],
        "outputs": [{"name": "image", "parameters": {"binary_data": True}}],
    }).encode()  # fmt: skip
    headers = {"Inference-Header-Content-Length": str(len(header)),
               "Content-Type": "application/octet-stream"}  # fmt: skip
    return header + z.tobytes(), headers


def _image(answer, payload):
    """The decoded image of a V2 answer, JSON or binary."""
    header_length = answer.getheader("Inference-Header-Content-Length")
    if header_length is None:
        return np.array(json.loads(payload)["outputs"][0]["data"], np.float32)
    return np.frombuffer(payload[int(header_length) :], np.float32)


def _row(runtime, clients, latencies, elapsed, error):
    milliseconds = sorted(1e3 * value for value in latencies)
    percentiles = statistics.quantiles(milliseconds, n=100) if len(milliseconds) > 1 else []
    return {
        "runtime": runtime,
        "clients": clients,
        "requests": len(milliseconds),
        "requests_per_second": len(milliseconds) / elapsed,
        "p50_ms": statistics.median(milliseconds),
        "p99_ms": percentiles[98] if percentiles else milliseconds[0],
        "max_abs_error_vs_in_process": error,
    }


def _print(row):
    print(
        f"  {row['runtime']:24s} {row['clients']:3d} clients  {row['requests_per_second']:8.0f} "
        f"req/s  p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms",
        flush=True,
    )
