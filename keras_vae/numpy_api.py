"""The models' NumPy API: encode, decode, sample, reconstruct and interpolate.

Arrays in and arrays out, for any number of items: each network runs batch by
batch through one traced function per network, which serves every batch size.
"""

import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# What the user methods take: arrays (or nested lists), or tf.data datasets of them.
ArrayLike = np.ndarray | list
ArrayOrDataset = np.ndarray | list | tf.data.Dataset


class NumpyAPI:
    """The NumPy methods of the model classes (`EncoderDecoder`), on their
    `encoder`, `decoder`, `likelihood` and input checks."""

    def encode(
        self, images: ArrayOrDataset, labels: ArrayLike | None = None, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns the posterior mean and log-variance of each image.

        Args:
            images: array of shape `(n, H, W, C)` in [0, 1], or a `tf.data.Dataset`
                of such images (batched or not, alone or as `(images, labels)`).
            labels: a conditional model's labels, see `ConditionalVAE`.
            batch_size: images per forward pass.

        Returns:
            A tuple `(mean, log_var)` of NumPy arrays of shape `(n, latent_dim)`.
        """
        images, labels = self._user_inputs(images, labels, "images", item_rank=3)
        self._check_images(images)
        if self.likelihood.support is not None and images.size:
            low, high = self.likelihood.support
            if images.min() < low or images.max() > high:
                raise ValueError(
                    f"Expected pixel values in [{low:g}, {high:g}] for the "
                    f"{self.likelihood.distribution} likelihood. Received: values from "
                    f"{images.min():g} to {images.max():g}. Divide 8-bit images by 255."
                )
        inputs = self.network_inputs(images, labels)
        mean, log_var = _predict(self.encoder, inputs, batch_size)
        return mean, log_var

    def decode(
        self, z: ArrayOrDataset, labels: ArrayLike | None = None, batch_size: int = 256
    ) -> np.ndarray:
        """Returns the mean image of p(x|z) for each latent vector.

        Args:
            z: array of shape `(n, latent_dim)`, or a `tf.data.Dataset` of latent
                vectors (batched or not).
            labels: a conditional model's labels, see `ConditionalVAE`.
            batch_size: latent vectors per forward pass.

        Returns:
            A NumPy array of shape `(n, H, W, C)` in [0, 1].
        """
        z, labels = self._user_inputs(z, labels, "z", item_rank=1)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"{self.name} expects latent vectors of shape (n, {self.latent_dim}). "
                f"Received: shape {z.shape}."
            )
        (params,) = _predict(self.decoder, self.network_inputs(z, labels), batch_size)
        return ops.convert_to_numpy(self.likelihood(params))

    def _user_inputs(self, values, labels, name, item_rank):
        """`values` as a finite float32 array and `labels` as the networks take them."""
        if labels is not None:
            self.network_inputs(None, labels)  # refused by an unconditional model
        return _as_finite_array(name, values, item_rank), None

    def sample(self, n: int, seed: int | None = None, labels: ArrayLike | None = None
               ) -> np.ndarray:  # fmt: skip
        """Decodes `n` latent vectors drawn from the prior N(0, I).

        Args:
            n: number of images.
            seed: int for a repeatable draw, or `None`.
            labels: a conditional model's labels, see `ConditionalVAE`.

        Returns:
            A NumPy array of shape `(n, H, W, C)` in [0, 1].
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"Expected `n` to be a non-negative integer. Received: n={n!r}")
        if n == 0:
            return np.zeros((0, *self.image_shape), "float32")
        return self.decode(self.prior_codes(int(n), seed), labels)

    def prior_codes(self, n: int, seed: int | None = None) -> np.ndarray:
        """Draws `n` codes from the prior, N(0, I): what `sample` decodes.

        Args:
            n: a positive number of codes.
            seed: int for a repeatable draw, or `None`.

        Returns:
            A float32 NumPy array `(n, latent_dim)`.
        """
        return ops.convert_to_numpy(keras.random.normal((n, self.latent_dim), seed=seed))

    def reconstruct(self, images: ArrayOrDataset, labels: ArrayLike | None = None
                    ) -> np.ndarray:  # fmt: skip
        """Decodes the posterior mean of each image.

        Args:
            images: array of shape `(n, H, W, C)` in [0, 1], or a `tf.data.Dataset`
                of them, as `encode` takes.
            labels: a conditional model's labels, see `ConditionalVAE`.

        Returns:
            A NumPy array of shape `(n, H, W, C)`.
        """
        mean, _ = self.encode(images, labels)
        return self.decode(mean, labels)

    def interpolate(self, image_a: ArrayLike, image_b: ArrayLike, steps: int = 8) -> np.ndarray:
        """Decodes evenly spaced points between the posterior means of two images.

        Args:
            image_a: one image `(H, W, C)`, or a batch `(n, H, W, C)`.
            image_b: an array of the same shape as `image_a`.
            steps: number of points, ends included (at least 2).

        Returns:
            A NumPy array of shape `(steps,) + image_a.shape`.
        """
        if steps < 2:
            raise ValueError(f"Expected `steps` to be at least 2. Received: steps={steps}")
        image_a = _as_finite_array("image_a", image_a, item_rank=3)
        image_b = _as_finite_array("image_b", image_b, item_rank=3)
        if image_a.shape != image_b.shape:
            raise ValueError(
                "Expected two images (or batches) of the same shape. "
                f"Received: {image_a.shape} and {image_b.shape}."
            )
        single = image_a.ndim == 3
        batch = np.stack([image_a, image_b]) if single else np.concatenate([image_a, image_b])
        mean, _ = self.encode(batch)
        start, end = np.split(mean, 2)
        weights = np.linspace(0.0, 1.0, steps, dtype=mean.dtype)[:, None, None]
        path = (1.0 - weights) * start[None] + weights * end[None]
        images = self.decode(path.reshape(-1, self.latent_dim))
        return images.reshape((steps,) + image_a.shape)


