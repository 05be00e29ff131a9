"""Running a bundle's graphs with onnxruntime."""

import os
from pathlib import Path

import numpy as np
import onnxruntime

from keras_vae_inference import bundle
from keras_vae_inference.bundle import BundleError, check_files, read_manifest, version_entry
from keras_vae_inference.model_inputs import ModelInputs

SEED_MAX = bundle.SEED_RANGE[1]


class ExportedVAE:
    """A VAE's exported networks, run with onnxruntime.

    The manifest is read and the sha256 of each ONNX file checked before a
    session is created. What the networks take is `model_inputs`, read from
    the manifest: a conditional VAE's bundle needs `labels` for `decode`,
    `sample` and `encode`, class indices `(n,)` or rows `(n, classes)` of
    one-hot (or mixing) weights. A two-level VAE's bundle `decode`s and
    `encode`s its lower code `z1`, samples with the bundle's sampler graph
    (the same images as the Keras model's `sample_from_seeds`), and has the
    upper layer's networks as `top_decode` and `top_encode`.

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
        self.parts = bundle.parts(self.directory, self.manifest)
        expected = bundle.ALL_PARTS if self.model_inputs.two_level else bundle.CORE_PARTS
        if self.parts != expected:
            raise BundleError(
                f"Expected the parts {list(expected)} in {self.directory}, whose manifest "
                f"records top_latent_dim {self.model_inputs.top_latent_dim}. Received: "
                f"{list(self.parts)}. Export the model again."
            )
        try:
            files = {part: entry["onnx"][part] for part in self.parts}
        except (KeyError, TypeError):
            raise BundleError(
                f"The manifest of {self.directory} does not name the ONNX files of version "
                f"{self.version}. Export the model again."
            ) from None
        if variant is not None:
            files["decoder"] = variants[variant]["file"]
        check_files(self.directory, self.manifest, list(files.values()))
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        shapes = _part_shapes(self.model_inputs)
        self._sessions = {
            part: _session(self.directory / files[part], options, *shapes[part])
            for part in self.parts
        }

    @property
    def latent_dim(self) -> int:
        """The size of a latent code, as `model_inputs` records it."""
        return self.model_inputs.latent_dim

    @property
    def image_shape(self) -> tuple:
        """`(height, width, channels)` of an image, as `model_inputs` records it."""
        return self.model_inputs.image_shape

    def decode(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Returns the mean image of p(x|z) for each latent vector (`z1` of a two-level VAE).

        Args:
            z: array `(n, latent_dim)` of real numbers (cast to float32).
            labels: a conditional VAE's labels, `n` of them; else `None`.

        Returns:
            A float32 array `(n, H, W, C)` in [0, 1].
        """
        z = self.model_inputs.latent_batch(z)
        feeds = {bundle.LATENT: z, **self._label_feed(labels, len(z))}
        return self._sessions["decoder"].run([bundle.IMAGE], feeds)[0]

    def sample(
        self, n: int, seed: int | None = None, labels: np.ndarray | None = None
    ) -> np.ndarray:
        """Draws `n` images from the model.

        A one-level VAE's decoder decodes latent vectors drawn from its prior
        N(0, I) by NumPy's default generator; a two-level VAE's sampler graph
        draws from the seeds `seed`, `seed + 1`, ..., `seed + n - 1`.

        Args:
            n: number of images.
            seed: int in [0, 2**63 - n] for a repeatable draw, or `None`.
            labels: a conditional VAE's labels, `n` of them; else `None`.

        Returns:
            A float32 array `(n, H, W, C)` in [0, 1].
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Expected `n` to be a positive integer. Received: n={n!r}")
        if not self.model_inputs.two_level:
            z = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
            return self.decode(z, labels)
        if seed is None:
            seed = int(np.random.default_rng().integers(SEED_MAX - n + 1))
        if (
            isinstance(seed, bool)
            or not isinstance(seed, (int, np.integer))
            or not (0 <= seed <= SEED_MAX - n + 1)
        ):
            raise ValueError(
                f"Expected `seed` to be an integer in [0, 2**63 - n] = [0, {SEED_MAX - n + 1}]. "
                f"Received: seed={seed!r}"
            )
        return self.draw(seed + np.arange(n, dtype=np.int64))[bundle.IMAGE]

    def draw(self, seeds: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """Draws one image and its latent code per seed, a pure function of the seed.

        A one-level VAE's code is `numpy.random.default_rng(seed)`'s
        `latent_dim` standard normal values (`sample(1, seed)`'s); a two-level
        VAE's draw is the sampler graph's, `z2`, `z1` and the image.

        Args:
            seeds: integers `(n,)` in [0, 2**63 - 1].
            labels: a conditional VAE's labels, `n` of them; else `None`.

        Returns:
            A dict of float32 arrays: `"image"` `(n, H, W, C)`, `"z"`
            `(n, latent_dim)` and, for a two-level VAE, `"z2"` `(n, top_latent_dim)`.
        """
        seeds = np.asarray(seeds)
        if seeds.ndim != 1 or not len(seeds) or seeds.dtype.kind not in "iu":
            raise ValueError(
                f"Expected `seeds` as integers of shape (n,). Received: dtype {seeds.dtype}, "
                f"shape {seeds.shape}."
            )
        if seeds.min() < 0 or seeds.max() > SEED_MAX:
            raise ValueError(
                f"Expected seeds in [0, 2**63 - 1]. Received: from {seeds.min()} to {seeds.max()}."
            )
        if not self.model_inputs.two_level:
            z = np.stack(
                [np.random.default_rng(int(s)).standard_normal(self.latent_dim) for s in seeds]
            ).astype(np.float32)
            return {bundle.IMAGE: self.decode(z, labels), bundle.LATENT: z}
        self.model_inputs.label_rows(labels, len(seeds))
        outputs = [bundle.IMAGE, bundle.LATENT, bundle.TOP_LATENT]
        results = self._sessions["sampler"].run(outputs, {bundle.SEED: seeds.astype(np.int64)})
        return dict(zip(outputs, results, strict=True))

    def encode(
        self, images: np.ndarray, labels: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns the posterior mean and log-variance of each image (of `z1`, two-level).

        Args:
            images: array `(n, H, W, C)` with values in [0, 1].
            labels: a conditional VAE's labels, `n` of them; else `None`.

        Returns:
            A tuple `(mean, log_var)` of float32 arrays `(n, latent_dim)`.
        """
        images = self.model_inputs.image_batch(images)
        feeds = {bundle.IMAGES: images, **self._label_feed(labels, len(images))}
        mean, log_var = self._sessions["encoder"].run([bundle.MEAN, bundle.LOG_VAR], feeds)
        return mean, log_var

    def top_decode(self, z2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A two-level VAE's p(z1|z2): its mean and log-variance for each `z2`.

        Args:
            z2: array `(n, top_latent_dim)` of real numbers.

        Returns:
            A tuple `(mean, log_var)` of float32 arrays `(n, latent_dim)`.
        """
        z2 = self.model_inputs.top_latent_batch(z2)
        return self._top("top_decoder", z2)

    def top_encode(self, z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A two-level VAE's q(z2|z1): its mean and log-variance for each `z1`.

        Args:
            z1: array `(n, latent_dim)` of real numbers.

        Returns:
            A tuple `(mean, log_var)` of float32 arrays `(n, top_latent_dim)`.
        """
        if not self.model_inputs.two_level:
            raise ValueError("This model has one stochastic layer: it has no q(z2|z1).")
        return self._top("top_encoder", self.model_inputs.latent_batch(z1))

    def _top(self, part, z):
        mean, log_var = self._sessions[part].run([bundle.MEAN, bundle.LOG_VAR], {bundle.LATENT: z})
        return mean, log_var

    def _label_feed(self, labels, n):
        """`{"labels": one-hot rows}` for a conditional bundle; `{}` otherwise."""
        rows = self.model_inputs.label_rows(labels, n)
        return {} if rows is None else {bundle.LABELS: rows}


def _part_shapes(inputs):
    """The names and item shapes of each part's inputs and outputs."""
    latent, top, images = (inputs.latent_dim,), (inputs.top_latent_dim,), inputs.image_shape
    labels = {bundle.LABELS: inputs.label_shape} if inputs.conditional else {}
    return {
        "decoder": ({bundle.LATENT: latent, **labels}, {bundle.IMAGE: images}),
        "encoder": (
            {bundle.IMAGES: images, **labels},
            {bundle.MEAN: latent, bundle.LOG_VAR: latent},
        ),
        "top_decoder": ({bundle.LATENT: top}, {bundle.MEAN: latent, bundle.LOG_VAR: latent}),
        "top_encoder": ({bundle.LATENT: latent}, {bundle.MEAN: top, bundle.LOG_VAR: top}),
        "sampler": (
            {bundle.SEED: ()},
            {bundle.IMAGE: images, bundle.LATENT: latent, bundle.TOP_LATENT: top},
        ),
    }


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
