"""Bad Open Inference Protocol (V2) requests, each with the words the refusal must hold.

Each request is wrong in one way: lying binary-extension headers, shapes, datatypes,
parameters, JSON that is not one, values a model does not take. The same table goes to
keras-vae-serve and to the real Triton server, and each request's `triton` says what
Triton decides: it refuses them all (some with a 500 where keras-vae-serve answers 400)
but for NaN values, which it computes on, and the sampler's, a model it does not serve.
"""

import dataclasses
import json

import numpy as np

DECODER = "/v2/models/decoder/infer"
SAMPLER = "/v2/models/sampler/infer"


@dataclasses.dataclass(frozen=True)
class BadRequest:
    """A request and what keras-vae-serve's refusal says.

    Attributes:
        name: what is wrong with it.
        path: the route it is posted to.
        headers: its HTTP headers.
        body: its body.
        words: a phrase keras-vae-serve's JSON `error` holds.
        triton: `"refused"` or `"answered"` by Triton, `None` where it has no such model.
    """

    name: str
    path: str
    headers: dict
    body: bytes
    words: str
    triton: str | None = "refused"


def _json(name, body, words, path=DECODER, triton="refused"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return BadRequest(name, path, {"Content-Type": "application/json"}, data, words, triton)


def _binary(name, header, data, words, header_length=None, triton="refused"):
    text = json.dumps(header).encode()
    length = str(len(text)) if header_length is None else header_length
    headers = {"Inference-Header-Content-Length": length}
    return BadRequest(name, DECODER, headers, text + data, words, triton)


def bad_requests(latent_dim):
    """The table, for a bundle whose decoder takes `z` of `latent_dim` values.

    Returns:
        A list of `BadRequest`.
    """
    z = np.zeros((1, latent_dim), np.float32)
    values = z[0].tolist()
    tensor = {"name": "z", "shape": [1, latent_dim], "datatype": "FP32"}
    sized = {"inputs": [{**tensor, "parameters": {"binary_data_size": z.nbytes}}]}
    as_text = {"inputs": [{**tensor, "parameters": {"binary_data_size": str(z.nbytes)}}]}
    length = "Expected the inference-header-content-length header to be the JSON header's length"

    def z_as(**fields):
        return {"inputs": [{**tensor, "data": values, **fields}]}

    def seed(value):
        return {"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64", "data": [value]}]}

    return [
        _binary("header length not a number", sized, z.tobytes(), length, header_length="ab"),
        _binary("header length negative", sized, z.tobytes(), length, header_length="-5"),
        _binary("header length past the body", sized, z.tobytes(), length, header_length="9999"),
        _binary("binary_data_size a string", as_text, z.tobytes(),
                f"Expected binary_data_size of input 'z' to be {z.nbytes} bytes"),
        _binary("binary data shorter than declared", sized, z.tobytes()[:-4],
                f"Expected {z.nbytes} bytes of binary data for input 'z'"),
        _binary("bytes after the binary data", sized, z.tobytes() + b"\0" * 4,
                f"Expected {z.nbytes} bytes of binary data after the JSON header"),
        _binary("NaN in binary data", sized, np.full_like(z, np.nan).tobytes(),
                "'z' contains NaN or infinite values", triton="answered"),
        _json("not JSON", b'{"inputs": [{"name": "z"', "not valid JSON"),
        _json("no inputs", {"outputs": [{"name": "image"}]}, 'Expected "inputs": a list'),
        _json("inputs not a list", {"inputs": {"name": "z"}}, 'Expected "inputs": a list'),
        _json("shape as strings", z_as(shape=["1", str(latent_dim)]),
              "Expected the shape of input 'z' as a list of whole numbers"),
        _json("-1 in the shape", z_as(shape=[-1, latent_dim]),
              "Expected the shape of input 'z' as a list of whole numbers"),
        _json("fewer values than the shape", z_as(data=values[1:]),
              f"Expected {latent_dim} values for input 'z'"),
        _json("shape of another model", z_as(shape=[1, latent_dim + 1], data=values + [0.0]),
              f"Expected 'z' of shape [batch, {latent_dim}]"),
        _json("datatype other than the model's", z_as(datatype="INT64", data=[0] * latent_dim),
              "Expected input 'z' of datatype FP32. Received: 'INT64'"),
        _json("unknown datatype", z_as(datatype="FP128"), "of datatype FP32. Received: 'FP128'"),
        _json("unknown input", z_as(name="x"), "Expected inputs among ['z']"),
        _json("input twice", {"inputs": z_as()["inputs"] * 2}, "Expected each input once"),
        _json("strings as data", z_as(data=["0"] * latent_dim), "Expected 'z' as numbers"),
        _json("binary_data_output a string", {**z_as(), "parameters": {"binary_data_output": "no"}},
              "Expected binary_data_output of the request as true or false"),
        _json("unknown output", {**z_as(), "outputs": [{"name": "mean"}]},
              "Expected requested outputs among ['image']"),
        _json("rows past the limit", z_as(shape=[5000, latent_dim], data=values * 5000),
              "Expected between 1 and 4096 rows of 'z'. Received: 5000"),
        _json("a float seed", seed(1.5), "Expected 'seed' as integers", SAMPLER, triton=None),
        _json("a seed past int64", seed(2**63), "within INT64's range", SAMPLER, triton=None),
        _json("100,000-deep JSON", b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ]  # fmt: skip
