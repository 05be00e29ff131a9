"""Talks to a keras-vae server with Triton's own client (`tritonclient.http`).

Run inside the serving environment, not collected by pytest:

    python triton_client.py URL REQUESTS.npz OUT.npz OUT.json

Sends the latent vectors, images and seeds of REQUESTS.npz to the decoder,
encoder and sampler (with binary and with JSON tensors), then bad requests;
saves the outputs to OUT.npz and the server's metadata and error answers to OUT.json.
"""

import json
import sys

import numpy as np
import tritonclient.http as http
from tritonclient.utils import InferenceServerException


def infer(client, model, name, values, outputs, binary):
    tensor = http.InferInput(
        name, list(values.shape), "INT64" if values.dtype.kind == "i" else "FP32"
    )
    tensor.set_data_from_numpy(values, binary_data=binary)
    requested = [http.InferRequestedOutput(o, binary_data=binary) for o in outputs]
    result = client.infer(model, [tensor], outputs=requested)
    return {o: result.as_numpy(o) for o in outputs}


def error_of(function):
    try:
        function()
    except InferenceServerException as error:
        return {"status": str(error.status()), "message": error.message()}
    return None


def main():
    url, requests_file, out_npz, out_json = sys.argv[1:]
    requests = np.load(requests_file)
    client = http.InferenceServerClient(url, connection_timeout=30, network_timeout=60)
    arrays, report = {}, {}
    report["live"], report["ready"] = client.is_server_live(), client.is_server_ready()
    report["models_ready"] = {
        m: client.is_model_ready(m) for m in ("decoder", "encoder", "sampler")
    }
    report["metadata"] = {
        m: client.get_model_metadata(m) for m in ("decoder", "encoder", "sampler")
    }
    for binary in (True, False):
        suffix = "binary" if binary else "json"
        arrays[f"decoder_{suffix}"] = infer(
            client, "decoder", "z", requests["z"], ["image"], binary
        )["image"]
        encoded = infer(
            client, "encoder", "images", requests["images"], ["mean", "log_var"], binary
        )
        arrays[f"mean_{suffix}"], arrays[f"log_var_{suffix}"] = encoded["mean"], encoded["log_var"]
        sampled = infer(client, "sampler", "seed", requests["seeds"], ["image", "z"], binary)
        arrays[f"sampled_{suffix}"], arrays[f"sampled_z_{suffix}"] = sampled["image"], sampled["z"]
    z = requests["z"]
    nan = z.copy()
    nan[0, 0] = np.nan
    report["errors"] = {
        "wrong latent size": error_of(
            lambda: infer(client, "decoder", "z", z[:, :-1].copy(), ["image"], True)
        ),
        "wrong dtype": error_of(
            lambda: infer(
                client,
                "decoder",
                "z",
                requests["seeds"][:, None].repeat(z.shape[1], 1),
                ["image"],
                True,
            )
        ),
        "nan": error_of(lambda: infer(client, "decoder", "z", nan, ["image"], True)),
        "empty batch": error_of(lambda: infer(client, "decoder", "z", z[:0], ["image"], True)),
        "unknown model": error_of(lambda: infer(client, "generator", "z", z, ["image"], True)),
        "images out of range": error_of(
            lambda: infer(client, "encoder", "images", requests["images"] * 255, ["mean"], True)
        ),
    }
    arrays["decoder_after_errors"] = infer(client, "decoder", "z", z, ["image"], True)["image"]
    np.savez(out_npz, **arrays)
    with open(out_json, "w") as file:
        json.dump(report, file)


if __name__ == "__main__":
    main()
