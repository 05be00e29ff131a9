"""The conditional VAE: encoder and decoder also see the class label."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae.architectures import conditional_networks
from keras_vae.presets import PRESETS
from keras_vae.vae import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class ConditionalVAE(VAE):
    """A VAE conditioned on a class label: q(z|x, y) and p(x|z, y), as in the classic CVAE.

    The label enters both networks one-hot; `sample(n, labels=...)` then draws
    images of the classes asked for. Everything else is the `VAE`'s: the loss,
    `fit`, `evaluate`, saving, presets, `tf.distribute` and export (the
    exported decoder takes `z` and the one-hot `labels`).

    Labels are integer class indices `(n,)` or one-hot rows `(n, num_classes)`;
    `decode` and `sample` also take any mix of classes as rows of weights.
    Training data are `(images, labels)` pairs: `fit(images, labels)`, or a
    dataset from `load_images(..., with_labels=True)`.

    Args:
        encoder: a `keras.Model` mapping `[images, one-hot labels]` to `[mean, log_var]`.
        decoder: a `keras.Model` mapping `[z, one-hot labels]` to decoder outputs.
        num_classes: number of classes of the label.
        **kwargs: the other arguments of `VAE`.

    Call arguments:
        inputs: a pair `(images, labels)`.

    Example:

    ```python
    cvae = keras_vae.ConditionalVAE.from_preset("fashion_mnist_conv", num_classes=10)
    cvae.compile(optimizer="adam")
    cvae.fit(train_images, train_labels, epochs=10, batch_size=128)
    sneakers = cvae.sample(8, seed=0, labels=[7] * 8)
    ```
    """

    ARCHITECTURE_ARGUMENTS = (*VAE.ARCHITECTURE_ARGUMENTS, "num_classes")

    def __init__(self, encoder: keras.Model, decoder: keras.Model, num_classes: int, **kwargs):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"Expected num_classes to be a positive integer. Received: {num_classes!r}"
            )
        for network in (encoder, decoder):
            shapes = [tuple(spec.shape[1:]) for spec in network.inputs]
            if len(shapes) != 2 or shapes[1] != (num_classes,):
                raise ValueError(
                    f"Expected the {network.name} to take two inputs, the second the one-hot "
                    f"labels (batch, {num_classes}); build the networks with "
                    "keras_vae.architectures.conditional_networks. Received input shapes "
                    f"{shapes}."
                )
        super().__init__(encoder, decoder, **kwargs)
        self.num_classes = num_classes
        # Under a tf.distribute strategy Keras builds an unbuilt model by calling
        # it on the images alone, which a conditional model cannot take. These
        # two layers hold no shape-dependent state: nothing is left to build.
        self.sampler.built = True
        self.likelihood.built = True

    @classmethod
    def from_preset(cls, preset, load_weights=None, **kwargs) -> "ConditionalVAE":
        """Builds a conditional VAE from a preset, as `VAE.from_preset` does.

        A named preset gives the architecture (no shipped weights fit a
        conditional model), with `num_classes=...` required; a folder written
        by `save_to_preset` loads with its weights.
        """
        if isinstance(preset, str) and preset in PRESETS:
            if load_weights:
                raise ValueError(
                    f"Preset {preset!r} ships no weights of a conditional VAE. Pass "
                    "load_weights=False (or nothing) for untrained networks."
                )
            return cls._from_architecture(preset, **kwargs)
        return super().from_preset(preset, load_weights, **kwargs)

    @classmethod
    def _from_architecture(cls, name, input_shape=None, latent_dim=None, likelihood=None,
                           num_classes=None, **kwargs):  # fmt: skip
        if num_classes is None:
            raise ValueError(
                "ConditionalVAE.from_preset needs the number of classes: pass num_classes=... "
                "(10 for Fashion-MNIST and MNIST)."
            )
        preset = PRESETS[name]
        input_shape = tuple(preset["input_shape"] if input_shape is None else input_shape)
        latent_dim = preset["latent_dim"] if latent_dim is None else latent_dim
        encoder, decoder = conditional_networks(
            preset["architecture"], input_shape, latent_dim, num_classes,
            encoder=preset["encoder"], decoder=preset["decoder"],
        )  # fmt: skip
        kwargs.setdefault("name", f"conditionalvae_{name}")
        return cls(encoder, decoder, num_classes,
                   likelihood=likelihood or preset["likelihood"], **kwargs)  # fmt: skip

    def network_inputs(self, values, labels):
        if labels is None:
            raise ValueError(
                f"{type(self).__name__} needs the labels of what it encodes, decodes or "
                "samples: pass labels=... (class indices, or one-hot rows)."
            )
        return [values, self._one_hot(labels)]

    def _one_hot(self, labels):
        labels = ops.convert_to_tensor(labels)
        if len(labels.shape) == 1:
            return ops.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype="float32")
        return ops.cast(labels, "float32")

    def _split_inputs(self, data):
        if not (isinstance(data, (tuple, list)) and len(data) >= 2 and data[1] is not None):
            raise ValueError(
                f"{type(self).__name__} trains and evaluates on (images, labels) pairs. "
                "Received: images alone. Pass fit(images, labels), or a dataset of "
                "(images, labels) such as load_images(..., with_labels=True)."
            )
        return data[0], data[1]

    def _check_labels(self, labels, where):
        if len(labels.shape) != 1:
            return None
        labels = ops.cast(labels, "int64")
        return tf.debugging.Assert(
            ops.logical_and(ops.all(labels >= 0), ops.all(labels < self.num_classes)),
            [
                f"Expected labels in [0, {self.num_classes}),",
                *where,
                ": received labels from",
                ops.min(labels),
                "to",
                ops.max(labels),
                ". Build the model with num_classes above the largest label.",
            ],
        )

    def _user_inputs(self, values, labels, name, item_rank):
        if labels is None and isinstance(values, tf.data.Dataset):
            # One pass over the dataset: its images and, when it holds pairs, their labels.
            pairs = list(values.as_numpy_iterator())
            if pairs and isinstance(pairs[0], tuple) and len(pairs[0]) >= 2:
                join = np.concatenate if np.ndim(pairs[0][1]) == 1 else np.stack
                values, labels = join([p[0] for p in pairs]), join([p[1] for p in pairs])
        values, _ = super()._user_inputs(values, None, name, item_rank)
        return values, self.one_hot_labels(labels, len(values))

    def one_hot_labels(self, labels, n):
        """Checks labels given by a user and returns them one-hot.

        Args:
            labels: `n` class indices, or `n` rows of `num_classes` non-negative weights.
            n: how many there must be.

        Returns:
            A float32 NumPy array `(n, num_classes)`.
        """
        if labels is None:
            self.network_inputs(None, None)  # raises, saying what to pass
        labels = np.asarray(labels)
        classes = self.num_classes
        if labels.ndim == 1 and len(labels) == n and np.issubdtype(labels.dtype, np.integer):
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise ValueError(
                    f"Expected class indices in [0, {classes}). Received: labels from "
                    f"{labels.min()} to {labels.max()}."
                )
            return np.eye(classes, dtype="float32")[labels]
        if (labels.shape == (n, classes) and np.issubdtype(labels.dtype, np.number)
                and np.all(np.isfinite(labels)) and np.all(labels >= 0)):  # fmt: skip
            return labels.astype("float32")
        raise ValueError(
            f"Expected labels as {n} class indices (integers in [0, {classes})) or an array "
            f"({n}, {classes}) of one-hot rows. Received: shape {labels.shape}, dtype "
            f"{labels.dtype}."
        )

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
