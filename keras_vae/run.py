"""A training run: its model, its datasets and its folder, each defined once.

Its settings are a `keras_vae.run_config.RunConfig`. `pipelines/train.py`
writes runs; evaluation, export and the benchmark read them through
`load_run`. Nothing else knows the run folder's file names, how the test set
is binarised or which seed a dataset uses.
"""

import dataclasses
import functools
from pathlib import Path

import keras
import numpy as np

from keras_vae.autoencoder import Autoencoder
from keras_vae.conditional_vae import ConditionalVAE
from keras_vae.data import image_source
from keras_vae.hierarchical_vae import HierarchicalVAE
from keras_vae.presets import PRESETS
from keras_vae.run_config import RunConfig
from keras_vae.run_summary import RunSummary
from keras_vae.vae import VAE

MODELS = {
    "vae": VAE,
    "autoencoder": Autoencoder,
    "cvae": ConditionalVAE,
    "hvae": HierarchicalVAE,
}
OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
# Examples per evaluation batch; the test figures do not depend on it.
EVALUATION_BATCH_SIZE = 1000
UNITS = "nats per example"


class RunError(RuntimeError):
    """A run folder is missing, incomplete or unreadable."""


def build_model(config, image_shape=None, class_names=()):
    """The untrained model a `RunConfig` describes: its preset with its changes.

    Args:
        config: a `RunConfig`.
        image_shape: the data's `(height, width, channels)`, when it differs
            from the preset's; `None` keeps the preset's.
        class_names: the data's classes, which a conditional model takes as labels.
    """
    options = {"latent_dim": config.latent_dim, "likelihood": config.likelihood}
    preset_shape = tuple(PRESETS[config.preset]["input_shape"])
    if image_shape is not None and tuple(image_shape) != preset_shape:
        options["input_shape"] = tuple(image_shape)
    if config.model in ("vae", "cvae", "hvae"):
        options.update(
            beta=config.beta, seed=config.seed, free_bits=config.free_bits,
            importance_samples=config.importance_samples,
        )  # fmt: skip
    if config.model == "cvae":
        if not class_names:
            raise ValueError(
                f"A conditional VAE needs labelled data. Received: {config.dataset}, "
                "whose images have no class names. Label a folder's images by sub-folder."
            )
        return ConditionalVAE.from_preset(
            config.preset, load_weights=False, num_classes=len(class_names), **options
        )
    return MODELS[config.model].from_preset(config.preset, load_weights=False, **options)


def build_optimizer(config, steps_per_epoch=1):
    """The optimizer a `RunConfig` names, at its learning rate and schedule.

    Args:
        config: a `RunConfig`.
        steps_per_epoch: training steps per epoch, which a schedule over the
            run's epochs needs.
    """
    learning_rate = config.learning_rate
    if config.learning_rate_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=config.epochs * steps_per_epoch
        )
    return OPTIMIZERS[config.optimizer](learning_rate)


