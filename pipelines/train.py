"""Trains a VAE preset on an image dataset and writes a run folder.

    python -m pipelines.train --config pipelines/configs/default.toml --run-dir runs/default

The run folder holds `model.keras`, `history.csv`, `history.json` (per-epoch
losses, test metrics, timing and the config), TensorBoard logs in
`tensorboard/`, and PNG grids `samples.png` (decoded from the prior) and
`reconstructions.png` (test images, each followed by its reconstruction; with
binarised data: original, binarised input, reconstruction). It is built in
`.<run>.partial` beside the target, with a checkpoint after every epoch, and
renamed when complete: a killed run resumes when the same command runs again.
With TF_CONFIG set it trains under MultiWorkerMirroredStrategy and only the
chief writes the run folder.
"""

import argparse
import csv
import dataclasses
import hashlib
import json
import shutil
import statistics
import time
import tomllib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_vae
from keras_vae.callbacks import (
    BackupCheckpoint,
    EpochTimer,
    ImageLogger,
    KLAnnealing,
    StopOnNonFiniteLoss,
)
from keras_vae.data import load_images, split_examples
from keras_vae.distribution import worker_role
from keras_vae.files import replace_directory, write_bytes_atomically
from keras_vae.visualization import write_png

MODELS = {"vae": keras_vae.VAE, "autoencoder": keras_vae.Autoencoder}
KL_SCHEDULES = ("constant", "linear", "cyclical")
OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
# Settings a resumed run may change: training longer is still the same run.
RESUMABLE_CHANGES = ("epochs", "steps_per_execution")


@dataclasses.dataclass
class TrainConfig:
    """What to train, on what, and how. Field names are the config file's keys."""

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
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    seed: int = 0
    strategy: str = "auto"
    mixed_precision: bool = False
    jit_compile: bool = False
    steps_per_execution: int = 16
    max_train_examples: int | None = None
    max_test_examples: int | None = None
    idx_dir: str | None = None
    data_dir: str | None = None

    @classmethod
    def from_file(cls, path):
        """Reads a TOML file whose keys are field names."""
        with open(path, "rb") as file:
            values = tomllib.load(file)
        unknown = sorted(set(values) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown keys in {path}: {unknown}. Known keys: {cls.field_names()}")
        return cls(**values)

    def validate(self):
        """Raises `ValueError` for settings that name nothing known."""
        from keras_vae.presets import PRESETS

        for name, value, known in (
            ("model", self.model, MODELS),
            ("preset", self.preset, PRESETS),
            ("kl_schedule", self.kl_schedule, KL_SCHEDULES),
            ("optimizer", self.optimizer, OPTIMIZERS),
        ):
            if value not in known:
                raise ValueError(f"Unknown {name} {value!r}. Expected one of {sorted(known)}.")
        if self.steps_per_execution < 1:
            raise ValueError(
                "Expected steps_per_execution to be a positive integer. "
                f"Received: {self.steps_per_execution!r}"
            )

    @classmethod
    def field_names(cls):
        return [field.name for field in dataclasses.fields(cls)]


def train(config, run_dir, overwrite=False, fresh=False, verbose=1):
    """Trains a model as `config` says and writes the run folder.

    The chief builds the run in `.<run>.partial` beside `run_dir` and renames it
    when complete. A checkpoint is written there after every epoch, so a run
    that was killed resumes from its last epoch when the same command is run
    again. Under multi-worker training the other workers run the same steps
    and write only to their own scratch folders (`.<run>.worker-N`).

    Args:
        config: a `TrainConfig`.
        run_dir: the run folder to write.
        overwrite: whether to replace an existing run folder.
        fresh: whether to discard an interrupted run instead of resuming it.
        verbose: Keras' `fit` verbosity.

    Returns:
        The summary written to `history.json`, as a dict.
    """
    config.validate()
    # A MultiWorkerMirroredStrategy must exist before other TensorFlow work.
    strategy = keras_vae.choose_strategy(config.strategy)
    is_chief, worker = worker_role(strategy)
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"The run folder {run_dir} exists and is not empty. "
            "Choose another --run-dir, or pass --overwrite to replace it."
        )
    suffix = "partial" if is_chief else worker
    work_dir = run_dir.parent / f".{run_dir.name}.{suffix}"
    _prepare_work_dir(work_dir, config, fresh)
    summary = _train_into(config, strategy, work_dir, verbose)
    if is_chief:
        replace_directory(work_dir, run_dir)
    else:
        shutil.rmtree(work_dir)
    return summary