# One traced inference function per network, made on first use.
_INFERENCE_CALLS = weakref.WeakKeyDictionary()


def _predict(network, values, batch_size):
    """`network`'s outputs for `values` (an array, or a list of arrays for a
    network of several inputs), batch by batch, as a list of NumPy arrays.

    One function, traced once for any batch size, serves every call; `predict`
    makes and traces new functions, and TensorFlow warns of retracing when
    several models are used in turn.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"Expected `batch_size` to be a positive integer. Received: batch_size={batch_size!r}"
        )
    call = _INFERENCE_CALLS.get(network)
    if call is None:
        # A weak reference: the function must not keep its network alive.
        reference = weakref.ref(network)
        call = tf.function(
            lambda *batch: reference()(list(batch) if len(batch) > 1 else batch[0],
                                       training=False),
            input_signature=[tf.TensorSpec(spec.shape, "float32") for spec in network.inputs],
        )  # fmt: skip
        _INFERENCE_CALLS[network] = call
    values = values if isinstance(values, list) else [values]
    if not len(values[0]):
        # An empty batch in, an empty batch out, of the shapes a batch would have.
        shapes = tf.nest.flatten(call.get_concrete_function().structured_outputs)
        return [np.zeros((0, *shape.shape[1:]), "float32") for shape in shapes]
    parts = [
        tf.nest.flatten(call(*(tf.constant(part[start : start + batch_size]) for part in values)))
        for start in range(0, len(values[0]), batch_size)
    ]
    return [np.concatenate([ops.convert_to_numpy(part[i]) for part in parts])
            for i in range(len(parts[0]))]  # fmt: skip


def images_of(data):
    """Takes the images out of `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`."""
    return data[0] if isinstance(data, (tuple, list)) else data


def _as_finite_array(name, values, item_rank):
    """`values` (an array, nested lists or a `tf.data.Dataset` of items of rank
    `item_rank`, batched or not) as one finite float32 array."""
    if isinstance(values, tf.data.Dataset):
        parts = [np.asarray(images_of(element)) for element in values.as_numpy_iterator()]
        if not parts:
            raise ValueError(
                f"Expected `{name}` to hold at least one element. Received: an empty dataset."
            )
        batched = parts[0].ndim == item_rank + 1
        values = np.concatenate(parts) if batched else np.stack(parts)
    try:
        array = np.asarray(values, dtype="float32")
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Expected `{name}` to be an array of numbers of one shape. Received values "
            f"NumPy cannot read as one ({error})."
        ) from None
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` contains NaN or infinite values "
            f"({np.count_nonzero(~np.isfinite(array))} of {array.size}). Clean the input first."
        )
    return array
