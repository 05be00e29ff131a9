"""Keras callbacks for VAE training: timing, KL annealing, pictures, fault tolerance."""

import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_vae.files import write_bytes_atomically
from keras_vae.pictures import image_grid


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each training epoch (validation excluded).

    Attributes:
        seconds: list of epoch durations in seconds, in order.
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        # Validation runs inside the epoch; stop the clock before it.
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None


class KLAnnealing(keras.callbacks.Callback):
    """Sets the KL weight `beta` of a `VAE` before every training step.

    `"linear"` warm-up raises beta from `beta_min` to `beta_max` over
    `warmup_steps` and keeps it there. `"cyclical"` (Fu et al., 2019) repeats
    that ramp every `cycle_steps`, rising during the first `ramp_fraction` of
    each cycle and holding `beta_max` for the rest. The step is the optimizer's
    iteration count, so a resumed run continues the schedule. The value is
    logged as `beta` at the end of each epoch. With `steps_per_execution=k` in
    `compile`, Keras calls back every k steps, so beta changes in steps of k.

    Args:
        schedule: `"linear"` or `"cyclical"`.
        warmup_steps: steps of the linear ramp (`"linear"`).
        cycle_steps: steps per cycle (`"cyclical"`).
        ramp_fraction: share of each cycle spent rising (`"cyclical"`).
        beta_min: beta at the start of a ramp.
        beta_max: beta at its end.
    """

    SCHEDULES = ("linear", "cyclical")

    def __init__(
        self,
        schedule="linear",
        warmup_steps=None,
        cycle_steps=None,
        ramp_fraction=0.5,
        beta_min=0.0,
        beta_max=1.0,
    ):
        super().__init__()
        if schedule not in self.SCHEDULES:
            raise ValueError(
                f"Expected `schedule` to be one of {self.SCHEDULES}. Received: {schedule!r}"
            )
        steps = warmup_steps if schedule == "linear" else cycle_steps
        name = "warmup_steps" if schedule == "linear" else "cycle_steps"
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(
                f"The {schedule} schedule needs `{name}`, a positive integer. Received: {steps!r}"
            )
        if not 0.0 < ramp_fraction <= 1.0:
            raise ValueError(f"Expected 0 < ramp_fraction <= 1. Received: {ramp_fraction!r}")
        if not 0.0 <= beta_min <= beta_max:
            raise ValueError(
                f"Expected 0 <= beta_min <= beta_max. Received: {beta_min!r}, {beta_max!r}"
            )
        self.schedule = schedule
        self.ramp_steps = steps if schedule == "linear" else max(1, round(steps * ramp_fraction))
        self.cycle_steps = cycle_steps
        self.beta_min = beta_min
        self.beta_max = beta_max

    def set_model(self, model):
        if not hasattr(model, "beta"):
            raise TypeError(
                "KLAnnealing sets the KL weight `beta` of a model with a KL term, such as "
                f"a keras_vae.VAE. Received: a {type(model).__name__}, which has none."
            )
        super().set_model(model)

    def beta_at(self, step):
        """Returns beta for a training step (0-based)."""
        if self.schedule == "cyclical":
            step %= self.cycle_steps
        progress = min(1.0, step / self.ramp_steps)
        return self.beta_min + (self.beta_max - self.beta_min) * progress

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.model.beta.assign(self.beta_at(step))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.model.beta.numpy())


