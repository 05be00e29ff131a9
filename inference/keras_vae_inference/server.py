"""Serving a bundle over HTTP with KServe's model server: TF Serving REST and Open Inference V2.

    keras-vae-serve exported/default --port 8080

Three models answer, named like the bundle's Triton models so that a client
can move between the two servers:

- `decoder`: `z` float32 `[batch, latent_dim]` -> `image` float32 `[batch, H, W, C]`
- `encoder`: `images` float32 `[batch, H, W, C]` in [0, 1] -> `mean`, `log_var`
- `sampler`: `seed` int64 `[batch]` -> `image` and the latent vector `z` drawn
  from N(0, I) with that seed (the draw of `ExportedVAE.sample(1, seed)`)

Each speaks TF Serving's REST API (`POST /v1/models/<name>:predict` with
`instances` or `inputs`, `GET /v1/models/<name>`) and the Open Inference Protocol
(`POST /v2/models/<name>/infer`, `GET /v2/models/<name>`, `/v2/health/ready`).
A bad request gets a 400 whose JSON `error` names the problem. Requests that
arrive while a model is busy are run together as one batch.

KServe binds all network interfaces, as it does in a container.
"""

import argparse
import asyncio
import functools
import json
import uuid

import numpy as np

from keras_vae_inference.bundle import BundleError
from keras_vae_inference.exported_vae import ExportedVAE

# Rows one request may hold; larger requests are refused, not queued.
MAX_REQUEST_ROWS = 4096
# Rows run together when requests queue up.
MAX_BATCH_ROWS = 256
_DATATYPES = {"FP32": np.float32, "INT64": np.int64}


