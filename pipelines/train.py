"""Trains a VAE preset on an image dataset and writes a run folder.

    keras-vae train --config pipelines/configs/default.toml --run-dir runs/default

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

import csv
import hashlib
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_vae
from keras_vae.callbacks import (
    BackupCheckpoint,
    CheckpointError,
    EpochTimer,
    ImageLogger,
    KLAnnealing,
    StopOnNonFiniteLoss,
)
from keras_vae.data.batching import shard_by_data
from keras_vae.distribute import worker_role
from keras_vae.evaluation import evaluate_losses
from keras_vae.files import (
    check_folder_name,
    recover_directory,
    replace_directory,
    write_bytes_atomically,
)
from keras_vae.pictures import write_png
from keras_vae.run import (
    EVALUATION_BATCH_SIZE,
    UNITS,
    RunData,
    RunError,
    RunFolder,
    build_model,
    build_optimizer,
)
from keras_vae.run_summary import RunSummary


def train(config, run_dir, overwrite=False, fresh=False, verbose=1):
    """Trains a model as `config` says and writes the run folder.

    The chief builds the run in `.<run>.partial` beside `run_dir` and moves it
    into place when complete (an existing run folder is swapped out atomically).
    A checkpoint is written there after every epoch and kept until the run
    folder is complete, so a run killed at any moment resumes from its last
    epoch when the same command is run again. Under multi-worker training the
    other workers run the same steps and write only to their own scratch
    folders (`.<run>.worker-N`).

    Args:
        config: a `RunConfig`.
        run_dir: the run folder to write.
        overwrite: whether to replace an existing run folder.
        fresh: whether to discard an interrupted run instead of resuming it.
        verbose: Keras' `fit` verbosity.

    Returns:
        The `RunSummary` written to `history.json`.
    """
    config.validate()
    # A MultiWorkerMirroredStrategy must exist before other TensorFlow work.
    strategy = keras_vae.choose_strategy(config.strategy)
    is_chief, worker = worker_role(strategy)
    folder = RunFolder(run_dir)
    check_folder_name(folder.path.name, "run folder's name")
    recover_directory(folder.path)
    if folder.path.exists() and any(folder.path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"The run folder {folder.path} exists and is not empty. "
            "Choose another --run-dir, or pass --overwrite to replace it."
        )
    # The data are located and checked before anything is written.
    data = RunData(config)
    _ = data.steps_per_epoch
    work = folder.work_folder("partial" if is_chief else worker)
    summary = _finished_summary(work, folder, config, fresh)
    if summary is None:
        _prepare_work_folder(work, config, fresh)
        try:
            summary = _train_into(config, strategy, data, work, verbose)
        except CheckpointError as error:
            raise RunError(f"{error} Pass --fresh to start the run again.") from None
        except BaseException:
            # Before its first checkpoint the work folder holds only its settings.
            if not (work.backup / BackupCheckpoint.POINTER).is_file():
                shutil.rmtree(work.path, ignore_errors=True)
            raise
    if is_chief:
        replace_directory(work.path, folder.path)
    else:
        shutil.rmtree(work.path)
    return summary


def _finished_summary(work, folder, config, fresh):
    """The summary of a complete run left in `work` by a kill before it was moved, or None.

    A work folder without settings but with a summary is complete. It is the
    run to move into place unless the run folder's summary is newer: then it
    is the old run that a finished swap left behind, and it is removed.
    """
    if fresh or work.settings.exists() or not work.history_json.is_file():
        return None
    summary = RunSummary.from_json(work.history_json.read_text(), str(work.history_json))
    superseded = folder.history_json.is_file() and (
        folder.history_json.stat().st_mtime_ns >= work.history_json.stat().st_mtime_ns
    )
    if (
        superseded
        or config.changes_from(summary.config)
        or (summary.config.epochs != config.epochs)
    ):
        shutil.rmtree(work.path)
        return None
    return summary


def _prepare_work_folder(work, config, fresh):
    """Creates the work folder, or checks that an interrupted run in it can resume.

    A work folder without a checkpoint holds no training to protect: it is
    started afresh whatever settings it was made with.
    """
    checkpoint = work.backup / BackupCheckpoint.POINTER
    if work.path.exists() and (fresh or not checkpoint.is_file()):
        shutil.rmtree(work.path)
    if work.settings.is_file():
        try:
            changed = config.changes_from(json.loads(work.settings.read_text()))
        except ValueError as error:
            raise RunError(
                f"{work.settings} is unreadable ({error}). Pass --fresh to start the run again."
            ) from None
        if changed:
            raise ValueError(
                f"{work.path} holds an interrupted run with other settings "
                f"({', '.join(changed)}). Rerun with the same settings to resume it, or "
                "pass --fresh to discard it."
            )
    work.path.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(work.settings, json.dumps(config.to_dict()).encode())


def _train_into(config, strategy, data, work, verbose):
    """Model, callbacks, fit, pictures, summary: the run, written into `work`."""
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.mixed_precision else "float32"
    )
    backup = BackupCheckpoint(work.backup, remove_when_done=False)
    start_epoch = (backup.latest() or {"epoch": 0})["epoch"]
    steps_per_execution = _steps_per_execution(config, data.steps_per_epoch, strategy)
    with strategy.scope():
        model = build_model(config, data.source.image_shape, data.source.class_names)
        model.compile(
            optimizer=build_optimizer(config, data.steps_per_epoch),
            jit_compile=config.jit_compile,
            steps_per_execution=steps_per_execution,
        )

    timer = EpochTimer()
    validation = data.validation_set or data.test_set
    model.fit(
        data.training_stream(start_epoch),
        steps_per_epoch=data.steps_per_epoch,
        validation_data=shard_by_data(
            tf.data.Dataset.from_tensor_slices(
                (validation.images, validation.labels)
                if config.model == "cvae"
                else validation.images
            ).batch(config.batch_size)
        ),
        epochs=config.epochs,
        verbose=verbose,
        callbacks=_callbacks(config, data, work, backup, timer),
    )
    test_metrics = evaluate_losses(
        model,
        data.test_set.images,
        data.test_set.labels,
        seed=config.test_seed,
        batch_size=EVALUATION_BATCH_SIZE,
    )
    model.save(work.model)
    _write_pictures(model, config, data, work)
    summary = _summary(config, strategy, model, data, backup, timer, test_metrics, work,
                       steps_per_execution)  # fmt: skip
    write_bytes_atomically(work.history_json, summary.to_json())
    # Complete: without its settings the folder is no longer resumable, and
    # only then is the checkpoint removed.
    work.settings.unlink()
    shutil.rmtree(work.backup, ignore_errors=True)
    return summary


def _steps_per_execution(config, steps_per_epoch, strategy):
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras' multi-step loop fails there ("You must feed a value for
        # placeholder tensor" in multi_step_on_iterator, Keras 3.15).
        return 1
    return execution_steps(steps_per_epoch, config.steps_per_execution)


def _callbacks(config, data, work, backup, timer):
    callbacks = [
        timer,
        # The log before the backup: a kill between the two makes the resumed run
        # log that epoch again (see _read_history), never lose it.
        keras.callbacks.CSVLogger(str(work.history_csv), append=True),
        backup,
        StopOnNonFiniteLoss(backup),
        keras.callbacks.TensorBoard(str(work.tensorboard)),
        ImageLogger(work.tensorboard, data.test_set.images[:8], data.test_set.labels[:8]),
    ]
    annealing = _kl_annealing(config, data.steps_per_epoch)
    return callbacks if annealing is None else [*callbacks, annealing]


def _write_pictures(model, config, data, work):
    """Samples from the prior (a row per class for a conditional model), and test
    images beside their reconstructions."""
    inputs, labels = data.test_set.images[:24], data.test_set.labels[:24]
    conditional = model.model_inputs.conditional
    panels = [inputs, model.reconstruct(inputs, labels if conditional else None)]
    if config.binarize:
        # The grey-level originals of the binarised inputs, in the same order.
        originals, _ = data.source.arrays("test", max_examples=len(inputs))
        panels.insert(0, originals)
    grid = np.stack(panels, axis=1).reshape((-1,) + model.image_shape)
    write_png(work.reconstructions, grid, columns=6 * len(panels))
    if conditional:
        classes = model.model_inputs.class_rows(8)
        samples = model.sample(len(classes), seed=config.seed, labels=classes)
    else:
        samples = model.sample(64, seed=config.seed)
    write_png(work.samples, samples, columns=8)


def _summary(config, strategy, model, data, backup, timer, test_metrics, work,
             steps_per_execution):  # fmt: skip
    examples_per_epoch = data.steps_per_epoch * config.batch_size
    # The first epoch includes tracing; the median of the others is the steady rate.
    steady = statistics.median(timer.seconds[1:] or timer.seconds) if timer.seconds else None
    return RunSummary(
        config=config,
        strategy=type(strategy).__name__,
        replicas=strategy.num_replicas_in_sync,
        parameters=model.count_params(),
        weights_sha256=weights_digest(model),
        history=_read_history(work.history_csv),
        resumed_from_epoch=backup.restored_epoch,
        test=test_metrics,
        test_set=data.test_set.description,
        epoch_seconds=timer.seconds,
        examples_per_epoch=examples_per_epoch,
        train_examples_per_second=examples_per_epoch / steady if steady else None,
        units=UNITS,
        steps_per_execution=steps_per_execution,
    )


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


def run(args):
    """`keras-vae train`: trains as `args.run_config` says and prints where the run is."""
    config = args.run_config
    started = time.perf_counter()
    # Keras' progress bar redraws one line: in a log file, one line per epoch reads better.
    verbose = 1 if sys.stdout.isatty() else 2
    summary = train(
        config, args.run_dir, overwrite=args.overwrite, fresh=args.fresh, verbose=verbose
    )
    run_dir = Path(args.run_dir).resolve()
    print(
        f"\nTrained {config.model} {config.preset} on {config.dataset} in "
        f"{time.perf_counter() - started:.0f} s{_rate(summary)}.\n"
        f"{loss_line(summary)}\n"
        f"Run folder: {run_dir}\n"
        + "".join(f"  {path.relative_to(run_dir)}\n" for path in sorted(run_dir.iterdir()))
    )


def loss_line(summary):
    """The test loss and its terms, with the KL weight the loss was taken at.

    During a KL warm-up the loss is the reconstruction plus `beta` times the
    KL, `beta` being the last epoch's (its history's `beta`).

    Args:
        summary: a finished run's `RunSummary`.

    Returns:
        One line, e.g. "Test loss 250.10 nats per example = reconstruction
        230.00 + KL 20.10."
    """
    test = summary.test
    parts = f"reconstruction {test['reconstruction_loss']:.2f}"
    if "kl_loss" in test:
        beta = summary.history.get("beta", [summary.config.beta])[-1]
        weight = "" if beta == 1.0 else f"{beta:.4g} × "
        parts += f" + {weight}KL {test['kl_loss']:.2f}"
    return f"Test loss {test['loss']:.2f} nats per example = {parts}."


def _rate(summary):
    rate = summary.train_examples_per_second
    return f" ({rate:.0f} training examples/s)" if rate else ""


if __name__ == "__main__":
    from pipelines.cli import run_module

    run_module(__spec__.name)
