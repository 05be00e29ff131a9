"""Test set-up: two logical CPU devices, so multi-replica code runs on any machine."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Must happen before TensorFlow initialises its devices.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="session")
def fashion_mnist_data_dir(tmp_path_factory):
    """A TFDS data folder with Fashion-MNIST prepared from Debian's IDX files."""
    if not os.path.isfile(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")):
        pytest.fail(
            f"Fashion-MNIST IDX files are missing from {FASHION_MNIST_DIR}: run `make test`, "
            "which installs Debian's package dataset-fashion-mnist."
        )
    from keras_vae.data import dataset_builder

    data_dir = tmp_path_factory.mktemp("tfds")
    dataset_builder("fashion_mnist", data_dir=str(data_dir))
    return str(data_dir)
