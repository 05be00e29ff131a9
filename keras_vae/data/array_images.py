"""NumPy arrays as a dataset: a Keras user's `(x_train, y_train)`, or a `.npz` file."""

import os

import numpy as np

from keras_vae.data.idx import DataFileError
from keras_vae.data.source import ImageSource


class ArrayImages(ImageSource):
    """Image arrays as a dataset with `train` and `test` splits.

    Images are 8-bit, as `keras.datasets` gives them: `uint8` (or whole
    numbers in 0..255) of shape `(n, H, W)` or `(n, H, W, C)`.

    Args:
        train: the training images, or a tuple `(images, labels)`.
        test: the test images, or a tuple `(images, labels)`.
        class_names: names of the labels 0..n-1, or `None` for
            `"0", "1", ...` up to the largest label (none without labels).
    """

    def __init__(self, train, test, class_names=None):
        self._splits = {"train": _checked(train, "train"), "test": _checked(test, "test")}
        shapes = {images.shape[1:] for images, _ in self._splits.values()}
        if len(shapes) != 1:
            raise ValueError(
                "Expected train and test images of one shape. Received: "
                f"{self._splits['train'][0].shape[1:]} and {self._splits['test'][0].shape[1:]}."
            )
        largest = max(int(labels.max(initial=0)) for _, labels in self._splits.values())
        if class_names is None:
            labelled = any(labels.any() for _, labels in self._splits.values())
            class_names = [str(label) for label in range(largest + 1)] if labelled else []
        elif largest >= len(class_names):
            raise ValueError(
                f"Expected labels below the {len(class_names)} class names. "
                f"Received: label {largest}."
            )
        self._class_names = list(class_names)

    @classmethod
    def from_npz(cls, path: str | os.PathLike, class_names=None):
        """Reads the arrays `x_train`, `y_train`, `x_test`, `y_test` of a `.npz` file,
        the layout of `keras.datasets`' files (labels are optional)."""
        try:
            with np.load(path) as arrays:
                found = dict(arrays)
        except (OSError, ValueError) as error:
            raise DataFileError(f"Cannot read {path} as a .npz file: {error}.") from None
        missing = [key for key in ("x_train", "x_test") if key not in found]
        if missing:
            raise DataFileError(
                f"Expected arrays x_train and x_test (and optionally y_train, y_test) in "
                f"{path}, as keras.datasets writes them. Received: {sorted(found)}."
            )
        splits = {
            split: (found[f"x_{split}"], found.get(f"y_{split}")) for split in ("train", "test")
        }
        return cls(splits["train"], splits["test"], class_names=class_names)

    @property
    def class_names(self):
        return self._class_names

    @property
    def image_shape(self):
        return self._splits["train"][0].shape[1:]

    def split_sizes(self):
        return {name: len(images) for name, (images, _) in self._splits.items()}

    def read_split(self, name):
        return self._splits[name]


def _checked(split, name):
    images, labels = split if isinstance(split, tuple) else (split, None)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"Expected {name} images of shape (n, height, width) or (n, height, width, 1 "
            f"or 3). Received: shape {images.shape}."
        )
    if images.dtype != np.uint8:
        if not (np.issubdtype(images.dtype, np.number) and np.all(np.isfinite(images))
                and images.min(initial=0) >= 0 and images.max(initial=0) <= 255
                and np.all(images == np.round(images))):  # fmt: skip
            raise ValueError(
                f"Expected {name} images as 8-bit values, uint8 or whole numbers in "
                f"0..255, as keras.datasets gives them. Received: dtype {images.dtype}, "
                f"values from {images.min()} to {images.max()}. Scale [0, 1] images "
                "with (images * 255).round().astype('uint8')."
            )
        images = images.astype(np.uint8)
    labels = np.zeros(len(images), "int64") if labels is None else np.asarray(labels)
    if (
        labels.shape != (len(images),)
        or not np.issubdtype(labels.dtype, np.integer)
        or (labels.size and labels.min() < 0)
    ):
        raise ValueError(
            f"Expected {name} labels as {len(images)} non-negative integers, one per "
            f"image. Received: shape {labels.shape}, dtype {labels.dtype}."
        )
    return images, labels.astype("int64")
