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


@pytest.fixture(scope="session")
def small_trained_vae():
    """A small conv VAE for 12x12x1 images, trained briefly on two noisy prototypes."""
    import keras
    import numpy as np

    import keras_vae
    from keras_vae import architectures

    keras.utils.set_random_seed(0)
    shape = (12, 12, 1)
    vae = keras_vae.VAE(
        architectures.conv_encoder(shape, 3, filters=(4, 8), hidden_units=(16,)),
        architectures.conv_decoder(shape, 3, filters=(8, 4), start_channels=8),
        seed=0,
    )
    rng = np.random.default_rng(0)
    prototypes = rng.random((2,) + shape) > 0.5
    images = (prototypes[rng.integers(0, 2, 256)] ^ (rng.random((256,) + shape) < 0.05)).astype(
        "float32"
    )
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(images, epochs=3, batch_size=32, verbose=0)
    return vae, images


@pytest.fixture(scope="session")
def exported_bundle(small_trained_vae, tmp_path_factory):
    """The small trained VAE exported with both smaller variants."""
    from keras_vae.export import export_bundle

    vae, images = small_trained_vae
    directory = tmp_path_factory.mktemp("exported") / "small"
    manifest = export_bundle(
        vae, directory, images[:32], variants=("float16", "int8"), metadata={"dataset": "toy"}
    )
    return directory, manifest
