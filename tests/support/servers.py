"""Server processes for tests and benchmarks: keras-vae-serve and the real Triton server.

Each starts on free ports of 127.0.0.1, is waited on until it reports ready
(bounded), and is stopped on leaving the `with` block.
"""

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

# Connections that stall (see `stalled_connections`): a third send nothing, a
# third half their headers, a third their headers and half a body.
_STALLS = (
    b"",
    b"POST /v2/models/decoder/infer HTTP/1.1\r\nHost: x\r\n",
    b"POST /v2/models/decoder/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{",
)


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


@contextlib.contextmanager
def stalled_connections(url, count):
    """Holds `count` connections to `url` that stall (see `_STALLS`) until the block ends."""
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    try:
        for index in range(count):
            sockets.append(socket.create_connection((host, int(port)), timeout=30))
            sockets[-1].sendall(_STALLS[index % len(_STALLS)])
        yield
    finally:
        for connection in sockets:
            connection.close()


def _ready(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False
