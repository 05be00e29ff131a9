"""What a model takes: images, latent codes and, for a conditional model, labels.

`ModelInputs` is the one description of a model's inputs that every part asks
instead of testing how a model is conditioned: the Keras models give theirs
(`model.model_inputs`) to the export, evaluation and training's pictures, and
an export writes it into the bundle's manifest, from which `ExportedVAE` and
the server read it back. Importable without TensorFlow.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ModelInputs:
    """A model's inputs and their shapes (each with the batch as a first axis).

    Attributes:
        image_shape: `(height, width, channels)` of the images the encoder
            takes and the decoder returns, values in [0, 1].
        latent_dim: the size of a latent code `z`.
        num_classes: for a conditional model, the classes its labels span
            (each network's second input, one-hot rows or weights that mix
            classes); `None` for a model of images alone.
        top_latent_dim: for a two-level model, the size of its upper code `z2`
            (`latent_dim` is then the size of `z1`, the decoder's input);
            `None` for a model of one stochastic layer.
    """

    image_shape: tuple
    latent_dim: int
    num_classes: int | None = None
    top_latent_dim: int | None = None

    @property
    def two_level(self):
        """Whether the prior over the decoder's input is learned, `p(z1|z2)`, not N(0, I)."""
        return self.top_latent_dim is not None

    @property
    def conditional(self):
        """Whether the networks take labels beside images and codes."""
        return self.num_classes is not None

    @property
    def label_shape(self):
        """The shape of one label row, `(num_classes,)`; `None` for an unconditional model."""
        return (self.num_classes,) if self.conditional else None

    def cycled_labels(self, n):
        """`n` class indices going round the classes (0, 1, ..., 0, 1, ...), so that
        pictures and checks show every class; `None` for an unconditional model."""
        return np.arange(n) % self.num_classes if self.conditional else None

    def class_rows(self, columns):
        """The class indices of a grid with a row per class, `columns` wide, row by row;
        `None` for an unconditional model."""
        return np.repeat(np.arange(self.num_classes), columns) if self.conditional else None

    def latent_batch(self, z):
        """Checks a caller's latent codes.

        Args:
            z: array-like `(n, latent_dim)` of real numbers.

        Returns:
            A C-contiguous float32 array `(n, latent_dim)`.
        """
        return _float32_batch("z", z, (self.latent_dim,), "latent vectors")

    def top_latent_batch(self, z2):
        """Checks a caller's upper codes `z2` of a two-level model.

        Args:
            z2: array-like `(n, top_latent_dim)` of real numbers.

        Returns:
            A C-contiguous float32 array `(n, top_latent_dim)`.
        """
        if not self.two_level:
            raise ValueError("This model has one stochastic layer: it has no upper code z2.")
        return _float32_batch("z2", z2, (self.top_latent_dim,), "upper codes z2")

    def image_batch(self, images):
        """Checks a caller's images.

        Args:
            images: array-like `(n, height, width, channels)`, values in [0, 1].

        Returns:
            A C-contiguous float32 array of the images.
        """
        images = _float32_batch("images", images, self.image_shape, "images")
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"`images` must hold values in [0, 1]; received values from {low:g} to "
                f"{high:g}. Divide 8-bit images by 255."
            )
        return images

    def label_rows(self, labels, n):
        """Checks a caller's labels for `n` codes or images.

        Args:
            labels: a conditional model's labels, `n` class indices or `n` rows
                of one-hot (or mixing) weights; `None` for an unconditional model.
            n: the number of codes or images the labels go with.

        Returns:
            A float32 array `(n, num_classes)` of label rows; `None` for an
            unconditional model.
        """
        if not self.conditional:
            if labels is not None:
                raise ValueError("This model is not conditional: pass no labels. Received: labels.")
            return None
        classes = self.num_classes
        if labels is None:
            raise ValueError(
                f"This model is a conditional VAE of {classes} classes: pass labels=, "
                f"{n} class indices or one-hot rows."
            )
        labels = np.asarray(labels)
        if labels.shape == (n,) and labels.dtype.kind in "iu":
            if labels.min() < 0 or labels.max() >= classes:
                raise ValueError(
                    f"Expected class indices in [0, {classes}). Received: labels from "
                    f"{labels.min()} to {labels.max()}."
                )
            return np.eye(classes, dtype=np.float32)[labels]
        return _float32_batch("labels", labels, (classes,), "one-hot labels")

    def manifest_entry(self):
        """The description as the bundle manifest's `model` entry holds it."""
        entry = {"latent_dim": self.latent_dim, "image_shape": list(self.image_shape)}
        if self.conditional:
            entry["num_classes"] = self.num_classes
        if self.two_level:
            entry["top_latent_dim"] = self.top_latent_dim
        return entry

    @classmethod
    def from_manifest(cls, manifest, origin="the bundle"):
        """Reads the description that an export wrote into a bundle's manifest.

        Args:
            manifest: the manifest, as a dict.
            origin: the bundle, for error messages.

        Raises:
            ValueError: the manifest does not record the sizes, or records
                sizes no model has.
        """
        try:
            model = manifest["model"]
            latent_dim = int(model["latent_dim"])
            image_shape = tuple(map(int, model["image_shape"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"The manifest of {origin} does not record the model's latent_dim and "
                f"image_shape ({type(error).__name__}: {error}). Export the model again."
            ) from None
        if latent_dim < 1 or len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(
                f"The manifest of {origin} records latent_dim {latent_dim} and image_shape "
                f"{image_shape}, which no model has. Export the model again."
            )
        sizes = {key: model.get(key) for key in ("num_classes", "top_latent_dim")}
        for key, size in sizes.items():
            if size is not None and (type(size) is not int or size < 1):
                raise ValueError(
                    f"The manifest of {origin} records {key} {size!r}, which no model "
                    "has. Export the model again."
                )
        return cls(image_shape, latent_dim, **sizes)


def _float32_batch(name, values, item_shape, what):
    """`values` as a non-empty, finite, C-contiguous float32 batch of `item_shape` items."""
    expected = "(n, " + ", ".join(map(str, item_shape)) + ")"
    try:
        array = np.asarray(values)
    except ValueError:
        raise ValueError(
            f"Expected {what} of shape {expected}. Received: nested sequences of unequal "
            f"lengths in `{name}`."
        ) from None
    if array.dtype.kind not in "fiu":
        raise TypeError(
            f"`{name}` must be a numeric array; received dtype {array.dtype}. "
            "Convert it to float32."
        )
    if array.ndim != 1 + len(item_shape) or array.shape[1:] != tuple(item_shape):
        raise ValueError(f"Expected {what} of shape {expected}. Received: shape {array.shape}.")
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: expected at least one of shape {expected}.")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        count = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(
            f"`{name}` contains {count} NaN or infinite values. Clean the input first."
        )
    return np.ascontiguousarray(array)
