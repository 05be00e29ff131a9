"""Matplotlib figures: the latent space coloured by class, and loss curves."""

import io

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_vae.files import write_bytes_atomically  # noqa: E402


def project_to_2d(points):
    """Projects points to 2-D: as they are when 2-D, else onto their first two principal axes.

    Args:
        points: array `(n, d)` with `d >= 2`.

    Returns:
        A tuple `(projected (n, 2), explained)`, `explained` being the share of the
        variance the two axes keep (1.0 for 2-D input).
    """
    points = np.asarray(points, dtype="float64")
    if points.shape[1] == 2:
        return points, 1.0
    centred = points - points.mean(axis=0)
    _, singular_values, axes = np.linalg.svd(centred, full_matrices=False)
    variance = singular_values**2
    return centred @ axes[:2].T, float(variance[:2].sum() / variance.sum())


def _save(figure, path):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    write_bytes_atomically(path, buffer.getvalue())


def plot_latent_space(means, labels, class_names, path, title="Latent space of the test set"):
    """Scatter plot of posterior means, coloured by class.

    Args:
        means: array `(n, latent_dim)` of posterior means.
        labels: integer array `(n,)`.
        class_names: names of the classes, indexed by label; empty for
            unlabelled data (one colour, no legend).
        path: destination PNG file.
        title: figure title.
    """
    points, explained = project_to_2d(means)
    figure, axes = plt.subplots(figsize=(7, 6))
    colours = plt.get_cmap("tab10")
    if not class_names:
        axes.scatter(*points.T, s=3, alpha=0.6, color=colours(0))
    for label, name in enumerate(class_names):
        chosen = labels == label
        axes.scatter(*points[chosen].T, s=3, alpha=0.6, color=colours(label % 10), label=name)
    if means.shape[1] == 2:
        axes.set_xlabel("z[0]")
        axes.set_ylabel("z[1]")
    else:
        axes.set_xlabel("principal axis 1")
        axes.set_ylabel("principal axis 2")
        title += f" (PCA of {means.shape[1]} dimensions, {explained:.0%} of the variance)"
    axes.set_title(title, fontsize=10)
    if class_names:
        axes.legend(markerscale=4, fontsize=8, loc="best")
    _save(figure, path)


def plot_loss_curves(history, path):
    """Plots training and validation losses per epoch, one panel per loss.

    Args:
        history: dict of metric name → list of per-epoch values, as in Keras'
            `History.history` (`val_` prefixed names are validation).
        path: destination PNG file.
    """
    names = [name for name in ("loss", "reconstruction_loss", "kl_loss") if name in history]
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="test")
        axis.set_title(f"{name} (nats per example)", fontsize=10)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=8)
    _save(figure, path)
