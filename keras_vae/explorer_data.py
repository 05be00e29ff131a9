"""What the browser explorer (examples/web) reads beside a bundle's networks.

A few test images with their posterior means, for picking and interpolating,
and a plane through the latent space to move in: the latent plane itself for a
2-D model, else the plane of the first two principal directions of test codes.
Images are stored as 8-bit pixels, and the codes are those of the stored
pixels, so a browser that encodes them finds the same codes.
"""

import base64

import numpy as np


def explorer_data(model, images, labels=None, class_names=None, plane_images=None):
    """The explorer's data for `model`, as a JSON-ready dict.

    Args:
        model: a `keras_vae.VAE` or `keras_vae.Autoencoder`.
        images: array `(n, H, W, C)` in [0, 1]: the test images to ship (a few dozen).
        labels: `None`, or `n` integer class labels.
        class_names: `None`, or the names of the classes.
        plane_images: array of images whose posterior means define the plane's
            principal directions, or `None` to use `images`.

    Returns:
        A dict: `count`, `shape`, `pixels` (base64 of uint8, row-major),
        `labels`, `class_names`, `codes` (posterior means) and `plane`
        (`center`, two unit `directions` and the codes' standard deviation
        along each, `scales`).
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or images.shape[1:] != model.image_shape or len(images) == 0:
        raise ValueError(
            f"Expected explorer images of shape (n, {', '.join(map(str, model.image_shape))}), "
            f"n > 0. Received: {images.shape}."
        )
    if labels is not None and len(labels) != len(images):
        raise ValueError(
            f"Expected one label per image ({len(images)}). Received: {len(labels)} labels."
        )
    pixels = np.round(np.clip(images, 0.0, 1.0) * 255).astype("uint8")
    codes, _ = model.encode(pixels.astype("float32") / 255)
    plane_codes = codes if plane_images is None else model.encode(plane_images)[0]
    return {
        "count": len(images),
        "shape": list(model.image_shape),
        "pixels": base64.b64encode(pixels.tobytes()).decode("ascii"),
        "labels": None if labels is None else [int(label) for label in labels],
        "class_names": None if class_names is None else list(class_names),
        "codes": codes.astype("float64").round(6).tolist(),
        "plane": latent_plane(plane_codes),
    }


def latent_plane(codes):
    """The plane to explore: its center, two orthonormal directions and their scales.

    Args:
        codes: array `(m, latent_dim)` of posterior means, `latent_dim >= 2`.

    Returns:
        A dict with `center` (the codes' mean; zero for a 2-D model), `directions`
        (the latent axes for a 2-D model, else the first two principal
        directions) and `scales` (the codes' standard deviation along each).
    """
    codes = np.asarray(codes, dtype="float64")
    latent_dim = codes.shape[1]
    if latent_dim < 2:
        return None
    if latent_dim == 2:
        center, directions = np.zeros(2), np.eye(2)
    else:
        center = codes.mean(axis=0)
        _, _, rows = np.linalg.svd(codes - center, full_matrices=False)
        directions = rows[:2]
    projected = (codes - center) @ directions.T
    scales = np.maximum(projected.std(axis=0), 1e-6) if len(codes) > 1 else np.ones(2)
    return {
        "center": center.round(6).tolist(),
        "directions": directions.round(6).tolist(),
        "scales": scales.round(6).tolist(),
    }
