"""Image datasets as `tf.data` pipelines, through tensorflow-datasets."""

import functools

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_vae.data.idx import DataFileError
from keras_vae.data.idx_builder import IdxImages, find_split_files

# The stream of stateless seeds that binarises the examples of an unshuffled
# split; shuffled epochs use their epoch number (0, 1, ...) instead.
_FIXED_SET_STREAM = -2


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


class ImageSource:
    """An image dataset by name: located and prepared once, then loaded by split.

    Args:
        name: a TFDS dataset name, see `dataset_builder`.
        data_dir: TFDS data folder, or `None` for TFDS' default.
        idx_dir: folder with IDX files for the local builder, or `None`.
    """

    def __init__(self, name="fashion_mnist", data_dir=None, idx_dir=None):
        self.name = name
        self.data_dir = data_dir
        self.idx_dir = idx_dir

    @functools.cached_property
    def builder(self):
        """The prepared TFDS builder, see `dataset_builder`."""
        return dataset_builder(self.name, data_dir=self.data_dir, idx_dir=self.idx_dir)

    @property
    def class_names(self):
        """The names of the labels 0..n-1."""
        return self.builder.info.features["label"].names

    def num_examples(self, split, max_examples=None):
        """How many examples `load` takes from a split with `max_examples`."""
        examples = self.builder.info.splits[split].num_examples
        return examples if max_examples is None else min(examples, max_examples)

    def arrays(self, split, binarize=False, seed=None, max_examples=None):
        """A split as NumPy arrays, preprocessed once: a fixed evaluation set.

        Each example is binarised from `(seed, its index in the split)` alone,
        so the images are the same whatever else is loaded, and the first `n`
        examples are the same for any `max_examples >= n`.

        Returns:
            A tuple `(images, labels)`: float32 `(n, H, W, C)` in [0, 1], int64 `(n,)`.
        """
        batches = self.load(
            split, batch_size=1000, binarize=binarize, seed=seed, with_labels=True,
            max_examples=max_examples,
        )  # fmt: skip
        images, labels = zip(*((x.numpy(), y.numpy()) for x, y in batches), strict=True)
        return np.concatenate(images), np.concatenate(labels)

    def load(
        self,
        split="train",
        batch_size=128,
        binarize=False,
        shuffle=False,
        seed=None,
        drop_remainder=False,
        with_labels=False,
        max_examples=None,
        in_memory=True,
        start_epoch=None,
    ):
        """Loads a split as a batched `tf.data.Dataset`; see `load_images`."""
        if start_epoch is not None and not in_memory:
            raise ValueError("An endless dataset (start_epoch=...) needs in_memory=True.")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**31)
        if in_memory:
            # The decoded split as arrays. tf.data's cache() is not used: an iterator
            # abandoned part-way (e.g. `next(iter(dataset))`) could leave it holding
            # a truncated copy that later epochs then read as the whole split.
            arrays = tfds.as_numpy(self.builder.as_dataset(split=split, batch_size=-1))
            images, labels = arrays["image"][:max_examples], arrays["label"][:max_examples]
        if start_epoch is not None:
            batches = _endless_epochs(
                images, labels, batch_size, shuffle, seed, start_epoch, drop_remainder, binarize
            )
        else:
            if in_memory:
                dataset = tf.data.Dataset.from_tensor_slices((images, labels))
            else:
                dataset = self.builder.as_dataset(split=split, shuffle_files=False)
                dataset = dataset.map(lambda example: (example["image"], example["label"]))
                if max_examples is not None:
                    dataset = dataset.take(max_examples)
            if shuffle:
                examples = self.num_examples(split, max_examples)
                batches = _shuffled_batches(
                    dataset, examples, batch_size, seed, drop_remainder, binarize
                )
            else:
                batches = _fixed_batches(dataset, batch_size, seed, binarize, drop_remainder)
        if not with_labels:
            batches = batches.map(lambda images, labels: images)
        return shard_by_data(batches).prefetch(tf.data.AUTOTUNE)