def _prepare_work_dir(work_dir, config, fresh):
    """Creates the work folder, or checks that an interrupted run in it can resume."""
    settings = work_dir / "config.json"
    if work_dir.exists() and fresh:
        shutil.rmtree(work_dir)
    if work_dir.exists() and settings.is_file():
        saved = json.loads(settings.read_text())
        changed = sorted(
            key for key, value in dataclasses.asdict(config).items()
            if saved.get(key) != value and key not in RESUMABLE_CHANGES
        )  # fmt: skip
        if changed:
            raise ValueError(
                f"{work_dir} holds an interrupted run with other settings ({', '.join(changed)}). "
                "Rerun with the same settings to resume it, or pass --fresh to discard it."
            )
    work_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(settings, json.dumps(dataclasses.asdict(config)).encode())


def _train_into(config, strategy, work_dir, verbose):
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.mixed_precision else "float32"
    )
    data_options = {
        "name": config.dataset,
        "batch_size": config.batch_size,
        "binarize": config.binarize,
        "data_dir": config.data_dir,
        "source_dir": config.idx_dir,
    }
    backup = BackupCheckpoint(work_dir / "backup")
    resumed_epoch = (backup.latest() or {"epoch": 0})["epoch"]
    # An endless stream whose every epoch depends on (seed, epoch) alone: a
    # resumed run sees the data the interrupted one would have seen next, and
    # every worker of a cluster the same global batches as one process.
    train_data = load_images(
        split="train",
        shuffle=True,
        seed=config.seed,
        drop_remainder=True,
        max_examples=config.max_train_examples,
        start_epoch=resumed_epoch,
        **data_options,
    )
    examples = split_examples(
        config.dataset, "train", config.max_train_examples, config.data_dir, config.idx_dir
    )
    steps_per_epoch = examples // config.batch_size
    steps_per_execution = execution_steps(steps_per_epoch, config.steps_per_execution)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras' multi-step loop fails there ("You must feed a value for
        # placeholder tensor" in multi_step_on_iterator, Keras 3.15).
        steps_per_execution = 1
    test_data = load_images(
        split="test", seed=config.seed + 1, max_examples=config.max_test_examples, **data_options
    )
    with strategy.scope():
        model = MODELS[config.model].from_preset(
            config.preset,
            latent_dim=config.latent_dim,
            likelihood=config.likelihood,
            beta=config.beta,
            seed=config.seed,
            free_bits=config.free_bits,
        )
        model.compile(
            optimizer=OPTIMIZERS[config.optimizer](config.learning_rate),
            jit_compile=config.jit_compile,
            steps_per_execution=steps_per_execution,
        )

    timer = EpochTimer()
    callbacks = [
        timer,
        # The log before the backup: a kill between the two makes the resumed run
        # log that epoch again (see _read_history), never lose it.
        keras.callbacks.CSVLogger(str(work_dir / "history.csv"), append=True),
        backup,
        StopOnNonFiniteLoss(backup),
        keras.callbacks.TensorBoard(str(work_dir / "tensorboard")),
        ImageLogger(work_dir / "tensorboard", next(iter(test_data))[:8].numpy()),
    ]
    annealing = _kl_annealing(config, steps_per_epoch)
    if annealing is not None:
        callbacks.append(annealing)
    model.fit(
        train_data,
        steps_per_epoch=steps_per_epoch,
        validation_data=test_data,
        epochs=config.epochs,
        verbose=verbose,
        callbacks=callbacks,
    )
    test_metrics = model.evaluate(test_data, verbose=0, return_dict=True)
    model.save(work_dir / "model.keras")

    inputs = next(iter(test_data))[:24].numpy()
    panels = [inputs, model.reconstruct(inputs)]
    if config.binarize:
        # The grey-level originals of the binarised inputs, in the same order.
        originals = {**data_options, "binarize": False, "batch_size": 24}
        panels.insert(0, next(iter(load_images(split="test", **originals))).numpy())
    grid = np.stack(panels, axis=1).reshape((-1,) + model.image_shape)
    write_png(work_dir / "reconstructions.png", grid, columns=6 * len(panels))
    write_png(work_dir / "samples.png", model.sample(64, seed=config.seed), columns=8)

    examples_per_epoch = steps_per_epoch * config.batch_size
    summary = {
        "config": dataclasses.asdict(config),
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "steps_per_execution": steps_per_execution,
        "parameters": model.count_params(),
        "weights_sha256": weights_digest(model),
        "history": _read_history(work_dir / "history.csv"),
        "resumed_from_epoch": backup.restored_epoch,
        "test": {key: float(np.ravel(value)[0]) for key, value in test_metrics.items()},
        "epoch_seconds": timer.seconds,
        "examples_per_epoch": examples_per_epoch,
        # The first epoch includes tracing; the median of the others is the steady rate.
        "train_examples_per_second": examples_per_epoch
        / statistics.median(timer.seconds[1:] or timer.seconds)
        if timer.seconds
        else None,
        "units": "nats per example",
    }
    write_bytes_atomically(work_dir / "history.json", json.dumps(summary, indent=2).encode())
    (work_dir / "config.json").unlink()
    return summary


