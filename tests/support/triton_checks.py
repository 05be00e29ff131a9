"""Asks a running Triton server about a bundle's models with Triton's own clients (HTTP and gRPC).

Run inside the Triton environment (.venv-triton), not collected by pytest:

    python triton_checks.py HTTP_URL GRPC_URL SPEC.json REQUESTS.npz OUT.npz OUT.json

SPEC.json names each model's inputs (keys of REQUESTS.npz, `<model>.<input>`)
and outputs. Writes each model's outputs for HTTP with binary tensors, HTTP
with JSON tensors and gRPC to OUT.npz (`<model>.<output>.<protocol>`), and the
repository index, readiness, metadata, configurations and batch statistics to
OUT.json.
"""

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tritonclient.grpc as grpc
import tritonclient.http as http

DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}
CONCURRENT_CLIENTS = 16
REQUESTS_PER_CLIENT = 25


def infer(module, client, model, inputs, outputs, binary):
    tensors = []
    for name, values in inputs.items():
        tensor = module.InferInput(name, list(values.shape), DATATYPES[values.dtype])
        if module is http:
            tensor.set_data_from_numpy(values, binary_data=binary)
        else:
            tensor.set_data_from_numpy(values)
        tensors.append(tensor)
    if module is http:
        requested = [http.InferRequestedOutput(name, binary_data=binary) for name in outputs]
    else:
        requested = [grpc.InferRequestedOutput(name) for name in outputs]
    result = client.infer(model, tensors, outputs=requested)
    return {name: result.as_numpy(name) for name in outputs}


def batch_sizes(url, model, inputs, outputs):
    """Sends batch-1 requests from concurrent clients; returns Triton's batch statistics."""
    first = {name: values[:1] for name, values in inputs.items()}

    def client(_):
        connection = http.InferenceServerClient(url, network_timeout=60)
        for _ in range(REQUESTS_PER_CLIENT):
            infer(http, connection, model, first, outputs, True)
        connection.close()

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        list(pool.map(client, range(CONCURRENT_CLIENTS)))
    statistics = http.InferenceServerClient(url).get_inference_statistics(model)
    (entry,) = statistics["model_stats"]
    return {
        "batches": {
            str(batch["batch_size"]): batch["compute_infer"]["count"]
            for batch in entry["batch_stats"]
        },
        "inferences": entry["inference_count"],
        "executions": entry["execution_count"],
    }


def main():
    http_url, grpc_url, spec_file, requests_file, out_npz, out_json = sys.argv[1:]
    with open(spec_file) as file:
        spec = json.load(file)
    requests = np.load(requests_file)
    clients = {
        "http": http.InferenceServerClient(http_url, network_timeout=60),
        "grpc": grpc.InferenceServerClient(grpc_url),
    }
    report = {
        "index": clients["http"].get_model_repository_index(),
        "live": clients["http"].is_server_live(),
        "ready": clients["http"].is_server_ready(),
        "grpc_ready": clients["grpc"].is_server_ready(),
        "models": {},
    }
    arrays = {}
    for model, entry in spec["models"].items():
        inputs = {name: requests[key] for name, key in entry["inputs"].items()}
        outputs = entry["outputs"]
        report["models"][model] = {
            "ready": {
                version: clients["http"].is_model_ready(model, version)
                for version in spec["versions"]
            },
            "grpc_ready": clients["grpc"].is_model_ready(model),
            "metadata": clients["http"].get_model_metadata(model),
            "grpc_metadata": clients["grpc"].get_model_metadata(model, as_json=True),
            "config": clients["http"].get_model_config(model),
        }
        for protocol, module, binary in (
            ("binary", http, True), ("json", http, False), ("grpc", grpc, None)
        ):  # fmt: skip
            client = clients["grpc" if module is grpc else "http"]
            for name, values in infer(module, client, model, inputs, outputs, binary).items():
                arrays[f"{model}.{name}.{protocol}"] = values
    decoder = spec["models"]["decoder"]
    report["decoder_batches"] = batch_sizes(
        http_url,
        "decoder",
        {name: requests[key] for name, key in decoder["inputs"].items()},
        decoder["outputs"],
    )
    np.savez(out_npz, **arrays)
    with open(out_json, "w") as file:
        json.dump(report, file)


if __name__ == "__main__":
    main()
