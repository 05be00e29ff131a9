"""Pictures of images: grids as PNG files, latent manifolds, animated GIFs."""

import io
import statistics

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


def latent_manifold(model, points=15):
    """Decodes a regular grid of the 2-D latent space, spaced by the prior's quantiles.

    Args:
        model: a `VAE` with `latent_dim == 2`.
        points: grid points per axis.

    Returns:
        Array `(points * points, H, W, C)`, rows of increasing z[1] from the top,
        columns of increasing z[0].
    """
    if model.latent_dim != 2:
        raise ValueError(
            f"The latent manifold is drawn for 2 latent dimensions. Received: {model.latent_dim}"
        )
    normal = statistics.NormalDist()
    axis = np.array([normal.inv_cdf(q) for q in np.linspace(0.05, 0.95, points)], "float32")
    grid = np.stack(np.meshgrid(axis, axis[::-1]), axis=-1).reshape(-1, 2)
    return model.decode(grid)


def write_gif(path, panels, scale=4, frame_ms=120, padding=8):
    """Writes an animated GIF that plays image sequences side by side, there and back.

    Args:
        path: destination file.
        panels: dict of label → array `(steps, H, W, C)` in [0, 1]; all the same shape.
        scale: integer upscaling of each image.
        frame_ms: duration of one frame in milliseconds.
        padding: pixels between panels and around the labels.
    """
    from PIL import Image, ImageDraw

    labels = list(panels)
    sequences = [np.clip(np.asarray(panels[label], "float32"), 0, 1) for label in labels]
    steps, height, width, channels = sequences[0].shape
    panel_w, panel_h = width * scale, height * scale
    label_h = 14
    canvas = (
        len(labels) * (panel_w + padding) + padding,
        panel_h + label_h + 2 * padding,
    )
    frames = []
    for step in [*range(steps), *range(steps - 2, 0, -1)]:
        frame = Image.new("RGB", canvas, "white")
        draw = ImageDraw.Draw(frame)
        for index, (label, sequence) in enumerate(zip(labels, sequences, strict=True)):
            left = padding + index * (panel_w + padding)
            draw.text((left, padding // 2), label, fill="black")
            pixels = np.round(sequence[step] * 255).astype("uint8")
            image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
            image = image.convert("RGB").resize((panel_w, panel_h), Image.NEAREST)
            frame.paste(image, (left, label_h + padding))
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
    )
    write_bytes_atomically(path, buffer.getvalue())
