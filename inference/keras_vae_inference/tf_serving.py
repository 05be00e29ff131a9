"""TensorFlow Serving's REST API (V1): predict requests and responses.

A request holds `"instances"` (one entry per example: the value of the one
input, or an object with every input by name) or `"inputs"` (the batch: one
input's values, or an object of each input's batch). The response holds
`"predictions"` per example, or `"outputs"` for the batch, as TensorFlow
Serving answers them.
"""

from keras_vae_inference.json_bodies import dumps, loads
from keras_vae_inference.served_models import RequestError

# Keys a predict request may hold beside its data.
_OTHER_KEYS = {"signature_name"}


def parse_request(body, model):
    """Reads a predict request for `model`.

    Args:
        body: the request body, bytes.
        model: the `ServedModel` it is for.

    Returns:
        A tuple `({input name: array}, columnar)`: the arrays, and whether the
        request was columnar (`"inputs"`) and so wants `"outputs"`.

    Raises:
        RequestError: the request is malformed or does not fit the model.
    """
    try:
        payload = loads(body)
    except ValueError as error:
        raise RequestError(f"The request body is not valid JSON: {error}.") from None
    if not isinstance(payload, dict) or len({"instances", "inputs"} & set(payload)) != 1:
        raise RequestError(
            'Expected a JSON object with "instances" (a list, one entry per example) or '
            f'"inputs" (the batch). Received: {_describe(payload)}.'
        )
    unknown = set(payload) - {"instances", "inputs"} - _OTHER_KEYS
    if unknown:
        raise RequestError(f"Expected no keys beside the data. Received: {sorted(unknown)[:8]}.")
    if payload.get("signature_name", "serving_default") != "serving_default":
        raise RequestError(
            'Expected signature_name "serving_default". '
            f"Received: {payload['signature_name']!r:.60}."
        )
    names = [tensor.name for tensor in model.inputs]
    columnar = "inputs" in payload
    values = payload["inputs" if columnar else "instances"]
    if columnar:
        named = values if isinstance(values, dict) else _unnamed(values, names)
        _check_names(named, names)
        return {name: _array(named[name], tensor) for name, tensor in _specs(model)}, columnar
    if not isinstance(values, list):
        raise RequestError(f'Expected "instances" as a list. Received: {_describe(values)}.')
    if values and all(isinstance(instance, dict) for instance in values):
        for instance in values:
            _check_names(instance, names)
        return {
            name: _array([instance[name] for instance in values], tensor)
            for name, tensor in _specs(model)
        }, columnar
    (name,) = _unnamed(values, names)
    return {name: _array(values, model.inputs[0])}, columnar


def encode_response(model, results, columnar):
    """The JSON body of TensorFlow Serving's answer."""
    names = model.output_names
    if columnar:
        outputs = results[0] if len(names) == 1 else dict(zip(names, results, strict=True))
        return dumps({"outputs": outputs})
    if len(names) == 1:
        return dumps({"predictions": results[0]})
    return dumps(
        {"predictions": [{n: r[i] for n, r in zip(names, results, strict=True)}
                         for i in range(len(results[0]))]}
    )  # fmt: skip


def _specs(model):
    return [(tensor.name, tensor) for tensor in model.inputs]


def _unnamed(values, names):
    if len(names) > 1:
        raise RequestError(
            f"Expected every input by name: {names}, this model takes {len(names)}. "
            f"Received: {_describe(values)}."
        )
    return {names[0]: values}


def _check_names(values, names):
    if not isinstance(values, dict) or sorted(values) != sorted(names):
        raise RequestError(f"Expected the inputs named {names}. Received: {_describe(values)}.")


def _array(values, tensor):
    """The values of one input as an array; an empty list as an empty batch."""
    array = tensor.from_json(values)
    if array.size == 0:
        array = array.reshape(0, *tensor.item_shape)
    return array


def _describe(value):
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)[:8]}"
    return f"{type(value).__name__} {value!r:.60}"