class Batcher:
    """Runs a function on the requests that queue while it is busy, as one batch.

    A request arriving at an idle batcher runs at once; those arriving while a
    batch runs wait for it and then run together, up to `max_rows` rows. No
    request waits for others that have not arrived.

    Args:
        function: takes one array whose first axis is the batch and returns a
            tuple of arrays with the same first axis. It runs in a worker thread.
        max_rows: the most rows run together (a larger request runs alone).
    """

    def __init__(self, function, max_rows=MAX_BATCH_ROWS):
        self.function = function
        self.max_rows = max_rows
        self._pending = []
        self._worker = None

    async def __call__(self, rows):
        """Returns `function(rows)`, computed within a batch of queued requests."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self):
        while self._pending:
            batch, count = [], 0
            while self._pending and (
                not batch or count + len(self._pending[0][0]) <= self.max_rows
            ):
                batch.append(self._pending.pop(0))
                count += len(batch[-1][0])
            try:
                outputs = await asyncio.to_thread(
                    self.function, np.concatenate([rows for rows, _ in batch])
                )
            except Exception as error:  # each waiting request gets the error
                for _, future in batch:
                    future.set_exception(error)
                continue
            start = 0
            for rows, future in batch:
                future.set_result(tuple(output[start : start + len(rows)] for output in outputs))
                start += len(rows)


class Tensor:
    """A model's input or output.

    Args:
        name: its name in requests and answers.
        datatype: its Open Inference Protocol datatype, `"FP32"` or `"INT64"`.
        item_shape: its shape after the batch axis.
        value_range: `(low, high)` that inputs must lie in, or `None` for any
            finite number.
    """

    def __init__(self, name, datatype, item_shape, value_range=None):
        self.name, self.datatype, self.item_shape = name, datatype, tuple(item_shape)
        self.value_range = value_range

    def metadata(self):
        return {"name": self.name, "datatype": self.datatype, "shape": [-1, *self.item_shape]}


def build_models(vae, max_batch_rows=MAX_BATCH_ROWS):
    """The server's models for a loaded bundle.

    Args:
        vae: an `ExportedVAE`.
        max_batch_rows: the most rows of queued requests run together (1: each
            request alone).

    Returns:
        A list of `kserve.Model`s: decoder, encoder and sampler.

    Raises:
        BundleError: the bundle is a conditional VAE's, whose networks take labels.
    """
    if vae.num_classes is not None:
        raise BundleError(
            f"{vae.directory} holds a conditional VAE (its decoder takes z and labels); "
            "keras-vae-serve serves one-input models. Serve it with Triton (decoder/"
            "config.pbtxt lists both inputs) or TensorFlow Serving (its SavedModel "
            "signature takes both), or call ExportedVAE.decode(z, labels)."
        )
    latent, images = (vae.latent_dim,), vae.image_shape

    def sample(seeds):
        z = np.stack([np.random.default_rng(int(s)).standard_normal(vae.latent_dim) for s in seeds])
        return vae.decode(z), z.astype(np.float32)

    def model(name, inputs, outputs, function):
        return _model_class()(name, inputs, outputs, Batcher(function, max_batch_rows))

    return [
        model(
            "decoder",
            [Tensor("z", "FP32", latent)],
            [Tensor("image", "FP32", images)],
            lambda z: (vae.decode(z),),
        ),
        model(
            "encoder",
            [Tensor("images", "FP32", images, value_range=(0.0, 1.0))],
            [Tensor("mean", "FP32", latent), Tensor("log_var", "FP32", latent)],
            vae.encode,
        ),
        model(
            "sampler",
            [Tensor("seed", "INT64", (), value_range=(0, 2**63 - 1))],
            [Tensor("image", "FP32", images), Tensor("z", "FP32", latent)],
            sample,
        ),
    ]


@functools.cache
def _model_class():
    # kserve is imported here so that the rest of this package works without it.
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    class BundleModel(kserve.Model):
        """One input, checked before it queues; the outputs of a batched function."""

        def __init__(self, name, inputs, outputs, batcher):
            super().__init__(name)
            (self.input,) = inputs
            self.outputs = outputs
            self.batcher = batcher
            self.ready = True

        def get_input_types(self):
            return [self.input.metadata()]

        def get_output_types(self):
            return [t.metadata() for t in self.outputs]

        async def predict(self, payload, headers=None, response_headers=None):
            v2 = isinstance(payload, InferRequest)
            try:
                if v2:
                    rows = _v2_rows(payload, self.input)
                else:
                    rows, columnar = _v1_rows(payload, self.input)
                rows = _checked(rows, self.input)
            except (ValueError, TypeError) as error:
                raise InvalidInput(f"{self.name}: {error}") from None
            results = await self.batcher(rows)
            if not v2:
                return _v1_response(self.outputs, results, columnar)
            infer_outputs = []
            for spec, values in zip(self.outputs, results, strict=True):
                output = InferOutput(spec.name, list(values.shape), spec.datatype)
                output.set_data_from_numpy(values, binary_data=payload.use_binary_outputs)
                infer_outputs.append(output)
            return InferResponse(
                response_id=payload.id or str(uuid.uuid4()),
                model_name=self.name,
                infer_outputs=infer_outputs,
                use_binary_outputs=payload.use_binary_outputs,
                requested_outputs=payload.request_outputs,
            )

    return BundleModel


def _v2_rows(request, tensor):
    """The input array of an Open Inference Protocol request."""
    names = [i.name for i in request.inputs]
    if names != [tensor.name]:
        raise ValueError(f"Expected one input named {tensor.name!r}. Received: {names}.")
    (given,) = request.inputs
    if given.datatype != tensor.datatype:
        raise TypeError(
            f"Expected input {tensor.name!r} of datatype {tensor.datatype}. "
            f"Received: {given.datatype}."
        )
    try:
        return given.as_numpy()
    except ValueError as error:
        raise ValueError(
            f"The data of input {tensor.name!r} does not fill its shape {given.shape} ({error})."
        ) from None


def _v1_rows(payload, tensor):
    """The input array of a TF Serving REST request, and whether it was columnar."""
    if isinstance(payload, bytes):  # a body sent without a JSON content type, as curl -d does
        try:
            payload = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"The request body is not valid JSON: {error}.") from None
    if not isinstance(payload, dict) or len({"instances", "inputs"} & set(payload)) != 1:
        raise ValueError(
            'Expected a JSON object with "instances" (a list, one entry per example) or '
            f'"inputs" (the batch). Received: {_describe(payload)}.'
        )
    columnar = "inputs" in payload
    values = payload["inputs"] if columnar else payload["instances"]
    if columnar and isinstance(values, dict):
        values = _named(values, tensor)
    elif not columnar and isinstance(values, list) and values and isinstance(values[0], dict):
        values = [_named(instance, tensor) for instance in values]
    return _array(values, tensor), columnar


def _named(values, tensor):
    if not isinstance(values, dict) or set(values) != {tensor.name}:
        raise ValueError(
            f"Expected the input named {tensor.name!r}. Received: {_describe(values)}."
        )
    return values[tensor.name]


def _array(values, tensor):
    dtype = _DATATYPES[tensor.datatype]
    try:
        array = np.array(values, dtype=np.float64 if dtype == np.float32 else object)
    except (ValueError, TypeError):
        raise ValueError(
            f"Expected {tensor.name!r} as nested lists of numbers of shape "
            f"[batch, {', '.join(map(str, tensor.item_shape))}]. Received ragged or "
            "non-numeric values."
        ) from None
    if dtype == np.int64:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in array.ravel()):
            raise TypeError(f"Expected {tensor.name!r} as integers. Received: {values!r:.80}.")
        return array.astype(np.int64)
    return array


def _checked(rows, tensor):
    """`rows` checked for shape, size, NaN and range, as the model's dtype."""
    count = len(rows) if rows.ndim else 1
    if not 1 <= count <= MAX_REQUEST_ROWS:
        raise ValueError(
            f"Expected between 1 and {MAX_REQUEST_ROWS} rows of {tensor.name!r}. Received: {count}."
        )
    shape = "[batch" + "".join(f", {d}" for d in tensor.item_shape) + "]"
    if rows.ndim != 1 + len(tensor.item_shape) or rows.shape[1:] != tensor.item_shape:
        raise ValueError(
            f"Expected {tensor.name!r} of shape {shape}. Received: {list(rows.shape)}."
        )
    if tensor.datatype == "FP32" and not np.all(np.isfinite(rows)):
        raise ValueError(f"{tensor.name!r} contains NaN or infinite values.")
    if tensor.value_range is not None:
        low, high = tensor.value_range
        if rows.min() < low or rows.max() > high:
            raise ValueError(
                f"Expected {tensor.name!r} in [{low}, {high}]. Received values from "
                f"{rows.min()} to {rows.max()}."
            )
    return rows.astype(_DATATYPES[tensor.datatype])