def shard_by_data(dataset):
    """Marks a dataset to be sharded by data under `tf.distribute`.

    Under multi-worker training every worker builds the same pipeline (same
    seed, same order) and keeps its share of each global batch.

    Args:
        dataset: a batched `tf.data.Dataset`.

    Returns:
        The dataset with that option.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def load_images(
    name: str = "fashion_mnist",
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
        name: a TFDS dataset name, see `dataset_builder`.
        split: a TFDS split, e.g. `"train"`, `"test"`, `"train[:10%]"`.
        batch_size: examples per batch.
        binarize: whether to binarise dynamically.
        shuffle: whether to shuffle the examples.
        seed: int or `None`, seed of shuffling and binarisation.
        drop_remainder: whether to drop a last, smaller batch.
        with_labels: whether to yield `(images, labels)` instead of images.
        max_examples: keep only the first examples of the split, or `None`.
        in_memory: whether to load the split into memory once (small data sets
            such as MNIST); otherwise examples are read from disk every epoch.
        start_epoch: `None`, or the first epoch of an endless dataset.
        data_dir: TFDS data folder, or `None` for TFDS' default.
        idx_dir: folder with IDX files for the local builder, or `None`.

    Returns:
        A `tf.data.Dataset` of `float32` images `(batch, H, W, C)`, or of
        `(images, int64 labels)` pairs.
    """
    source = ImageSource(name, data_dir=data_dir, idx_dir=idx_dir)
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


def _batch_seed(seed, epoch, index):
    """A stateless seed for one batch: a function of (seed, epoch, batch index) alone."""
    base = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


def _endless_epochs(
    images, labels, batch_size, shuffle, seed, start_epoch, drop_remainder, binarize
):
    """Batches `(images, labels)` of epoch after epoch from `start_epoch`."""
    images, labels = tf.constant(images), tf.constant(labels)
    count = int(images.shape[0])

    def epoch_batches(epoch):
        order = tf.range(count, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=_batch_seed(seed, epoch, -1)
            )
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder)
        return batches.enumerate().map(
            lambda index, chosen: (
                tf.gather(images, chosen),
                tf.gather(labels, chosen),
                _batch_seed(seed, epoch, index),
            )
        )

    batches = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_batches)
    return _preprocess_batches(batches, binarize)


def _shuffled_batches(dataset, examples, batch_size, seed, drop_remainder, binarize):
    """Batches `(images, labels)`, reshuffled and rebinarised on every pass."""
    dataset = dataset.shuffle(examples, seed=seed, reshuffle_each_iteration=True)
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    batches = dataset.batch(batch_size, drop_remainder=drop_remainder)
    batches = tf.data.Dataset.zip(batches, batch_seeds).map(
        lambda batch, batch_seed: (*batch, batch_seed)
    )
    return _preprocess_batches(batches, binarize)


def _preprocess_batches(batches, binarize):
    """Preprocesses batches `(images, labels, seed)`, each batch with its own seed."""
    return batches.map(
        lambda images, labels, batch_seed: (_preprocess(images, batch_seed, binarize), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _fixed_batches(dataset, batch_size, seed, binarize, drop_remainder):
    """Batches `(images, labels)` in split order, each example binarised by its index."""

    def preprocess(index, example):
        image, label = example
        return _preprocess(image, _batch_seed(seed, _FIXED_SET_STREAM, index), binarize), label

    dataset = dataset.enumerate().map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def _preprocess(images, seed, binarize):
    """Scales to [0, 1] and, with `binarize`, draws each pixel as Bernoulli(intensity)."""
    images = tf.cast(images, tf.float32) / 255.0
    if binarize:
        noise = tf.random.stateless_uniform(tf.shape(images), seed=seed)
        images = tf.cast(noise < images, tf.float32)
    return images