@dataclasses.dataclass(frozen=True)
class EvaluationSet:
    """Images preprocessed once (binarised with a fixed seed), for evaluation.

    Attributes:
        images: float32 array `(n, H, W, C)` in [0, 1].
        labels: int64 array `(n,)`.
        class_names: names of the labels.
        description: what the set is, for reports.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list
    description: str


class RunData:
    """The datasets of a run: the training stream, the test set and the validation split.

    Args:
        config: a `RunConfig`.
    """

    def __init__(self, config):
        self.config = config
        self.source = image_source(
            config.dataset,
            data_dir=config.data_dir,
            idx_dir=config.idx_dir,
            image_size=config.image_size,
            color_mode=config.color_mode,
            crop_to_aspect_ratio=config.crop_to_aspect_ratio,
            skip_unreadable=config.skip_unreadable,
        )

    @functools.cached_property
    def _held_out_from(self):
        """Index of the first held-out training example, or `None` without a validation split."""
        held_out = self.config.validation_examples
        if not held_out:
            return None
        total = self.source.num_examples("train")
        if held_out >= total:
            raise ValueError(
                f"Expected validation_examples below the {total} training examples of "
                f"{self.config.dataset}. Received: {held_out}"
            )
        return total - held_out

    @property
    def _train_split(self):
        start = self._held_out_from
        return "train" if start is None else f"train[:{start}]"

    @functools.cached_property
    def train_examples(self):
        """Examples of the (capped) training split, without the validation split."""
        return self.source.num_examples(self._train_split, self.config.max_train_examples)

    @functools.cached_property
    def steps_per_epoch(self):
        """Training steps per epoch: whole batches of the (capped) training split.

        Raises:
            ValueError: the split holds less than one batch.
        """
        examples = self.train_examples
        if examples < self.config.batch_size:
            raise ValueError(
                f"Expected at least one batch of {self.config.batch_size} training examples "
                f"per epoch. Received: {examples} examples in {self.config.dataset} "
                f"{self._train_split} (max_train_examples={self.config.max_train_examples}). "
                "Lower batch_size or use more examples."
            )
        return examples // self.config.batch_size

    def training_stream(self, start_epoch=0):
        """The endless training stream from `start_epoch`: each epoch's order and
        binarisation depend on `(seed, epoch)` alone, so a resumed run, and every
        worker of a cluster, sees what one uninterrupted process would."""
        return self.source.load(
            self._train_split,
            batch_size=self.config.batch_size,
            binarize=self.config.binarize,
            shuffle=True,
            seed=self.config.seed,
            drop_remainder=True,
            max_examples=self.config.max_train_examples,
            start_epoch=start_epoch,
            # Labels only where the model takes them: Keras' build under a
            # multi-worker strategy fails on (images, labels) batches.
            with_labels=self.config.model == "cvae",
        )

    @functools.cached_property
    def test_set(self):
        """The test split (capped by `max_test_examples`), preprocessed once."""
        return self._fixed_set("test", self.config.max_test_examples)

    @functools.cached_property
    def validation_set(self):
        """The held-out end of the training split, or `None` without one."""
        start = self._held_out_from
        return None if start is None else self._fixed_set(f"train[{start}:]", None)

    def _fixed_set(self, split, max_examples):
        config = self.config
        images, labels = self.source.arrays(
            split, binarize=config.binarize, seed=config.test_seed, max_examples=max_examples
        )
        levels = "grey levels" if self.source.image_shape[-1] == 1 else "colour levels"
        how = f"binarised once (seed {config.test_seed})" if config.binarize else levels
        return EvaluationSet(
            images,
            labels,
            self.source.class_names,
            f"{config.dataset} {split}, {len(images):,} images, {how}",
        )


class RunFolder:
    """The files of a run folder, by name.

    A run is built in a work folder beside it (`.<name>.partial`, or
    `.<name>.worker-N` for the other workers of a cluster) and renamed when
    complete, so a folder at the run's own path is always complete.

    Args:
        path: the run folder.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    def work_folder(self, role="partial"):
        """The folder a run is built in before it is renamed to `path`."""
        return RunFolder(self.path.parent / f".{self.path.name}.{role}")

    model = property(lambda self: self.path / "model.keras")
    history_csv = property(lambda self: self.path / "history.csv")
    history_json = property(lambda self: self.path / "history.json")
    tensorboard = property(lambda self: self.path / "tensorboard")
    samples = property(lambda self: self.path / "samples.png")
    reconstructions = property(lambda self: self.path / "reconstructions.png")
    report_markdown = property(lambda self: self.path / "report.md")
    report_json = property(lambda self: self.path / "report.json")
    report_pictures = property(lambda self: self.path / "report")
    # The IWAE estimate of each test image's log p(x), in test-set order.
    log_likelihoods = property(lambda self: self.path / "log_likelihoods.npy")
    # Present only while a run is unfinished: its settings and epoch checkpoints.
    settings = property(lambda self: self.path / "config.json")
    backup = property(lambda self: self.path / "backup")


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    """A complete run folder, read back.

    Attributes:
        folder: its `RunFolder`.
        config: its `RunConfig`.
        summary: the `RunSummary` of `history.json`.
    """

    folder: RunFolder
    config: RunConfig
    summary: RunSummary

    @functools.cached_property
    def model(self):
        """The trained model, loaded from `model.keras`.

        Raises:
            RunError: the file is not a model this keras-vae can load.
        """
        try:
            return keras.models.load_model(self.folder.model)
        except Exception as error:
            raise RunError(
                f"{self.folder.model} cannot be loaded ({type(error).__name__}: {error}). "
                "The file is damaged or was not written by keras-vae: train the run again."
            ) from None

    @functools.cached_property
    def data(self):
        """The run's datasets, as in training."""
        return RunData(self.config)


def load_run(run_dir):
    """Reads a finished training run folder.

    Args:
        run_dir: a folder written by `pipelines/train.py`.

    Returns:
        A `FinishedRun`; its model is loaded when first used.

    Raises:
        RunError: the folder is not a finished run.
    """
    folder = RunFolder(run_dir)
    for path in (folder.model, folder.history_json):
        if not path.is_file():
            raise RunError(
                f"{path} is missing: pass the folder of a finished training run "
                "(make run writes runs/default)."
            )
    try:
        summary = RunSummary.from_json(folder.history_json.read_text(), str(folder.history_json))
    except ValueError as error:
        raise RunError(f"{error} Train the run again.") from None
    return FinishedRun(folder, summary.config, summary)
