"""TFDS datasets as image sources: Fashion-MNIST and MNIST from local IDX files, or any
prepared TFDS image dataset."""

import functools

import tensorflow_datasets as tfds

from keras_vae.data.idx import DataFileError
from keras_vae.data.idx_builder import IdxImages, find_split_files
from keras_vae.data.source import ImageSource


class DataUnavailableError(RuntimeError):
    """A dataset is neither prepared nor obtainable from here."""


def idx_config(name):
    """Returns the `IdxConfig` of a dataset the local IDX builder knows, else `None`."""
    return next((c for c in IdxImages.BUILDER_CONFIGS if c.name == name), None)


def dataset_builder(name, data_dir=None, idx_dir=None):
    """Returns a prepared TFDS builder for `name`, preparing it if needed.

    Names the local IDX builder knows (`fashion_mnist`, `mnist`) are prepared
    from IDX files in `idx_dir` (default: the config's `default_dir`) when
    those files exist; anything else goes through TFDS' own builder, which may
    download.

    Args:
        name: a TFDS dataset name, e.g. `"fashion_mnist"` or `"mnist"`.
        data_dir: TFDS data folder, or `None` for TFDS' default.
        idx_dir: folder with IDX files for the local builder, or `None`.

    Returns:
        A prepared `tfds.core.DatasetBuilder`.

    Raises:
        DataFileError: local IDX files are present but unreadable.
        DataUnavailableError: the dataset cannot be prepared from here.
    """
    config = idx_config(name)
    if config is not None:
        builder = IdxImages(config=name, data_dir=data_dir)
        source = idx_dir or config.default_dir
        if builder.is_prepared():
            return builder
        if source is not None and _has_idx_files(source):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=str(source))
            )
            return builder
        if idx_dir is not None:
            for split in ("train", "test"):
                find_split_files(idx_dir, split)  # raises, naming the missing file
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as error:
            hint = (
                f" For {name} offline, {config.install_hint}, or pass idx_dir= (--idx-dir)."
                if config is not None
                else ""
            )
            raise DataUnavailableError(
                f"Could not prepare the TFDS dataset {name!r}: {type(error).__name__}: "
                f"{error}. Without internet, TFDS can only use data already in its "
                f"data_dir ({builder.data_dir}).{hint}"
            ) from error
    return builder


def _has_idx_files(folder):
    try:
        for split in ("train", "test"):
            find_split_files(folder, split)
    except DataFileError:
        return False
    return True


class TFDSImages(ImageSource):
    """A TFDS image dataset by name: located and prepared once, then loaded by split.

    Args:
        name: a TFDS dataset name, see `dataset_builder`.
        data_dir: TFDS data folder, or `None` for TFDS' default.
        idx_dir: folder with IDX files for the local builder, or `None`.
    """

    def __init__(self, name="fashion_mnist", data_dir=None, idx_dir=None):
        self.name = name
        self.data_dir = data_dir
        self.idx_dir = idx_dir

    def __repr__(self):
        return f"TFDSImages({self.name!r})"

    @functools.cached_property
    def builder(self):
        """The prepared TFDS builder, see `dataset_builder`."""
        return dataset_builder(self.name, data_dir=self.data_dir, idx_dir=self.idx_dir)

    @property
    def class_names(self):
        return self.builder.info.features["label"].names

    @property
    def image_shape(self):
        return tuple(self.builder.info.features["image"].shape)

    def split_sizes(self):
        return {name: split.num_examples for name, split in self.builder.info.splits.items()}

    def read_split(self, name):
        return self.read(name)

    def read(self, split):
        self._absolute(split)  # a clear error for a split the dataset lacks
        arrays = tfds.as_numpy(self.builder.as_dataset(split=split, batch_size=-1))
        return arrays["image"], arrays["label"]

    def stream(self, split):
        dataset = self.builder.as_dataset(split=split, shuffle_files=False)
        return dataset.map(lambda example: (example["image"], example["label"]))
