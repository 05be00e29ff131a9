"""Image datasets as `tf.data` pipelines, through tensorflow-datasets."""

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_vae.data.idx import DataFileError
from keras_vae.data.idx_builder import IdxImages, find_split_files


class DataUnavailableError(RuntimeError):
    """A dataset is neither prepared nor obtainable from here."""


def idx_config(name):
    """Returns the `IdxConfig` of a dataset the local IDX builder knows, else `None`."""
    return next((c for c in IdxImages.BUILDER_CONFIGS if c.name == name), None)


def dataset_builder(name, data_dir=None, source_dir=None):
    """Returns a prepared TFDS builder for `name`, preparing it if needed.

    Names the local IDX builder knows (`fashion_mnist`, `mnist`) are prepared
    from IDX files in `source_dir` (default: the config's `default_dir`) when
    those files exist; anything else goes through TFDS' own builder, which may
    download.

    Args:
        name: a TFDS dataset name, e.g. `"fashion_mnist"` or `"mnist"`.
        data_dir: TFDS data folder, or `None` for TFDS' default.
        source_dir: folder with IDX files for the local builder, or `None`.

    Returns:
        A prepared `tfds.core.DatasetBuilder`.

    Raises:
        DataFileError: local IDX files are present but unreadable.
        DataUnavailableError: the dataset cannot be prepared from here.
    """
    config = idx_config(name)
    if config is not None:
        builder = IdxImages(config=name, data_dir=data_dir)
        source = source_dir or config.default_dir
        if builder.is_prepared():
            return builder
        if source is not None and _has_idx_files(source):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=str(source))
            )
            return builder
        if source_dir is not None:
            find_split_files(source_dir, "train")  # raises, naming the missing file
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as error:
            hint = (
                f" For {name} offline, {config.install_hint}, or pass source_dir= (--idx-dir)."
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


def load_images(
    name="fashion_mnist",
    split="train",
    batch_size=128,
    binarize=False,
    shuffle=False,
    seed=None,
    drop_remainder=False,
    with_labels=False,
    max_examples=None,
    in_memory=True,
    data_dir=None,
    source_dir=None,
):
    """Loads an image dataset as a batched `tf.data.Dataset` of floats in [0, 1].

    The pipeline holds the decoded images in memory (or streams them from the
    TFDS files with `in_memory=False`), shuffles (reshuffling every epoch),
    batches, scales to [0, 1], optionally binarises dynamically (each pixel is
    redrawn as Bernoulli(intensity) every time it is seen) and prefetches.
    With a `seed`, shuffling and binarisation repeat from run to run.

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
        data_dir: TFDS data folder, or `None` for TFDS' default.
        source_dir: folder with IDX files for the local builder, or `None`.

    Returns:
        A `tf.data.Dataset` of `float32` images `(batch, H, W, C)`, or of
        `(images, int64 labels)` pairs.
    """
    builder = dataset_builder(name, data_dir=data_dir, source_dir=source_dir)
    if in_memory:
        # The decoded split as arrays. tf.data's cache() is not used: an iterator
        # abandoned part-way (e.g. `next(iter(dataset))`) could leave it holding
        # a truncated copy that later epochs then read as the whole split.
        arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        images, labels = arrays["image"][:max_examples], arrays["label"][:max_examples]
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    else:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        dataset = dataset.map(lambda example: (example["image"], example["label"]))
        if max_examples is not None:
            dataset = dataset.take(max_examples)
    if shuffle:
        examples = int(dataset.cardinality())
        if examples < 0:
            examples = builder.info.splits[split].num_examples
        dataset = dataset.shuffle(examples, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(_scale, num_parallel_calls=tf.data.AUTOTUNE)
    if binarize:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            _binarize, num_parallel_calls=tf.data.AUTOTUNE
        )
    if not with_labels:
        dataset = dataset.map(lambda images, labels: images)
    options = tf.data.Options()
    # Under multi-worker training every worker builds this same pipeline (same
    # seed, same order) and keeps its share of each global batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _scale(images, labels):
    return tf.cast(images, tf.float32) / 255.0, labels


def _binarize(batch, seed):
    images, labels = batch
    noise = tf.random.stateless_uniform(tf.shape(images), seed=seed)
    return tf.cast(noise < images, tf.float32), labels
