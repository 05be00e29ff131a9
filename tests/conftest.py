"""Test set-up: two logical CPU devices, so multi-replica code runs on any machine."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


def pytest_configure(config):
    """Splits the CPU in two logical devices in each process that runs tests."""
    if config.getoption("numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        return  # pytest-xdist's controller runs no test, and so loads no TensorFlow.
    import tensorflow as tf

    # Must happen before TensorFlow initialises its devices.
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
    )


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# What a test costs, from the fixtures it uses (directly or through others); a
# test that costs in another way carries its mark itself. Plain `pytest` leaves
# these tests out (pyproject.toml); `pytest -m ""`, as `make test` runs it, runs all.
FIXTURE_COSTS = {
    "fashion_mnist_data_dir": "real_data",
    "inference_venv": "venv",
    "keras_vae_venv": "venv",
    "triton_python": "triton",
    "browser": "browser",
    "node": "node",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Marks each test with the costs of the fixtures it uses, before `-m` selects."""
    for item in items:
        for fixture, cost in FIXTURE_COSTS.items():
            if fixture in item.fixturenames:
                item.add_marker(cost)


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
def toy_idx_data(tmp_path_factory):
    """Prototype images as a prepared `mnist` dataset: RunConfig fields that use it."""
    from keras_vae.data import dataset_builder
    from tests.support.toy_data import prototype_split, write_idx_dataset

    folder = tmp_path_factory.mktemp("toy")
    source = write_idx_dataset(folder / "idx", prototype_split(1024, 0), prototype_split(64, 1))
    dataset_builder("mnist", data_dir=str(folder / "tfds"), idx_dir=str(source))
    return {"dataset": "mnist", "idx_dir": str(source), "data_dir": str(folder / "tfds")}


@pytest.fixture(scope="session")
def small_trained_vae():
    """A small conv VAE for 12x12x1 images, trained briefly on two noisy prototypes.

    Its third blocks work on 2x2 maps, so exports hold convolutions computed as
    one matrix product beside stock ones."""
    import keras

    import keras_vae
    from keras_vae import architectures
    from tests.support.toy_data import prototype_images

    keras.utils.set_random_seed(0)
    shape = (12, 12, 1)
    vae = keras_vae.VAE(
        architectures.conv_encoder(shape, 3, filters=(4, 8, 8), hidden_units=(16,)),
        architectures.conv_decoder(shape, 3, filters=(8, 8, 4), start_channels=8),
        seed=0,
    )
    images = prototype_images(256, shape)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(images, epochs=3, batch_size=32, verbose=0)
    return vae, images


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, fashion_mnist_data_dir):
    """The default VAE trained briefly on real Fashion-MNIST: (run folder, summary)."""
    from keras_vae.run_config import RunConfig
    from pipelines.train import train

    config = RunConfig(
        epochs=2, max_train_examples=6400, max_test_examples=1000, data_dir=fashion_mnist_data_dir
    )
    run_dir = tmp_path_factory.mktemp("runs") / "vae"
    return run_dir, train(config, run_dir, verbose=0)


@pytest.fixture(scope="session")
def real_bundle(real_run, tmp_path_factory):
    """The real run exported with the float16 variant: (bundle folder, manifest)."""
    from pipelines.export import export_run

    run_dir, _ = real_run
    directory = tmp_path_factory.mktemp("exported") / "real"
    return directory, export_run(run_dir, directory, variants=["float16"])


@pytest.fixture(scope="session")
def exported_bundle(small_trained_vae, tmp_path_factory):
    """The small trained VAE exported with both smaller variants."""
    from keras_vae.export import export_bundle

    vae, images = small_trained_vae
    directory = tmp_path_factory.mktemp("exported") / "small"
    manifest = export_bundle(
        vae, directory, images[:32], variants=("float16",), metadata={"dataset": "toy"}
    )
    return directory, manifest


@pytest.fixture(scope="session")
def conditional_bundle(tmp_path_factory):
    """A small conditional VAE of three classes, exported."""
    import keras
    import numpy as np

    from keras_vae import ConditionalVAE, architectures
    from keras_vae.export import export_bundle
    from tests.support.toy_data import prototype_images

    keras.utils.set_random_seed(0)
    shape = (12, 12, 1)
    networks = architectures.conditional_networks(
        "conv", shape, 2, 3,
        encoder={"filters": (4, 8), "hidden_units": (16,)},
        decoder={"filters": (8, 4), "start_channels": 8},
    )  # fmt: skip
    images = prototype_images(16, shape)
    directory = tmp_path_factory.mktemp("exported") / "conditional"
    cvae = ConditionalVAE(*networks, num_classes=3, seed=0)
    return directory, export_bundle(cvae, directory, images, test_labels=np.arange(16) % 3)


