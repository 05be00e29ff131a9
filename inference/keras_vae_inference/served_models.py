"""The models a server makes of a bundle: their tensors, the checks on inputs, the batched calls.

Three models, named like the bundle's Triton models so that a client can move
between the two servers:

- `decoder`: `z` float32 `[batch, latent_dim]` -> `image` float32 `[batch, H, W, C]`
- `encoder`: `images` float32 `[batch, H, W, C]` in [0, 1] -> `mean`, `log_var`
- `sampler`: `seed` int64 `[batch]` -> `image` and the latent vector `z` drawn
  from the prior with that seed (`ExportedVAE.draw`: for a one-level VAE, z from
  N(0, I) as `ExportedVAE.sample(1, seed)` draws it)

A conditional VAE's models also take `labels` float32 `[batch, classes]`
(one-hot rows, or weights that mix classes), after their first input. A
two-level VAE's decoder and encoder work on `z1`, its sampler also returns `z2`,
and two models more serve its upper layer: `top_decoder` (`z` = z2 -> `mean`,
`log_var` of p(z1|z2)) and `top_encoder` (`z` = z1 -> those of q(z2|z1)).
"""

import numpy as np

from keras_vae_inference import bundle
from keras_vae_inference.batcher import MAX_BATCH_ROWS, Batcher

# Rows one request may hold; larger requests are refused, not queued.
MAX_REQUEST_ROWS = 4096
DTYPES = {"FP32": np.dtype(np.float32), "INT64": np.dtype(np.int64)}


class RequestError(ValueError):
    """A request the server refuses: its message names the problem for the client.

    Args:
        message: what is wrong and, where it helps, what to send instead.
        status: the HTTP status to answer with.
    """

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


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
        self.dtype = DTYPES[datatype]
        self.value_range = value_range

    def metadata(self):
        """The Open Inference Protocol's description: name, datatype, shape."""
        return {"name": self.name, "datatype": self.datatype, "shape": [-1, *self.item_shape]}

    def shape_text(self):
        return "[batch" + "".join(f", {d}" for d in self.item_shape) + "]"

    def from_json(self, values):
        """JSON values (nested lists) as an array, refused unless numbers of this tensor's kind.

        The array keeps the nesting it was sent with; `checked` checks its shape.

        Raises:
            RequestError: ragged lists, or values that are not numbers (integers for
                INT64) or lie outside the datatype's range.
        """
        try:
            array = np.array(values)
        except ValueError:
            array = None
        integer = self.dtype.kind == "i"
        if array is None or (array.size and array.dtype.kind not in ("iu" if integer else "fiu")):
            what = "integers" if integer else "numbers"
            raise RequestError(
                f"Expected {self.name!r} as {what}: nested lists of {what} of shape "
                f"{self.shape_text()}. Received: ragged or other values."
            )
        if integer and array.dtype.kind == "u" and array.max() > np.iinfo(self.dtype).max:
            raise RequestError(f"Expected {self.name!r} within {self.datatype}'s range.")
        return array

    def checked(self, array):
        """`array` as this tensor's dtype, checked for shape, NaN and range.

        The checks run on the values the model will compute with: a float that
        overflows float32 is refused here, not inside a batch shared with others.

        Raises:
            RequestError: the array does not fit.
        """
        if array.ndim != 1 + len(self.item_shape) or array.shape[1:] != self.item_shape:
            raise RequestError(
                f"Expected {self.name!r} of shape {self.shape_text()}. "
                f"Received: {list(array.shape)}."
            )
        with np.errstate(over="ignore"):  # an overflow is refused just below
            array = np.ascontiguousarray(array, dtype=self.dtype)
        if self.dtype.kind == "f" and not np.isfinite(array).all():
            raise RequestError(
                f"{self.name!r} contains NaN or infinite values (as {self.datatype}: "
                f"finite values up to {np.finfo(self.dtype).max:.4g} in size)."
            )
        if self.value_range is not None and array.size:
            low, high = self.value_range
            if array.min() < low or array.max() > high:
                raise RequestError(
                    f"Expected {self.name!r} in [{low}, {high}]. Received values from "
                    f"{array.min()} to {array.max()}."
                )
        return array


