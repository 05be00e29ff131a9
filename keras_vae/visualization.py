"""Image grids as PNG files."""

import numpy as np
import tensorflow as tf

from keras_vae.files import write_bytes_atomically


def image_grid(images, columns, padding=2):
    """Tiles images into one picture, row by row.

    Args:
        images: array of shape `(n, H, W, C)` with values in [0, 1].
        columns: images per row.
        padding: pixels of white between images.

    Returns:
        A `uint8` array of shape `(rows * (H + padding) + padding,
        columns * (W + padding) + padding, C)`.
    """
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    if images.ndim != 4:
        raise ValueError(f"Expected images of shape (n, H, W, C). Received: {images.shape}")
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    grid = np.ones(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        dtype="float32",
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return np.round(grid * 255.0).astype("uint8")


def write_png(path, images, columns):
    """Writes a grid of images as a PNG file.

    Args:
        path: destination file.
        images: array of shape `(n, H, W, C)` with values in [0, 1].
        columns: images per row.
    """
    grid = image_grid(images, columns)
    write_bytes_atomically(path, tf.io.encode_png(grid).numpy())
