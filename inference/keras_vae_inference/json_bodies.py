"""JSON request and response bodies of the server, read and written with orjson.

orjson writes NumPy arrays directly, float32 values with the shortest text that
reads back to the same float32.
"""

import json

import orjson


def loads(data):
    """Reads a JSON body; `NaN` and `Infinity` are read too, as TensorFlow Serving reads them.

    Raises:
        ValueError: `data` is not JSON; its message says where.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        # Strict JSON has no NaN: read it with the standard library, so that
        # the model's checks can name NaN as the problem.
        try:
            return json.loads(data)
        except RecursionError:
            raise ValueError(str(error)) from None


def dumps(value):
    """Writes `value`, NumPy arrays included, as JSON bytes."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
