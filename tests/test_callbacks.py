import glob
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae.callbacks import EpochTimer, ImageLogger, KLAnnealing


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


def test_free_bits_floor_each_dimensions_kl_in_the_added_loss():
    layer = keras_vae.Sampling(free_bits=0.5, seed=0)
    mean = np.array([[0.1, 2.0], [-0.1, 1.0]], "float32")
    log_var = np.zeros((2, 2), "float32")
    layer([mean, log_var])
    per_dimension = np.mean(0.5 * mean**2, axis=0)  # KL_d with unit variance = mean²/2
    expected = np.sum(np.maximum(per_dimension, 0.5))
    assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-6)
    assert expected > np.sum(per_dimension)


def test_autoencoder_trains_on_reconstruction_only(small_trained_vae):
    vae, images = small_trained_vae
    autoencoder = keras_vae.Autoencoder(
        keras.models.clone_model(vae.encoder), keras.models.clone_model(vae.decoder), seed=0
    )
    autoencoder.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = autoencoder.fit(images, batch_size=32, epochs=4, verbose=0).history
    assert set(history) == {"loss", "reconstruction_loss"}
    assert history["loss"] == pytest.approx(history["reconstruction_loss"])
    assert history["loss"][-1] < history["loss"][0]
    mean, _ = autoencoder.encode(images[:4])
    np.testing.assert_allclose(
        autoencoder.predict(images[:4], verbose=0), autoencoder.decode(mean), atol=1e-6
    )
    assert not autoencoder.losses or float(keras.ops.sum(autoencoder.losses)) == 0.0


def test_autoencoder_presets_and_saving(tmp_path):
    autoencoder = keras_vae.Autoencoder.from_preset("keras_io_mnist", seed=0)
    assert isinstance(autoencoder, keras_vae.Autoencoder)
    assert autoencoder.name == "autoencoder_keras_io_mnist"
    autoencoder.compile(optimizer="adam")
    x = np.zeros((4, 28, 28, 1), "float32")
    autoencoder.fit(x, epochs=1, verbose=0)
    autoencoder.save(tmp_path / "ae.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Skipping variable loading for optimizer"
        loaded = keras.models.load_model(tmp_path / "ae.keras")
    assert isinstance(loaded, keras_vae.Autoencoder)
    for restored, saved in zip(
        loaded.optimizer.variables, autoencoder.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(restored, saved)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), autoencoder.predict(x, verbose=0))


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
