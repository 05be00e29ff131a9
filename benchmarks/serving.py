"""The HTTP servers under load: batch-1 decode requests from concurrent clients on loopback.

Each client keeps one connection open and sends Open Inference Protocol (V2)
requests for one latent vector, one after the other, for a fixed time, with
tensors as JSON or as binary data (the protocol's binary extension, which
Triton's client uses); latency is measured per request at the client. The same
client program loads keras-vae-serve and the real Triton server on the same
bundle, in turns, over several rounds; in-process onnxruntime on the same
vectors is the reference. Clients and servers share the machine's cores.
"""

import contextlib
import http.client
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from keras_vae_inference import ExportedVAE
from tests.support.servers import running_server, running_triton, stalled_connections

CLIENTS = (1, 8, 64)
# Connections that stall beside the clients of the last point (`stalled_connections`).
STALLED = 96


def benchmark_serving(command, bundle, log_path, threads, triton_python=None, clients=CLIENTS,
                      seconds=10.0, rounds=3):  # fmt: skip
    """Times batch-1 decode requests to keras-vae-serve and the real Triton server, in turns.

    Each round loads every server and protocol once at each client count, one
    after the other, so that the machine's slow spells fall on all of them,
    then each batching server with 8 clients beside `STALLED` stalled connections.

    Args:
        command: the path of the `keras-vae-serve` executable.
        bundle: the bundle folder.
        log_path: file that receives the servers' output (one file each, by suffix).
        threads: onnxruntime threads in process; each server runs at its defaults.
        triton_python: the Python of the Triton environment (.venv-triton), or
            `None` to leave Triton out.
        clients: the numbers of concurrent clients to try.
        seconds: how long each point runs.
        rounds: how many times each point runs.

    Returns:
        A list of rows: `runtime`, `clients`, `requests` (all rounds),
        `requests_per_second` (the median over rounds), `requests_per_second_range`
        (the rounds' lowest and highest), `p50_ms` and `p99_ms` (over every
        request of all rounds),
        `max_abs_error_vs_in_process`, and for keras-vae-serve `vs_triton`,
        its throughput over Triton's with the same protocol and clients.
    """
    vae = ExportedVAE(bundle, threads=threads)
    latents = np.random.default_rng(0).standard_normal((256, vae.latent_dim)).astype(np.float32)
    expected = vae.decode(latents).reshape(len(latents), -1)
    rows = [_in_process(vae, latents, seconds)]
    _print(rows[-1])
    log_path = Path(log_path)
    with contextlib.ExitStack() as stack:
        servers = {
            "keras-vae-serve": stack.enter_context(running_server(command, bundle, log_path)),
            "keras-vae-serve, no batching": stack.enter_context(
                running_server(
                    command,
                    bundle,
                    log_path.with_suffix(".unbatched.log"),
                    options=("--max-batch-rows", "1"),
                )
            ),
        }
        if triton_python is not None:
            servers["Triton"] = stack.enter_context(
                running_triton(triton_python, bundle, log_path.with_suffix(".triton.log"))
            )[0]
        points = [
            (f"{server}, {protocol}", url, binary, count, 0)
            for count in clients
            for protocol, binary in (("binary tensors", True), ("JSON", False))
            for server, url in servers.items()
            if protocol == "binary tensors" or "no batching" not in server
        ]
        points += [
            (f"{server}, binary tensors, {STALLED} stalled connections", url, True, 8, STALLED)
            for server, url in servers.items()
            if "no batching" not in server
        ]
        measured = {(name, count): [] for name, _, _, count, _ in points}
        for round_ in range(rounds):
            print(f"  round {round_ + 1} of {rounds}:", flush=True)
            for name, url, binary, count, stalled in points:
                with stalled_connections(url, stalled):
                    result = _load(url, latents, expected, count, seconds, binary)
                measured[name, count].append(result)
                _print(_row(name, count, *result))
    print("  medians over the rounds:", flush=True)
    for (name, count), results in measured.items():
        rows.append(_rounds_row(name, count, results))
        _print(rows[-1])
    _against_triton(rows)
    return rows


def _rounds_row(runtime, clients, results):
    """One row from each round's `(latencies, elapsed, error)`.

    Throughput is the median of the rounds'; latency percentiles are taken over
    every request of all rounds, which a single slow spell moves less than it
    moves one round's tail.
    """
    rates = [len(latencies) / elapsed for latencies, elapsed, _ in results]
    pooled = [value for latencies, _, _ in results for value in latencies]
    row = _row(runtime, clients, pooled, 1.0, max(error for _, _, error in results))
    row["requests_per_second"] = statistics.median(rates)
    row["requests_per_second_range"] = [min(rates), max(rates)]
    return row


def _against_triton(rows):
    """Adds `vs_triton` to keras-vae-serve's rows that have a Triton row to compare with."""
    triton = {
        (row["runtime"].removeprefix("Triton, "), row["clients"]): row["requests_per_second"]
        for row in rows
        if row["runtime"].startswith("Triton, ")
    }
    for row in rows:
        key = (row["runtime"].removeprefix("keras-vae-serve, "), row["clients"])
        if row["runtime"].startswith("keras-vae-serve, ") and key in triton:
            row["vs_triton"] = row["requests_per_second"] / triton[key]


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
        f"  {row['runtime']:58s} {row['clients']:3d} clients  {row['requests_per_second']:8.0f} "
        f"req/s  p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms",
        flush=True,
    )
