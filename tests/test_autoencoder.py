import warnings

import keras
import numpy as np
import pytest

import keras_vae


def test_autoencoder_trains_on_reconstruction_only(small_trained_vae):
    vae, images = small_trained_vae
    autoencoder = keras_vae.Autoencoder(
        keras.models.clone_model(vae.encoder), keras.models.clone_model(vae.decoder)
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
    # No sampler, KL weight or KL tracker: nothing a VAE has beyond the shared body.
    assert not hasattr(autoencoder, "sampler") and not hasattr(autoencoder, "beta")
    assert [metric.name for metric in autoencoder.metrics] == ["loss", "reconstruction_loss"]
    weights = {variable.path for variable in autoencoder.variables}
    assert not any("sampling" in path or "seed_generator" in path for path in weights)


def test_autoencoder_presets_and_saving(tmp_path):
    autoencoder = keras_vae.Autoencoder.from_preset("keras_io_mnist")
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
