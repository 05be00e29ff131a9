"""Running a bundle's decoder and encoder with onnxruntime."""

import os
from pathlib import Path

import numpy as np
import onnxruntime

from keras_vae_inference import bundle
from keras_vae_inference.bundle import BundleError, check_files, read_manifest, version_entry
from keras_vae_inference.model_inputs import ModelInputs


class ExportedVAE:
    """A VAE's exported decoder and encoder, run with onnxruntime.

    The manifest is read and the sha256 of each ONNX file checked before a
    session is created. What the networks take is `model_inputs`, read from
    the manifest: a conditional VAE's bundle needs `labels` for `decode`,
    `sample` and `encode`, class indices `(n,)` or rows `(n, classes)` of
    one-hot (or mixing) weights.

    Args:
        directory: the bundle folder (holding `manifest.json`).
        variant: `None` for the float32 decoder, or `"float16"` when the bundle
            has that variant.
        threads: intra-op threads, or `None` for all cores.
        version: the bundle's integer version to load, or `None` for the latest.
        spinning: whether onnxruntime's idle threads spin waiting for work. It
            speeds up calls that follow each other closely; where other work
            shares the cores (a server's event loop), it takes their time.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        variant: str | None = None,
        threads: int | None = None,
        version: int | None = None,
        spinning: bool = True,
    ):
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(
                f"Expected `threads` to be a positive integer or None. Received: {threads!r}"
            )
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        try:
            self.model_inputs = ModelInputs.from_manifest(self.manifest, self.directory)
        except ValueError as error:
            raise BundleError(str(error)) from None
        self.version, entry = version_entry(self.directory, self.manifest, version)
        variants = entry.get("variants") or {}
        if variant is not None and variant not in variants:
            raise BundleError(
                f"Version {self.version} of the bundle has no {variant!r} decoder. It has: "
                f"{sorted(variants) or 'none'}."
            )
        try:
            decoder_file = variants[variant]["file"] if variant else entry["onnx"]["decoder"]
            encoder_file = entry["onnx"]["encoder"]
        except (KeyError, TypeError):
            raise BundleError(
                f"The manifest of {self.directory} does not name the ONNX files of version "
                f"{self.version}. Export the model again."
            ) from None
        check_files(self.directory, self.manifest, [decoder_file, encoder_file])
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        latent, images = (self.latent_dim,), self.image_shape
        inputs = self.model_inputs
        labels = {bundle.LABELS: inputs.label_shape} if inputs.conditional else {}
        self._decoder = _session(
            self.directory / decoder_file,
            options,
            {bundle.LATENT: latent, **labels},
            {bundle.IMAGE: images},
        )
        self._encoder = _session(
            self.directory / encoder_file,
            options,
            {bundle.IMAGES: images, **labels},
            {bundle.MEAN: latent, bundle.LOG_VAR: latent},
        )

    @property
    def latent_dim(self) -> int:
        """The size of a latent code, as `model_inputs` records it."""
        return self.model_inputs.latent_dim

    @property
    def image_shape(self) -> tuple:
        """`(height, width, channels)` of an image, as `model_inputs` records it."""
        return self.model_inputs.image_shape

    def decode(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Returns the mean image of p(x|z) for each latent vector.

        Args:
            z: array `(n, latent_dim)` of real numbers (cast to float32).
            labels: a conditional VAE's labels, `n` of them; else `None`.

        Returns:
            A float32 array `(n, H, W, C)` in [0, 1].
        """
        z = self.model_inputs.latent_batch(z)
        feeds = {bundle.LATENT: z, **self._label_feed(labels, len(z))}
        return self._decoder.run([bundle.IMAGE], feeds)[0]

    def sample(
        self, n: int, seed: int | None = None, labels: np.ndarray | None = None
    ) -> np.ndarray:
        """Decodes `n` latent vectors drawn from the prior N(0, I).

        Args:
            n: number of images.
            seed: int for a repeatable draw (NumPy's default generator), or `None`.
            labels: a conditional VAE's labels, `n` of them; else `None`.

        Returns:
            A float32 array `(n, H, W, C)` in [0, 1].
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Expected `n` to be a positive integer. Received: n={n!r}")
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        return self.decode(z, labels)

    def encode(
        self, images: np.ndarray, labels: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns the posterior mean and log-variance of each image.

        Args:
            images: array `(n, H, W, C)` with values in [0, 1].
            labels: a conditional VAE's labels, `n` of them; else `None`.

        Returns:
            A tuple `(mean, log_var)` of float32 arrays `(n, latent_dim)`.
        """
        images = self.model_inputs.image_batch(images)
        feeds = {bundle.IMAGES: images, **self._label_feed(labels, len(images))}
        mean, log_var = self._encoder.run([bundle.MEAN, bundle.LOG_VAR], feeds)
        return mean, log_var

    def _label_feed(self, labels, n):
        """`{"labels": one-hot rows}` for a conditional bundle; `{}` otherwise."""
        rows = self.model_inputs.label_rows(labels, n)
        return {} if rows is None else {bundle.LABELS: rows}


def _session(path, options, inputs, outputs):
    """An onnxruntime session whose graph has the manifest's names and shapes.

    Raises:
        BundleError: the graph's inputs or outputs disagree with the manifest.
    """
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:
        raise BundleError(f"onnxruntime cannot load {path}: {error}") from None
    expected = {name: ["batch", *shape] for name, shape in {**inputs, **outputs}.items()}
    graph = {
        value.name: ["batch", *value.shape[1:]]
        for value in [*session.get_inputs(), *session.get_outputs()]
    }
    if graph != expected:
        raise BundleError(
            f"{path} does not match the bundle's manifest: the graph has inputs and "
            f"outputs {graph}, the manifest says {expected}. Export the model again."
        )
    return session