def weights_digest(model):
    """The sha256 of all of a model's weights, to compare models bit for bit."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _read_history(path):
    """Per-epoch metrics from the CSV log, which spans every resumed segment of a run.

    An epoch logged twice (run again after a kill) keeps its last row.
    """
    with open(path) as file:
        rows = {int(row["epoch"]): row for row in csv.DictReader(file)}
    ordered = [rows[epoch] for epoch in sorted(rows)]
    names = [name for name in ordered[0] if name != "epoch"] if ordered else []
    return {name: [float(row[name]) for row in ordered] for name in names}


def execution_steps(steps_per_epoch, most):
    """The largest number of steps per execution, at most `most`, that divides an epoch.

    Keras runs `steps_per_execution` steps per call of its training function and
    rounds an epoch up to whole calls; a divisor keeps every epoch at exactly
    `steps_per_epoch` steps, so epochs, checkpoints and the data stream stay
    aligned.
    """
    return max((k for k in range(1, most + 1) if steps_per_epoch % k == 0), default=1)


def _kl_annealing(config, steps_per_epoch):
    """The `KLAnnealing` callback the config asks for, or `None`."""
    if config.kl_schedule == "constant":
        return None
    steps = max(1, round(config.kl_warmup_epochs * steps_per_epoch))
    if config.kl_schedule == "linear":
        return KLAnnealing("linear", warmup_steps=steps, beta_max=config.beta)
    return KLAnnealing("cyclical", cycle_steps=steps, beta_max=config.beta)


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="TOML file of TrainConfig fields")
    parser.add_argument("--run-dir", default="runs/default", help="the run folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument(
        "--fresh", action="store_true", help="discard an interrupted run instead of resuming it"
    )
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = _value_type(field)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, type=kind, default=None)
    return parser.parse_args(argv)


def _value_type(field):
    """The type of a config field's values: `int` for `int | None`, etc."""
    for kind in (bool, int, float):
        if field.type is kind or kind in getattr(field.type, "__args__", ()):
            return kind
    return str


def main(argv=None):
    args = _parse_args(argv)
    config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    changes = {
        key: value
        for key, value in vars(args).items()
        if key in TrainConfig.field_names() and value is not None
    }
    config = dataclasses.replace(config, **changes)
    started = time.perf_counter()
    summary = train(config, args.run_dir, overwrite=args.overwrite, fresh=args.fresh)
    run_dir = Path(args.run_dir).resolve()
    test = summary["test"]
    parts = f"reconstruction {test['reconstruction_loss']:.2f}"
    if "kl_loss" in test:
        parts += f" + KL {test['kl_loss']:.2f}"
    print(
        f"\nTrained {config.model} {config.preset} on {config.dataset} in "
        f"{time.perf_counter() - started:.0f} s "
        f"({summary['train_examples_per_second']:.0f} training examples/s).\n"
        f"Test loss {test['loss']:.2f} nats per example = {parts}.\n"
        f"Run folder: {run_dir}\n"
        + "".join(f"  {path.relative_to(run_dir)}\n" for path in sorted(run_dir.iterdir()))
    )


if __name__ == "__main__":
    main()