@pytest.fixture(scope="session")
def two_level_bundle(tmp_path_factory):
    """A small two-level VAE for 8x8x1 images, trained briefly, and its bundle.

    Returns:
        `(directory, manifest, model, images)`.
    """
    import keras

    import keras_vae
    from keras_vae import architectures
    from keras_vae.export import export_bundle
    from tests.support.toy_data import prototype_images

    keras.utils.set_random_seed(0)
    shape = (8, 8, 1)
    hvae = keras_vae.HierarchicalVAE(
        architectures.mlp_encoder(shape, 4, hidden_units=(32,)),
        architectures.mlp_decoder(shape, 4, hidden_units=(32,)),
        architectures.mlp_gaussian(4, 2, hidden_units=(16,), name="top_encoder"),
        architectures.mlp_gaussian(2, 4, hidden_units=(16,), name="top_decoder"),
        seed=0,
    )
    images = prototype_images(256, shape)
    hvae.compile(optimizer=keras.optimizers.Adam(3e-3))
    hvae.fit(images, epochs=3, batch_size=32, verbose=0)
    directory = tmp_path_factory.mktemp("exported") / "two_level"
    manifest = export_bundle(hvae, directory, images[:32], metadata={"dataset": "toy"})
    return directory, manifest, hvae, images


PIP_QUIET = ("--quiet", "--disable-pip-version-check")
# Byte-compiling every dependency's thousands of modules is a large share of an
# install; they compile as they are imported instead.
PIP_INSTALL = ("install", *PIP_QUIET, "--no-compile")


ROOT = Path(__file__).resolve().parent.parent


def build_wheel(source, folder):
    """The wheel of the project at `source`, built alone (`pip wheel --no-deps`) into `folder`.

    It is built from a copy of the files git would commit there, as from a clean
    clone: a `build/` folder that an earlier build left in the checkout would
    otherwise slip modules removed since into the wheel. The test environment's
    setuptools builds it (the dev extra asks for the version build-system
    does; no isolated build environment to install: a third of the time);
    `make install` builds the project in isolation.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source, capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")  # fmt: skip
    copy = Path(folder) / "source"
    for name in filter(None, listed):
        if (Path(source) / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(source) / name, copy / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *PIP_QUIET, "--no-deps", "--no-build-isolation",
         str(copy), "--wheel-dir", str(folder)],
        check=True, timeout=600,
    )  # fmt: skip
    (wheel,) = Path(folder).glob("*.whl")
    return wheel


def fresh_venv(folder, *requirements, timeout=600):
    """A fresh virtual environment in `folder` with `requirements` installed; its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    bin_folder = Path(folder) / "bin"
    subprocess.run([bin_folder / "pip", *PIP_INSTALL, *map(str, requirements)], check=True,
                   timeout=timeout)  # fmt: skip
    return bin_folder


@pytest.fixture(scope="session")
def keras_vae_wheel(tmp_path_factory):
    """The keras-vae wheel, built from this checkout."""
    return build_wheel(ROOT, tmp_path_factory.mktemp("keras-vae-wheel"))


@pytest.fixture(scope="session")
def inference_wheel(tmp_path_factory):
    """The keras-vae-inference wheel, built from inference/."""
    return build_wheel(ROOT / "inference", tmp_path_factory.mktemp("inference-wheel"))


@pytest.fixture(scope="session")
def inference_venv(inference_wheel, tmp_path_factory):
    """The keras-vae-inference wheel installed alone into a fresh virtual environment:
    the environment's python."""
    return fresh_venv(tmp_path_factory.mktemp("inference-venv"), inference_wheel) / "python"


@pytest.fixture(scope="session")
def keras_vae_venv(keras_vae_wheel, tmp_path_factory):
    """The keras-vae wheel installed with its dependencies into a fresh virtual
    environment: the environment's bin folder."""
    folder = tmp_path_factory.mktemp("keras-vae-venv")
    return fresh_venv(folder, keras_vae_wheel, timeout=1200)


@pytest.fixture(scope="session")
def serving_venv(inference_venv, inference_wheel):
    """The inference environment with the `serve` extra and Triton's client added:
    the environment's python."""
    subprocess.run(
        [inference_venv, "-m", "pip", *PIP_INSTALL, f"{inference_wheel}[serve]",
         "tritonclient[http,grpc]"],
        check=True, timeout=900,
    )  # fmt: skip
    return inference_venv
