"""Image data: IDX files, a TFDS builder for them, and `tf.data` pipelines."""

from keras_vae.data.idx import DataFileError, read_idx, read_idx_pair
from keras_vae.data.idx_builder import IdxImages
from keras_vae.data.pipeline import (
    DataUnavailableError,
    dataset_builder,
    load_images,
    split_examples,
)

__all__ = [
    "DataFileError",
    "DataUnavailableError",
    "IdxImages",
    "dataset_builder",
    "load_images",
    "split_examples",
    "read_idx",
    "read_idx_pair",
]