def _v1_response(outputs, results, columnar):
    """TF Serving's response: `predictions` per example, or `outputs` for the batch."""
    names = [spec.name for spec in outputs]
    if columnar:
        if len(names) == 1:
            return {"outputs": results[0].tolist()}
        return {"outputs": {n: r.tolist() for n, r in zip(names, results, strict=True)}}
    if len(names) == 1:
        return {"predictions": results[0].tolist()}
    return {
        "predictions": [
            {n: r[i].tolist() for n, r in zip(names, results, strict=True)}
            for i in range(len(results[0]))
        ]
    }


def _describe(value):
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)}"
    return f"{type(value).__name__} {value!r:.60}"


class JsonByDefault:
    """ASGI middleware: a V2 request without binary data is JSON, whatever its content type says.

    Triton reads such a body as JSON, and its client (`tritonclient.http`) sends
    no content type; KServe would take the body for binary data and refuse it.
    `curl -d` labels bodies as form data, which this also reads as JSON.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v2/"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            given = dict(scope["headers"]).get(b"content-type", b"")
            binary = any(k == b"inference-header-content-length" for k, _ in headers)
            if not binary and given in (b"", b"application/x-www-form-urlencoded"):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def serve(vae, port=8080, max_batch_rows=MAX_BATCH_ROWS):
    """Serves a bundle's decoder, encoder and sampler until interrupted.

    Args:
        vae: the bundle, as an `ExportedVAE`.
        port: the HTTP port.
        max_batch_rows: the most rows of queued requests run together.
    """
    import kserve
    from kserve.model_server import app

    app.add_middleware(JsonByDefault)
    server = kserve.ModelServer(http_port=port, enable_grpc=False, workers=1)
    print(
        f"Serving {vae.directory} version {vae.version} on port {port}: models decoder, "
        "encoder, sampler.",
        flush=True,
    )
    server.start(build_models(vae, max_batch_rows))


def main(argv=None, prog="keras-vae-serve"):
    """Serves a bundle until interrupted: `keras-vae-serve BUNDLE [options]`.

    Args:
        argv: the arguments, or `None` for the command line's.
        prog: the command's name in help and error messages.
    """
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="export bundle folder, e.g. exported/default")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--version", type=int, help="bundle version (default: the latest)")
    parser.add_argument("--threads", type=int, help="onnxruntime threads (default: all cores)")
    parser.add_argument(
        "--max-batch-rows",
        type=int,
        default=MAX_BATCH_ROWS,
        help=f"most rows of queued requests run together; 1 runs each alone "
        f"(default {MAX_BATCH_ROWS})",
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"Expected --port between 1 and 65535. Received: {args.port}")
    if args.max_batch_rows < 1:
        parser.error(f"Expected --max-batch-rows of at least 1. Received: {args.max_batch_rows}")
    try:
        # Spinning onnxruntime threads would take the event loop's cores.
        vae = ExportedVAE(args.bundle, threads=args.threads, version=args.version, spinning=False)
    except (BundleError, ValueError) as error:
        parser.error(str(error))
    try:
        import kserve  # noqa: F401
    except ImportError:
        parser.error('The server needs KServe: pip install "keras-vae-inference[serve]".')
    serve(vae, args.port, args.max_batch_rows)


if __name__ == "__main__":
    main()
