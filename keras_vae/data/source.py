"""`ImageSource`: a dataset's splits as 8-bit images with labels, loaded by split."""

import types

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_vae.data import batching


class ImageSource:
    """An image dataset: named splits of 8-bit images with integer labels.

    Subclasses say what the splits hold (`split_sizes`, `read_split`,
    `class_names`); loading is the same for all. Splits are named in TFDS'
    split syntax: `"train"`, `"test"`, `"train[:5000]"`, `"train[90%:]"`.
    """

    @property
    def class_names(self) -> list:
        """The names of the labels 0..n-1; empty for unlabelled images."""
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple:
        """`(height, width, channels)` of every image."""
        raise NotImplementedError

    def split_sizes(self) -> dict:
        """Examples per whole split, by split name."""
        raise NotImplementedError

    def read_split(self, name):
        """A whole split as `(uint8 images (n, H, W, C), int64 labels (n,))`."""
        raise NotImplementedError

    def read(self, split):
        """The examples of a split in TFDS' split syntax, as `read_split` gives them."""
        (instruction,) = self._absolute(split)
        images, labels = self.read_split(instruction.splitname)
        part = slice(instruction.from_, instruction.to)
        return images[part], labels[part]

    def stream(self, split):
        """The examples of a split as an unbatched `tf.data.Dataset` of `(image, label)`."""
        return tf.data.Dataset.from_tensor_slices(self.read(split))

    def num_examples(self, split, max_examples=None):
        """How many examples `load` takes from a split with `max_examples`."""
        (instruction,) = self._absolute(split)
        size = self.split_sizes()[instruction.splitname]
        examples = len(range(size)[instruction.from_ : instruction.to])
        return examples if max_examples is None else min(examples, max_examples)

    def _absolute(self, split):
        infos = {
            name: types.SimpleNamespace(num_examples=size)
            for name, size in self.split_sizes().items()
        }
        try:
            instructions = tfds.core.ReadInstruction.from_spec(split).to_absolute(infos)
        except (ValueError, AssertionError) as error:
            raise ValueError(
                f"Expected a split of {sorted(infos)} in TFDS' split syntax, e.g. "
                f"'train' or 'train[:1000]'. Received: {split!r} ({error})"
            ) from None
        if len(instructions) != 1:
            raise ValueError(f"Expected one split, not a union. Received: {split!r}")
        return instructions

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
        parts = [(x.numpy(), y.numpy()) for x, y in batches]
        if not parts:
            return np.zeros((0, *self.image_shape), "float32"), np.zeros((0,), "int64")
        images, labels = zip(*parts, strict=True)
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
            images, labels = self.read(split)
            images, labels = images[:max_examples], labels[:max_examples]
        if start_epoch is not None:
            batches = batching.endless_epochs(
                images, labels, batch_size, shuffle, seed, start_epoch, drop_remainder, binarize
            )
        else:
            if in_memory:
                dataset = tf.data.Dataset.from_tensor_slices((images, labels))
            else:
                dataset = self.stream(split)
                if max_examples is not None:
                    dataset = dataset.take(max_examples)
            if shuffle:
                examples = self.num_examples(split, max_examples)
                batches = batching.shuffled_batches(
                    dataset, examples, batch_size, seed, drop_remainder, binarize
                )
            else:
                batches = batching.fixed_batches(dataset, batch_size, seed, binarize,
                                                 drop_remainder)  # fmt: skip
        if not with_labels:
            batches = batches.map(lambda images, labels: images)
        return batching.shard_by_data(batches).prefetch(tf.data.AUTOTUNE)
