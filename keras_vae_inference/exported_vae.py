"""Running a bundle's decoder and encoder with onnxruntime."""

import os
from pathlib import Path

import numpy as np
import onnxruntime

from keras_vae_inference.bundle import BundleError, check_files, read_manifest


class ExportedVAE:
    """A VAE's exported decoder and encoder, run with onnxruntime.

    The manifest is read and the sha256 of each ONNX file checked before a
    session is created.

    Args:
        directory: the bundle folder (holding `manifest.json`).
        variant: `None` for the float32 decoder, or `"float16"` / `"int8"` when
            the bundle has that variant.
        threads: intra-op threads, or `None` for all cores.
    """

    def __init__(self, directory, variant=None, threads=None):
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        self.latent_dim = int(self.manifest["model"]["latent_dim"])
        self.image_shape = tuple(self.manifest["model"]["image_shape"])
        decoder_file = self.manifest["decoder"]["onnx"]
        if variant is not None:
            variants = self.manifest.get("variants", {})
            if variant not in variants:
                raise BundleError(
                    f"The bundle has no {variant!r} decoder. It has: {sorted(variants) or 'none'}."
                )
            decoder_file = variants[variant]["file"]
        encoder_file = self.manifest["encoder"]["onnx"]
        check_files(self.directory, self.manifest, [decoder_file, encoder_file])
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        providers = ["CPUExecutionProvider"]
        self._decoder = onnxruntime.InferenceSession(
            str(self.directory / decoder_file), options, providers=providers
        )
        self._encoder = onnxruntime.InferenceSession(
            str(self.directory / encoder_file), options, providers=providers
        )

    def decode(self, z):
        """Returns the mean image of p(x|z) for each latent vector.

        Args:
            z: array `(n, latent_dim)` of real numbers (cast to float32).

        Returns:
            A float32 array `(n, H, W, C)` in [0, 1].
        """
        z = _as_float32("z", z, (self.latent_dim,), "latent vectors")
        return self._decoder.run(["image"], {"z": z})[0]

    def sample(self, n, seed=None):
        """Decodes `n` latent vectors drawn from the prior N(0, I).

        Args:
            n: number of images.
            seed: int for a repeatable draw (NumPy's default generator), or `None`.

        Returns:
            A float32 array `(n, H, W, C)` in [0, 1].
        """
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Expected `n` to be a positive integer. Received: n={n!r}")
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        return self.decode(z)

    def encode(self, images):
        """Returns the posterior mean and log-variance of each image.

        Args:
            images: array `(n, H, W, C)` with values in [0, 1].

        Returns:
            A tuple `(mean, log_var)` of float32 arrays `(n, latent_dim)`.
        """
        images = _as_float32("images", images, self.image_shape, "images")
        low, high = float(images.min(initial=0.0)), float(images.max(initial=0.0))
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"`images` must hold values in [0, 1]; received values from {low:g} to "
                f"{high:g}. Divide 8-bit images by 255."
            )
        mean, log_var = self._encoder.run(["mean", "log_var"], {"images": images})
        return mean, log_var


def _as_float32(name, values, item_shape, what):
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise TypeError(
            f"`{name}` must be a numeric array; received dtype {array.dtype}. "
            "Convert it to float32."
        )
    expected = "(n, " + ", ".join(map(str, item_shape)) + ")"
    if array.ndim != 1 + len(item_shape) or array.shape[1:] != tuple(item_shape):
        raise ValueError(f"Expected {what} of shape {expected}. Received: shape {array.shape}.")
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: expected at least one of shape {expected}.")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        count = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(
            f"`{name}` contains {count} NaN or infinite values. Clean the input first."
        )
    return np.ascontiguousarray(array)
