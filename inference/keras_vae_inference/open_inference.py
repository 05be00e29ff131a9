"""The Open Inference Protocol (V2, also Triton's): inference requests and responses over HTTP.

Tensors travel as JSON (`"data"`, flat or nested in row-major order) or, with
the binary tensor data extension Triton's clients use, as raw little-endian
bytes after a JSON header whose length the `Inference-Header-Content-Length`
HTTP header gives; each binary input names its size in
`parameters.binary_data_size`. Requests are read strictly: every number, size
and parameter must be what it says, or the request is refused with a message
that names it.
"""

import math

import numpy as np

from keras_vae_inference.json_bodies import dumps, loads
from keras_vae_inference.served_models import RequestError

HEADER_LENGTH = "inference-header-content-length"


class InferRequest:
    """A parsed inference request.

    Attributes:
        arrays: `{input name: array}` as sent.
        outputs: the requested outputs as `(name, binary)` pairs.
        id: the request's `id`, echoed in the response, or `None`.
    """

    def __init__(self, arrays, outputs, id):
        self.arrays, self.outputs, self.id = arrays, outputs, id


def parse_request(body, header_length, model):
    """Reads an inference request for `model`.

    Args:
        body: the request body, bytes.
        header_length: the `Inference-Header-Content-Length` header's value, or
            `None` for a JSON body.
        model: the `ServedModel` it is for.

    Returns:
        An `InferRequest`.

    Raises:
        RequestError: the request is malformed or does not fit the model.
    """
    if header_length is None:
        header, binary = _json_object(body, "The request body"), b""
    else:
        length = _header_length(header_length, len(body))
        header, binary = _json_object(body[:length], "The JSON header"), body[length:]
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError('Expected "inputs": a list of tensors. Received: ' + _kind(inputs))
    arrays, offset = {}, 0
    for tensor in inputs:
        name, array, offset = _input(tensor, binary, offset, model)
        if name in arrays:
            raise RequestError(f"Expected each input once. Received: {name!r} twice.")
        arrays[name] = array
    if offset != len(binary):
        raise RequestError(
            f"Expected {offset} bytes of binary data after the JSON header, as the inputs' "
            f"binary_data_size say. Received: {len(binary)}."
        )
    parameters = _parameters(header, "the request")
    binary_default = _flag(parameters, "binary_data_output", "the request")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(f'Expected "id" as a string. Received: {_kind(request_id)}')
    return InferRequest(arrays, _outputs(header, model, binary_default), request_id)


