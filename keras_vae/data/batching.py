"""The seeded batching every image source shares: shuffling, binarising, sharding.

Every batch's randomness is a function of `(seed, epoch, batch index)` alone,
so runs repeat, resume and shard exactly.
"""

import tensorflow as tf

# The stream of stateless seeds that binarises the examples of an unshuffled
# split; shuffled epochs use their epoch number (0, 1, ...) instead.
_FIXED_SET_STREAM = -2


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


def _batch_seed(seed, epoch, index):
    """A stateless seed for one batch: a function of (seed, epoch, batch index) alone."""
    base = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


def endless_epochs(
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


def shuffled_batches(dataset, examples, batch_size, seed, drop_remainder, binarize):
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


def fixed_batches(dataset, batch_size, seed, binarize, drop_remainder):
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
