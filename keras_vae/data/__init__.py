"""Image data: IDX files, a TFDS builder for them, and `tf.data` pipelines."""

from keras_vae.data.idx import DataFileError, read_idx, read_idx_pair
from keras_vae.data.idx_builder import IdxImages
from keras_vae.data.pipeline import (
    DataUnavailableError,
    ImageSource,
    dataset_builder,
    load_images,
)

__all__ = [
    "DataFileError",
    "DataUnavailableError",
    "IdxImages",
    "ImageSource",
    "dataset_builder",
    "load_images",
    "read_idx",
    "read_idx_pair",
]