def encode_response(model, request, results):
    """The body and headers of the response to `request`.

    Args:
        model: the `ServedModel` that answered.
        request: the `InferRequest`.
        results: the model's output arrays, in its output order.

    Returns:
        A tuple `(body bytes, {header: value})`.
    """
    by_name = dict(zip(model.output_names, results, strict=True))
    specs = {tensor.name: tensor for tensor in model.outputs}
    outputs, chunks = [], []
    for name, binary in request.outputs:
        values = by_name[name]
        entry = {"name": name, "datatype": specs[name].datatype, "shape": list(values.shape)}
        if binary:
            data = np.ascontiguousarray(values, specs[name].dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            entry["data"] = values.reshape(-1)
        outputs.append(entry)
    answer = {"model_name": model.name, "model_version": str(model.version), "outputs": outputs}
    if request.id is not None:
        answer["id"] = request.id
    header = dumps(answer)
    if not chunks:
        return header, {"content-type": "application/json"}
    return b"".join([header, *chunks]), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


def _header_length(value, body_length):
    if not value.isdigit() or not 0 < int(value) <= body_length:
        raise RequestError(
            f"Expected the {HEADER_LENGTH} header to be the JSON header's length in bytes, "
            f"between 1 and the body's {body_length}. Received: {value!r:.40}."
        )
    return int(value)


def _json_object(data, what):
    try:
        value = loads(data)
    except ValueError as error:
        raise RequestError(f"{what} is not valid JSON: {error}.") from None
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object. Received: {_kind(value)}")
    return value


def _input(tensor, binary, offset, model):
    """One input tensor of the request: `(name, array, offset after its binary data)`."""
    if not isinstance(tensor, dict):
        raise RequestError(f"Expected each input as a JSON object. Received: {_kind(tensor)}")
    name = tensor.get("name")
    specs = {spec.name: spec for spec in model.inputs}
    if name not in specs:
        raise RequestError(
            f"Expected inputs among {list(specs)} for model {model.name!r}. Received: {name!r}."
        )
    spec = specs[name]
    if tensor.get("datatype") != spec.datatype:
        raise RequestError(
            f"Expected input {name!r} of datatype {spec.datatype}. "
            f"Received: {tensor.get('datatype')!r}."
        )
    shape = tensor.get("shape")
    if not (
        isinstance(shape, list)
        and shape
        and all(type(d) is int and d >= 0 for d in shape)  # not bool, str or float
    ):
        raise RequestError(
            f"Expected the shape of input {name!r} as a list of whole numbers, "
            f"e.g. {[1, *spec.item_shape]}. Received: {shape!r:.80}."
        )
    size = math.prod(shape)
    parameters = _parameters(tensor, f"input {name!r}")
    if "binary_data_size" in parameters:
        nbytes = parameters["binary_data_size"]
        if type(nbytes) is not int or nbytes != size * spec.dtype.itemsize:
            raise RequestError(
                f"Expected binary_data_size of input {name!r} to be "
                f"{size * spec.dtype.itemsize} bytes: shape {shape} of {spec.datatype}. "
                f"Received: {nbytes!r:.40}."
            )
        if "data" in tensor:
            raise RequestError(f"Expected either data or binary_data_size for {name!r}, not both.")
        if offset + nbytes > len(binary):
            raise RequestError(
                f"Expected {nbytes} bytes of binary data for input {name!r}. "
                f"Received: {max(len(binary) - offset, 0)}."
            )
        array = np.frombuffer(binary, spec.dtype.newbyteorder("<"), size, offset)
        return name, array.reshape(shape), offset + nbytes
    return name, _json_data(tensor.get("data"), name, spec, shape, size), offset


def _json_data(data, name, spec, shape, size):
    if not isinstance(data, list):
        raise RequestError(f'Expected "data" of input {name!r} as a list. Received: {_kind(data)}')
    # Any nesting of the values in row-major order, as Triton reads them; only their number counts.
    array = spec.from_json(data)
    if array.size != size:
        raise RequestError(
            f"Expected {size} values for input {name!r} of shape {shape}. Received: {array.size}."
        )
    return array.reshape(shape)


def _parameters(entry, what):
    parameters = entry.get("parameters", {})
    if not isinstance(parameters, dict):
        raise RequestError(f"Expected the parameters of {what} as an object. Received: "
                           + _kind(parameters))  # fmt: skip
    return parameters


def _flag(parameters, key, what):
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise RequestError(f"Expected {key} of {what} as true or false. Received: {value!r:.40}.")
    return value


def _outputs(header, model, binary_default):
    requested = header.get("outputs")
    if requested is None:
        return [(name, binary_default) for name in model.output_names]
    if not isinstance(requested, list):
        raise RequestError(f'Expected "outputs" as a list. Received: {_kind(requested)}')
    outputs = []
    for entry in requested:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in model.output_names or name in dict(outputs):
            raise RequestError(
                f"Expected requested outputs among {model.output_names}, each once. "
                f"Received: {_kind(entry)}"
            )
        parameters = _parameters(entry, f"output {name!r}")
        binary = _flag(parameters, "binary_data", f"output {name!r}") if (
            "binary_data" in parameters) else binary_default  # fmt: skip
        outputs.append((name, binary))
    return outputs


def _kind(value):
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)[:8]}."
    return f"{type(value).__name__} {value!r:.60}."
