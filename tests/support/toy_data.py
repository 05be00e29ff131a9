"""Small data for tests: noisy binary prototypes, and MNIST-format IDX files of them."""

import gzip

import numpy as np


def prototype_images(n, shape=(12, 12, 1), seed=0, flip_probability=0.05):
    """Noisy copies of two binary prototypes: data a VAE learns from in a few steps.

    The two prototypes depend on `shape` alone, so splits drawn with different
    seeds share them; `seed` draws which prototype each example copies and the
    pixels it flips.

    Returns:
        A float32 array `(n,) + shape` of zeros and ones.
    """
    prototypes = np.random.default_rng(0).random((2,) + shape) > 0.5
    rng = np.random.default_rng(seed)
    copies = prototypes[rng.integers(0, 2, n)]
    return (copies ^ (rng.random((n,) + shape) < flip_probability)).astype("float32")


def prototype_split(n, seed):
    """A split of 28x28 prototype images as IDX arrays: uint8 images and labels."""
    images = prototype_images(n, (28, 28), seed)
    labels = np.random.default_rng(seed + 1000).integers(0, 10, n)
    return (images * 255).astype(np.uint8), labels.astype(np.uint8)


def random_split(n, seed):
    """A split of random 28x28 uint8 images whose pixel (0, 0) is the example's index."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)  # a key to match examples after TFDS' shuffle
    return images, rng.integers(0, 10, n).astype(np.uint8)


def idx_bytes(array):
    """An array of unsigned bytes in the IDX format."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx_dataset(folder, train, test, compress=True):
    """Writes (images, labels) pairs as the four MNIST-format IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder
