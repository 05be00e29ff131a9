import glob
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae.callbacks import (
    BackupCheckpoint,
    EpochTimer,
    ImageLogger,
    KLAnnealing,
    NonFiniteLossError,
    StopOnNonFiniteLoss,
)
from tests.support.toy_data import prototype_images


def keras_io_vae():
    keras.utils.set_random_seed(0)
    return keras_vae.VAE.from_preset("keras_io_mnist", seed=0)


def test_linear_and_cyclical_schedules():
    linear = KLAnnealing("linear", warmup_steps=4, beta_min=0.2, beta_max=1.0)
    assert [linear.beta_at(s) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    cyclical = KLAnnealing("cyclical", cycle_steps=4, ramp_fraction=0.5)
    assert [cyclical.beta_at(s) for s in range(9)] == pytest.approx(
        [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 0.0]
    )
    with pytest.raises(ValueError, match="needs `cycle_steps`"):
        KLAnnealing("cyclical", warmup_steps=10)
    with pytest.raises(ValueError, match="one of"):
        KLAnnealing("cosine", warmup_steps=10)


def test_annealing_drives_beta_inside_fit_and_the_loss_uses_it(small_trained_vae):
    vae, images = small_trained_vae
    model = keras_vae.VAE.from_config(vae.get_config())
    model.set_weights(vae.get_weights())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(self.model.beta.numpy()))

    annealing = KLAnnealing("linear", warmup_steps=10)
    history = model.fit(
        images[:128], batch_size=32, epochs=3, verbose=0, callbacks=[annealing, Spy()]
    )
    assert seen == pytest.approx([annealing.beta_at(s) for s in range(12)])
    assert history.history["beta"] == pytest.approx([0.3, 0.7, 1.0])
    # Resuming continues from the optimizer's step, not from zero.
    model.fit(images[:32], batch_size=32, epochs=1, verbose=0, callbacks=[annealing])
    assert float(model.beta.numpy()) == 1.0


def test_annealing_an_autoencoder_is_refused_before_training():
    autoencoder = keras_vae.Autoencoder.from_preset("keras_io_mnist")
    autoencoder.compile(optimizer="adam")
    images = prototype_images(8, (28, 28, 1))
    with pytest.raises(TypeError, match="KLAnnealing.*Received: a Autoencoder"):
        autoencoder.fit(images, epochs=1, verbose=0, callbacks=[KLAnnealing(warmup_steps=5)])
    assert int(autoencoder.optimizer.iterations.numpy()) == 0


def test_image_logger_writes_tensorboard_images(small_trained_vae, tmp_path):
    vae, images = small_trained_vae
    model = keras_vae.VAE.from_config(vae.get_config())
    model.set_weights(vae.get_weights())
    model.compile(optimizer="adam")
    timer = EpochTimer()
    logger = ImageLogger(tmp_path, images[:4], samples=8)
    model.fit(images[:64], batch_size=32, epochs=2, verbose=0, callbacks=[logger, timer])
    assert len(timer.seconds) == 2
    events = glob.glob(str(tmp_path / "images" / "events.out.tfevents.*"))
    assert len(events) == 1
    tags = {}
    for record in tf.compat.v1.train.summary_iterator(events[0]):
        for value in record.summary.value:
            tags.setdefault(value.tag, []).append(record.step)
    assert tags == {"samples": [0, 1], "reconstructions": [0, 1]}


def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    vae = keras_io_vae()
    vae.compile(optimizer="adam")
    images = prototype_images(128, (28, 28, 1))

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                bias = self.model.decoder.get_layer("params").bias
                bias.assign(np.full(bias.shape, np.inf, "float32"))

    backup = BackupCheckpoint(tmp_path / "backup")
    with pytest.raises(NonFiniteLossError, match=r"epoch 3, by step 1.*after epoch 2.*untouched"):
        vae.fit(images, batch_size=32, epochs=5, verbose=0,
                callbacks=[backup, StopOnNonFiniteLoss(backup), Poison()])  # fmt: skip
    assert backup.latest() == {"epoch": 2, "weights": "epoch-0002.weights.h5"}
    restored = keras_io_vae()
    restored.compile(optimizer="adam")
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(tmp_path / "backup" / "epoch-0002.weights.h5")
    assert all(np.all(np.isfinite(w)) for w in restored.get_weights())


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    vae = keras_io_vae()
    vae.compile(optimizer="adam")
    images = prototype_images(64, (28, 28, 1))
    backup = BackupCheckpoint(tmp_path / "backup")
    vae.fit(images, batch_size=32, epochs=1, verbose=0, callbacks=[backup])
    # fit removes the backup when it finishes; make one by hand, then break the next.
    backup.set_model(vae)
    backup.on_epoch_end(0)
    original_save = vae.save_weights

    def dies_half_way(path, overwrite=True):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt("killed")

    vae.save_weights = dies_half_way
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    vae.save_weights = original_save
    assert backup.latest() == {"epoch": 1, "weights": "epoch-0001.weights.h5"}
    fresh = keras_io_vae()
    fresh.compile(optimizer="adam")
    resumer = BackupCheckpoint(tmp_path / "backup")
    resumer.set_model(fresh)
    resumer.on_train_begin()
    assert resumer.restored_epoch == 1
    for restored, saved in zip(fresh.get_weights(), vae.get_weights(), strict=True):
        np.testing.assert_array_equal(restored, saved)
