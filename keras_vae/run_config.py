"""A run's settings: what to train, on what, and how.

Plain data, importable without TensorFlow, so the command line can show and
check every setting before it starts anything. `keras_vae.run` builds the
model and datasets a config describes.
"""

import dataclasses
import math
import tomllib

from keras_vae.presets import PRESETS, TWO_LEVEL_PRESETS, is_two_level

MODELS = ("vae", "autoencoder", "cvae", "hvae")
KL_SCHEDULES = ("constant", "linear", "cyclical")
# How a folder's images are read (`keras_vae.data.FolderImages`).
COLOR_MODES = ("rgb", "grayscale")
OPTIMIZERS = ("adam", "sgd")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")
# The tf.distribute strategies `keras_vae.distribute.choose_strategy` knows.
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
# Settings a resumed run may change: training longer is still the same run.
RESUMABLE_CHANGES = ("epochs", "steps_per_execution")
# The settings that name one of a few things, and those things.
CHOICES = {
    "model": MODELS,
    "preset": tuple(PRESETS),
    "kl_schedule": KL_SCHEDULES,
    "optimizer": OPTIMIZERS,
    "learning_rate_schedule": LEARNING_RATE_SCHEDULES,
    "strategy": STRATEGIES,
    "color_mode": COLOR_MODES,
}
# What each setting means, for the command line's help.
FIELD_HELP = {
    "model": "a VAE, the plain autoencoder baseline, a conditional VAE (cvae: labels "
    "feed the encoder and decoder) or a two-level VAE (hvae, with a two-level preset)",
    "preset": "the network, from keras_vae.presets",
    "dataset": "fashion_mnist, mnist, noto_emoji, another prepared TFDS dataset, a folder of "
    "images (a path: ./photos, /data/photos, ~/photos; labels from sub-folders) or a .npz "
    "file of x_train, x_test (y_train, y_test)",
    "binarize": "sample binary pixels each epoch (for the Bernoulli likelihood)",
    "latent_dim": "latent dimensions (default: the preset's)",
    "likelihood": "bernoulli or gaussian (default: the preset's)",
    "beta": "weight of the KL term",
    "kl_schedule": "how beta grows from 0: constant (no warm-up), linear or cyclical",
    "kl_warmup_epochs": "epochs of the linear warm-up, or of one cycle",
    "free_bits": "KL floor per latent dimension, in nats (0: none)",
    "importance_samples": "latent samples per training example: k > 1 trains on the "
    "importance-weighted bound (IWAE, Burda et al., 2016) rather than the ELBO",
    "epochs": "epochs to train",
    "batch_size": "global batch size, split over replicas",
    "optimizer": "the optimizer",
    "learning_rate": "the optimizer's learning rate (at the start, with a schedule)",
    "learning_rate_schedule": "constant, or cosine: decays to 0 over all the run's epochs",
    "seed": "seed of the initial weights, the data order and the sampling noise",
    "test_seed": "seed binarising the test and validation images",
    "validation_examples": "training examples held out for validation (0: validate on test)",
    "strategy": "tf.distribute strategy (auto: from TF_CONFIG and the GPUs)",
    "mixed_precision": "train in mixed float16",
    "jit_compile": "compile the training step with XLA",
    "steps_per_execution": "most training steps per compiled call",
    "max_train_examples": "use only the first N training examples",
    "max_test_examples": "use only the first N test examples",
    "idx_dir": "folder of MNIST-format IDX files to read instead of TFDS' own",
    "data_dir": "TFDS data folder (default: TFDS' own)",
    "image_size": "height and width a folder's images are resized to (default: they must "
    "all have one size)",
    "color_mode": "colour mode a folder's images are read in",
    "crop_to_aspect_ratio": "crop a folder's images to image_size's aspect ratio before "
    "resizing, rather than stretch them",
    "skip_unreadable": "skip a folder's unreadable image files, counting them, rather than fail",
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What to train, on what, and how. Field names are the config file's keys.

    `test_seed` binarises the test set (and the validation split) once; it is
    the same for every run by default, so runs with other training seeds are
    measured on the same images. `validation_examples > 0` holds out the last
    examples of the training split as a validation set for `fit`; otherwise
    `fit` validates on the test set.
    """

    model: str = "vae"
    preset: str = "fashion_mnist_conv"
    dataset: str = "fashion_mnist"
    binarize: bool = True
    latent_dim: int | None = None
    likelihood: str | None = None
    beta: float = 1.0
    kl_schedule: str = "constant"
    kl_warmup_epochs: float = 1.0
    free_bits: float = 0.0
    importance_samples: int = 1
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    learning_rate_schedule: str = "constant"
    seed: int = 0
    test_seed: int = 0
    validation_examples: int = 0
    strategy: str = "auto"
    mixed_precision: bool = False
    jit_compile: bool = False
    steps_per_execution: int = 16
    max_train_examples: int | None = None
    max_test_examples: int | None = None
    idx_dir: str | None = None
    data_dir: str | None = None
    image_size: list | None = None
    color_mode: str = "rgb"
    crop_to_aspect_ratio: bool = False
    skip_unreadable: bool = False

    @classmethod
    def field_names(cls):
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values, origin="the config"):
        """Builds a config from a dict of field values, checking names and types.

        Args:
            values: dict whose keys are field names.
            origin: where the values come from, for error messages.

        Returns:
            A validated `RunConfig`.
        """
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(
                f"Unknown keys in {origin}: {unknown}. Known keys: {cls.field_names()}"
            )
        for field in dataclasses.fields(cls):
            if field.name in values:
                _check_type(field, values[field.name], origin)
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def from_file(cls, path):
        """Reads a TOML file whose keys are field names."""
        with open(path, "rb") as file:
            try:
                values = tomllib.load(file)
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"{path} is not valid TOML: {error}.") from None
        return cls.from_dict(values, origin=str(path))

    def to_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        """A copy with some fields changed, validated."""
        return type(self).from_dict({**self.to_dict(), **changes}, origin="the changes")

    def validate(self):
        """Raises `ValueError` for settings that name nothing known or make no sense."""
        self._check_each_setting()
        self._check_combinations()

    def _check_each_setting(self):
        for name, known in CHOICES.items():
            value = getattr(self, name)
            if value not in known:
                raise ValueError(f"Unknown {name} {value!r}. Expected one of {sorted(known)}.")
        for name in ("epochs", "batch_size", "steps_per_execution", "latent_dim",
                     "max_train_examples", "max_test_examples", "importance_samples"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Expected {name} to be a positive integer. Received: {value!r}")
        for name in ("beta", "kl_warmup_epochs", "free_bits", "learning_rate"):
            value = getattr(self, name)
            positive = name in ("kl_warmup_epochs", "learning_rate")
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                kind = "positive" if positive else "non-negative"
                raise ValueError(f"Expected {name} to be a {kind} number. Received: {value!r}")
        if self.validation_examples < 0:
            raise ValueError(
                "Expected validation_examples to be 0 or more. "
                f"Received: {self.validation_examples!r}"
            )
        if self.max_train_examples is not None and self.max_train_examples < self.batch_size:
            raise ValueError(
                "Expected max_train_examples to be at least batch_size, or an epoch has no "
                f"step. Received: max_train_examples={self.max_train_examples}, "
                f"batch_size={self.batch_size}"
            )
        if self.image_size is not None and not (
            len(self.image_size) == 2
            and all(isinstance(side, int) and not isinstance(side, bool) and side > 0
                    for side in self.image_size)
        ):  # fmt: skip
            raise ValueError(
                "Expected image_size to be [height, width], two positive integers. "
                f"Received: {self.image_size!r}"
            )

    def _check_combinations(self):
        if self.importance_samples > 1 and (self.model == "autoencoder" or self.free_bits):
            raise ValueError(
                "The importance-weighted bound is a VAE's, without free bits. Expected "
                "importance_samples=1 with model='autoencoder' or free_bits > 0. Received: "
                f"importance_samples={self.importance_samples}, model={self.model!r}, "
                f"free_bits={self.free_bits!r}"
            )
        if is_two_level(self.preset) != (self.model == "hvae"):
            raise ValueError(
                "A two-level VAE needs a two-level preset, and only it takes one: expected "
                f"model='hvae' with preset in {list(TWO_LEVEL_PRESETS)}, "
                f"or another model with another preset. Received: model={self.model!r}, "
                f"preset={self.preset!r}"
            )
        if self.model == "hvae" and self.free_bits:
            raise ValueError(
                "Free bits floor a closed-form KL per latent dimension, which a two-level "
                f"VAE's lower layer does not have. Expected free_bits=0 with model='hvae'. "
                f"Received: free_bits={self.free_bits!r}"
            )
        if self.model == "autoencoder" and self.kl_schedule != "constant":
            raise ValueError(
                "An autoencoder has no KL term to anneal. Expected kl_schedule='constant' "
                f"with model='autoencoder'. Received: kl_schedule={self.kl_schedule!r}"
            )

    def changes_from(self, other):
        """The fields, other than `RESUMABLE_CHANGES`, in which `other` differs."""
        theirs = other if isinstance(other, dict) else other.to_dict()
        return sorted(
            key for key, value in self.to_dict().items()
            if theirs.get(key) != value and key not in RESUMABLE_CHANGES
        )  # fmt: skip


def _check_type(field, value, origin):
    allowed = getattr(field.type, "__args__", (field.type,))
    # TOML and JSON write whole numbers without a point where a float is meant.
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return
    if value is None and type(None) in allowed:
        return
    kinds = tuple(kind for kind in allowed if kind is not type(None))
    # bool is an int to Python, not to a config.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in allowed)
        raise ValueError(f"Expected {field.name} in {origin} to be {names}. Received: {value!r}")