class ServedModel:
    """One model of the server: its tensors and its batched function.

    Args:
        name: the model's name in URLs.
        version: the bundle version it serves.
        inputs: its input `Tensor`s, in the order `function` takes them.
        outputs: its output `Tensor`s, in the order `function` returns them.
        function: takes one array per input and returns one per output.
        max_batch_rows: the most rows of queued requests run together.
    """

    def __init__(self, name, version, inputs, outputs, function, max_batch_rows=MAX_BATCH_ROWS):
        self.name, self.version = name, version
        self.inputs, self.outputs = inputs, outputs
        self.output_names = [tensor.name for tensor in outputs]
        self._batcher = Batcher(function, max_batch_rows)

    def metadata(self):
        """The Open Inference Protocol's model metadata."""
        return {
            "name": self.name,
            "versions": [str(self.version)],
            "platform": "onnxruntime_onnx",
            "inputs": [tensor.metadata() for tensor in self.inputs],
            "outputs": [tensor.metadata() for tensor in self.outputs],
        }

    def checked(self, arrays):
        """The inputs of one request in the model's order, checked.

        Args:
            arrays: `{input name: array}`.

        Returns:
            A list of arrays, one per input.

        Raises:
            RequestError: an input is missing, unknown, or does not fit.
        """
        names = [tensor.name for tensor in self.inputs]
        if sorted(arrays) != sorted(names):
            raise RequestError(f"Expected the inputs {names}. Received: {list(arrays)}.")
        checked = [tensor.checked(arrays[tensor.name]) for tensor in self.inputs]
        rows = {len(array) for array in checked}
        if len(rows) > 1:
            raise RequestError(
                f"Expected the same number of rows in {names}. Received: "
                f"{[len(array) for array in checked]}."
            )
        (count,) = rows
        if not 1 <= count <= MAX_REQUEST_ROWS:
            raise RequestError(
                f"Expected between 1 and {MAX_REQUEST_ROWS} rows of {names[0]!r}. "
                f"Received: {count}."
            )
        return checked

    async def __call__(self, inputs):
        """The outputs for checked inputs, computed within a batch of queued requests."""
        return await self._batcher(*inputs)


def served_models(vae, max_batch_rows=MAX_BATCH_ROWS):
    """The server's models for a loaded bundle.

    Args:
        vae: an `ExportedVAE`.
        max_batch_rows: the most rows of queued requests run together (1: each
            request alone).

    Returns:
        A dict `{name: ServedModel}`: decoder, encoder and sampler, and for a
        two-level VAE top_decoder and top_encoder.
    """
    latent, images = (vae.latent_dim,), vae.image_shape
    inputs = vae.model_inputs
    labels = []
    if inputs.conditional:
        labels = [Tensor(bundle.LABELS, "FP32", inputs.label_shape, value_range=(0.0, 1.0))]

    def draw(seeds, *labels):
        return tuple(vae.draw(seeds, *labels).values())

    def gaussian(size):
        return [Tensor(bundle.MEAN, "FP32", (size,)), Tensor(bundle.LOG_VAR, "FP32", (size,))]

    drawn = [Tensor(bundle.IMAGE, "FP32", images), Tensor(bundle.LATENT, "FP32", latent)]
    top_latent_dim = inputs.top_latent_dim
    if inputs.two_level:
        drawn.append(Tensor(bundle.TOP_LATENT, "FP32", (top_latent_dim,)))
    models = [
        ServedModel(
            "decoder", vae.version,
            [Tensor(bundle.LATENT, "FP32", latent), *labels],
            [Tensor(bundle.IMAGE, "FP32", images)],
            lambda *inputs: (vae.decode(*inputs),),
            max_batch_rows,
        ),
        ServedModel(
            "encoder", vae.version,
            [Tensor(bundle.IMAGES, "FP32", images, value_range=(0.0, 1.0)), *labels],
            gaussian(vae.latent_dim),
            vae.encode,
            max_batch_rows,
        ),
        ServedModel(
            "sampler", vae.version,
            [Tensor(bundle.SEED, "INT64", (), value_range=bundle.SEED_RANGE), *labels],
            drawn,
            draw,
            max_batch_rows,
        ),
    ]  # fmt: skip
    if inputs.two_level:
        top = [Tensor(bundle.LATENT, "FP32", (top_latent_dim,))]
        models += [
            ServedModel("top_decoder", vae.version, top, gaussian(vae.latent_dim),
                        vae.top_decode, max_batch_rows),
            ServedModel("top_encoder", vae.version, [Tensor(bundle.LATENT, "FP32", latent)],
                        gaussian(top_latent_dim), vae.top_encode, max_batch_rows),
        ]  # fmt: skip
    return {model.name: model for model in models}
