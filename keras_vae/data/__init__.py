"""Image data: named datasets, folders of images and arrays, as seeded `tf.data` pipelines."""

from keras_vae.data.array_images import ArrayImages
from keras_vae.data.datasets import image_source, load_images, prepare
from keras_vae.data.idx import DataFileError, read_idx, read_idx_pair
from keras_vae.data.idx_builder import IdxImages
from keras_vae.data.image_folder import FolderImages
from keras_vae.data.npm_packages import PackageError
from keras_vae.data.source import ImageSource
from keras_vae.data.tfds_images import DataUnavailableError, TFDSImages, dataset_builder

__all__ = [
    "ArrayImages",
    "DataFileError",
    "DataUnavailableError",
    "FolderImages",
    "IdxImages",
    "ImageSource",
    "PackageError",
    "TFDSImages",
    "dataset_builder",
    "image_source",
    "load_images",
    "prepare",
    "read_idx",
    "read_idx_pair",
]