class ImageLogger(keras.callbacks.Callback):
    """Writes sample and reconstruction grids to TensorBoard after every epoch.

    Samples decode the same latent vectors each epoch, so the pictures show the
    model changing, not the noise.

    Args:
        log_dir: TensorBoard log folder (images go to its `images` subfolder).
        test_images: array `(n, H, W, C)` to reconstruct.
        test_labels: their labels `(n,)`, which a conditional model needs, or `None`.
        samples: number of prior samples to show (of the classes in turn, for a
            conditional model).
        seed: seed of the latent vectors.
    """

    def __init__(self, log_dir, test_images, test_labels=None, samples=16, seed=0):
        super().__init__()
        self.log_dir = str(log_dir)
        self.test_images = np.asarray(test_images, dtype="float32")
        self.test_labels = test_labels
        self.samples = samples
        self.seed = seed
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
        self._z = (
            np.random.default_rng(self.seed)
            .standard_normal((self.samples, self.model.latent_dim))
            .astype("float32")
        )

    def on_epoch_end(self, epoch, logs=None):
        inputs = self.model.model_inputs
        labels = self.test_labels if inputs.conditional else None
        sample_labels = inputs.cycled_labels(self.samples)
        reconstructions = self.model.reconstruct(self.test_images, labels)
        pairs = np.stack([self.test_images, reconstructions], axis=1)
        pairs = pairs.reshape((-1,) + self.test_images.shape[1:])
        columns = 2 * min(8, len(self.test_images))
        with self._writer.as_default(step=epoch):
            samples = self.model.decode(self._z, sample_labels)
            tf.summary.image("samples", image_grid(samples, 4)[None], step=epoch)
            tf.summary.image("reconstructions", image_grid(pairs, columns)[None], step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        self._writer.close()


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with a clear error as soon as the loss is not finite.

    It raises before the epoch ends, so the epoch-end checkpoint of a
    `BackupCheckpoint` keeps the last good state, and the error says where it is.

    Args:
        backup: the run's `BackupCheckpoint`, or `None`.
    """

    def __init__(self, backup=None):
        super().__init__()
        self.backup = backup
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or np.all(np.isfinite(loss)):
            return
        latest = self.backup.latest() if self.backup is not None else None
        if latest is None:
            kept = "No epoch had completed, so there is no checkpoint."
        else:
            kept = (
                f"The last good checkpoint, after epoch {latest['epoch']}, is untouched in "
                f"{self.backup.backup_dir}: rerun the same command to resume from it, or "
                "lower the learning rate and pass --fresh to start again."
            )
        raise NonFiniteLossError(
            f"The training loss became {float(np.ravel(loss)[0])} in epoch {self._epoch + 1}, by "
            f"step {batch + 1}; training stopped. {kept}"
        )


class CheckpointError(RuntimeError):
    """A backup checkpoint is unreadable, so training cannot resume from it."""


class BackupCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and epoch after every epoch; restores them at start.

    Like Keras' `BackupAndRestore`, but a kill at any moment leaves a usable
    backup: the weights of epoch N are written to a temporary file and renamed
    to `epoch-N.weights.h5`, and only then does `latest.json` (itself replaced
    atomically) point to them. A restarted `fit` loads the latest pair and
    continues from the next epoch.

    Args:
        backup_dir: folder of the backup; one per worker.
        remove_when_done: whether to remove the folder when training ends;
            `False` leaves that to the caller, once what it writes after
            training is safe.
    """

    POINTER = "latest.json"

    def __init__(self, backup_dir, remove_when_done=True):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.remove_when_done = remove_when_done
        self.restored_epoch = 0

    def latest(self):
        """The `{"epoch", "weights"}` record of the latest backup, or `None`.

        Raises:
            CheckpointError: the record is unreadable.
        """
        pointer = self.backup_dir / self.POINTER
        if not pointer.is_file():
            return None
        try:
            record = json.loads(pointer.read_text())
            return {"epoch": int(record["epoch"]), "weights": str(record["weights"])}
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"The checkpoint record {pointer} is unreadable ({type(error).__name__}: "
                f"{error}), so training cannot resume from it."
            ) from None

    def on_train_begin(self, logs=None):
        latest = self.latest()
        if latest is None:
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        weights = self.backup_dir / latest["weights"]
        try:
            self.model.load_weights(weights)
        except Exception as error:
            raise CheckpointError(
                f"The checkpoint {weights} is missing or unreadable ({type(error).__name__}: "
                f"{error}), so training cannot resume from it."
            ) from None
        self.restored_epoch = latest["epoch"]
        # The attribute Keras' BackupAndRestore sets: fit starts from this epoch.
        self.model._initial_epoch = latest["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}.weights.h5"
        temporary = self.backup_dir / f".{name}.partial.weights.h5"
        self.model.save_weights(temporary, overwrite=True)
        os.replace(temporary, self.backup_dir / name)
        record = {"epoch": epoch + 1, "weights": name}
        write_bytes_atomically(self.backup_dir / self.POINTER, json.dumps(record).encode())
        for old in self.backup_dir.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink()

    def on_train_end(self, logs=None):
        if self.remove_when_done:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
