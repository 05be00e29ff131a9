import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import architectures
from tests.support.toy_data import prototype_images


def small_vae(beta=1.0, seed=0, likelihood="bernoulli", shape=(12, 12, 1)):
    keras.utils.set_random_seed(seed)
    return keras_vae.VAE(
        architectures.conv_encoder(shape, 3, filters=(4, 8), hidden_units=(16,)),
        architectures.conv_decoder(shape, 3, filters=(8, 4), start_channels=8),
        likelihood=likelihood,
        beta=beta,
        seed=seed,
    )


def test_reported_loss_is_reconstruction_plus_beta_kl_and_kl_is_the_encoder_kl():
    vae = small_vae(beta=0.5)
    vae.compile(optimizer="adam")
    x = prototype_images(64)
    metrics = vae.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        metrics["loss"], metrics["reconstruction_loss"] + 0.5 * metrics["kl_loss"], rtol=1e-6
    )
    mean, log_var = vae.encode(x)
    expected_kl = np.mean(-0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1))
    np.testing.assert_allclose(metrics["kl_loss"], expected_kl, rtol=1e-5)


def test_reconstruction_loss_is_the_bernoulli_nll_of_a_posterior_sample():
    vae = small_vae()
    vae.compile(optimizer="adam")
    x = prototype_images(16)
    state = vae.sampler.seed_generator.state.numpy().copy()
    metrics = vae.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    # Replay the same noise by hand: reset the seed state and sample once more.
    vae.sampler.seed_generator.state.assign(state)
    mean, log_var = vae.encoder(x)
    z = vae.sampler([mean, log_var])
    p = 1 / (1 + np.exp(-vae.decoder(z).numpy().astype("float64")))
    nll = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(metrics["reconstruction_loss"], nll.mean(), rtol=1e-5)


def test_fit_with_validation_data_and_callbacks_lowers_the_loss():
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = prototype_images(256)
    stop = keras.callbacks.EarlyStopping(monitor="val_kl_loss", mode="min", patience=100)
    history = vae.fit(
        x, epochs=15, batch_size=32, validation_data=(x[:64],), callbacks=[stop], verbose=0
    ).history
    assert set(history) >= {"loss", "kl_loss", "val_loss", "val_reconstruction_loss"}
    assert history["val_loss"][-1] < 0.6 * history["val_loss"][0]
    assert vae.predict(x[:5], verbose=0).shape == (5, 12, 12, 1)


# A .keras file, and Keras' unzipped folder: the format Keras uploads for an hf:// path.
@pytest.mark.parametrize("zipped", [True, pytest.param(False, marks=pytest.mark.training)])
def test_save_and_load_round_trip_with_safe_mode(tmp_path, zipped):
    vae = small_vae(likelihood="gaussian")
    vae.compile(optimizer="adam")
    x = prototype_images(64)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / ("vae.keras" if zipped else "vae")
    keras.saving.save_model(vae, path, zipped=zipped)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.likelihood, keras_vae.Gaussian)
    np.testing.assert_array_equal(loaded.reconstruct(x[:8]), vae.reconstruct(x[:8]))
    # Sampling state, weights and optimizer state come back: the same samples and the
    # same next training epoch.
    np.testing.assert_array_equal(loaded(x[:8], sample=True), vae(x[:8], sample=True))
    vae.fit(x, epochs=1, batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x, epochs=1, batch_size=16, verbose=0, shuffle=False)
    for original, restored in zip(vae.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(original.numpy(), restored.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "shape", [(12, 12, 1), pytest.param((8, 8, 1), marks=pytest.mark.training)]
)
def test_a_seeded_run_repeats(shape):
    # On 8x8 images two blocks convolve 2x2 maps as one matrix product.
    def trained_weights():
        vae = small_vae(seed=4, shape=shape)
        vae.compile(optimizer="adam")
        vae.fit(prototype_images(64, shape), epochs=2, batch_size=16, verbose=0, shuffle=False)
        return vae.get_weights()

    for first, second in zip(trained_weights(), trained_weights(), strict=True):
        np.testing.assert_array_equal(first, second)


def test_user_methods():
    vae = small_vae()
    x = prototype_images(8)
    mean, log_var = vae.encode(x)
    assert mean.shape == log_var.shape == (8, 3)
    np.testing.assert_allclose(vae.reconstruct(x), vae.decode(mean), rtol=1e-6)
    np.testing.assert_array_equal(vae.sample(4, seed=1), vae.sample(4, seed=1))
    path = vae.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 12, 12, 1)
    np.testing.assert_allclose(path[0], vae.reconstruct(x[:1])[0], atol=1e-6)
    np.testing.assert_allclose(path[-1], vae.reconstruct(x[1:2])[0], atol=1e-6)
    assert vae.interpolate(x[:2], x[2:4], steps=3).shape == (3, 2, 12, 12, 1)


def test_bad_inputs_get_clear_errors():
    vae = small_vae()
    with pytest.raises(
        ValueError, match=r"expects images of shape \(batch, 12, 12, 1\).*\(2, 28, 28, 1\)"
    ):
        vae(np.zeros((2, 28, 28, 1), "float32"))
    with pytest.raises(ValueError, match=r"expects images of shape.*\(2, 12, 12\)"):
        vae.encode(np.zeros((2, 12, 12), "float32"))
    with pytest.raises(ValueError, match=r"\(2, 12, 12\). The images have no channel axis"):
        vae.predict(np.zeros((2, 12, 12), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"latent vectors of shape \(n, 3\).*\(2, 4\)"):
        vae.decode(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN or infinite.*1 of"):
        vae.reconstruct(np.where(np.arange(144).reshape(1, 12, 12, 1) == 5, np.nan, 0.0))
    with pytest.raises(ValueError, match="same shape"):
        vae.interpolate(np.zeros((12, 12, 1)), np.zeros((2, 12, 12, 1)))
    encoder = architectures.mlp_encoder((12, 12, 1), 3)
    with pytest.raises(ValueError, match=r"decoder to output images.*\(12, 12, 1\)"):
        keras_vae.VAE(encoder, architectures.mlp_decoder((10, 10, 1), 3))
    with pytest.raises(ValueError, match=r"latent vectors of shape \(batch, 3\)"):
        keras_vae.VAE(encoder, architectures.mlp_decoder((12, 12, 1), 4))


def test_encode_refuses_pixels_outside_the_likelihoods_support_as_fit_does():
    vae = small_vae()
    with pytest.raises(ValueError, match=r"Expected pixel values in \[0, 1\].*from 0 to 200.*255"):
        vae.encode(np.concatenate([np.zeros((1, 12, 12, 1)), np.full((1, 12, 12, 1), 200)]))
    with pytest.raises(ValueError, match=r"from -0.5 to -0.5"):
        vae.reconstruct(np.full((1, 12, 12, 1), -0.5))


def test_an_empty_batch_in_is_an_empty_batch_out():
    vae = small_vae()
    mean, log_var = vae.encode(np.zeros((0, 12, 12, 1)))
    assert mean.shape == log_var.shape == (0, 3) and mean.dtype == np.float32
    assert vae.decode(np.zeros((0, 3))).shape == (0, 12, 12, 1)
    assert vae.reconstruct(np.zeros((0, 12, 12, 1))).shape == (0, 12, 12, 1)
    # The same calls with rows give rows of those shapes.
    assert vae.reconstruct(np.zeros((2, 12, 12, 1))).shape == (2, 12, 12, 1)


def test_a_latent_size_larger_than_the_image_is_refused_before_any_weight_is_made():
    with pytest.raises(ValueError, match=r"latent_dim` of at most 784.*latent_dim=1000000000"):
        keras_vae.VAE.from_preset("mlp_28", latent_dim=10**9)
    assert keras_vae.VAE.from_preset("mlp_28", latent_dim=784).latent_dim == 784


def test_training_on_wrongly_shaped_data_fails_before_the_first_step():
    vae = small_vae()
    vae.compile(optimizer="adam")
    data = tf.data.Dataset.from_tensor_slices(np.zeros((8, 10, 10, 1), "float32")).batch(4)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 12, 12, 1\)"):
        vae.fit(data, epochs=1, verbose=0)


def test_non_finite_input_data_is_reported_with_its_position():
    vae = keras_vae.VAE.from_preset("keras_io_mnist", seed=0)
    vae.compile(optimizer="adam")
    images = prototype_images(64, (28, 28, 1))
    images[37, 3, 4, 0] = np.nan  # batch 3 (1-based) of 16, position 5
    with pytest.raises(Exception, match=r"(?s)training step.*3.*examples.*\[5\]"):
        vae.fit(images, batch_size=16, epochs=1, verbose=0, shuffle=False)


def test_mixed_precision_keeps_sampling_kl_and_likelihood_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        vae = keras_vae.VAE.from_preset("keras_io_mnist", seed=0)
        vae.compile(optimizer="adam")
        images = prototype_images(64, (28, 28, 1))
        history = vae.fit(images, batch_size=32, epochs=2, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
    convolutions = [c for c in vae.encoder.layers if isinstance(c, keras.layers.Conv2D)]
    assert convolutions and all(c.compute_dtype == "float16" for c in convolutions)
    for layer in (vae.sampler, vae.likelihood, vae.encoder.get_layer("mean"),
                  vae.decoder.get_layer("params")):  # fmt: skip
        assert layer.compute_dtype == "float32", layer.name
    assert np.all(np.isfinite(history["loss"])) and history["loss"][1] < history["loss"][0]


def test_nonsense_arguments_are_refused_where_they_enter():
    vae = small_vae()
    for n in (-1, 2.5, True):
        with pytest.raises(ValueError, match=f"non-negative integer. Received: n={n!r}"):
            vae.sample(n)
    assert vae.sample(0).shape == (0, 12, 12, 1)
    with pytest.raises(ValueError, match="array of numbers of one shape"):
        vae.decode([[0.0, 1.0, 2.0], [0.0]])
    for beta in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="finite, non-negative number"):
            small_vae(beta=beta)
    with pytest.raises(ValueError, match=r"\(height, width, channels\).*\(\)"):
        keras_vae.VAE.from_preset("mlp_28", input_shape=())
    with pytest.raises(ValueError, match=r"of positive integers.*\('28', '28', '1'\)"):
        keras_vae.VAE.from_preset("mlp_28", input_shape=("28", "28", "1"))
    vae.compile(optimizer="adam")
    for method in (vae.fit, vae.evaluate):
        with pytest.raises(ValueError, match=r"at least one image.*empty array of shape \(0, 12"):
            method(np.zeros((0, 12, 12, 1), "float32"), verbose=0)
    assert int(vae.optimizer.iterations.numpy()) == 0


def test_compile_refuses_a_loss_or_metrics_with_the_reason():
    vae = small_vae()
    for arguments in ({"loss": "mse"}, {"metrics": ["mae"]}, {"loss_weights": [1.0]}):
        with pytest.raises(ValueError, match=r"takes no loss or metrics.*negative ELBO.*Received"):
            vae.compile(optimizer="adam", **arguments)
    vae.compile(optimizer="adam", steps_per_execution=2)
    assert vae.steps_per_execution == 2


def test_pixels_outside_the_bernoulli_support_fail_the_step():
    images = np.random.default_rng(0).integers(0, 256, (16, 12, 12, 1)).astype("float32")
    vae = small_vae()
    vae.compile(optimizer="adam")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\].*Divide 8-bit"):
        vae.fit(images, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\].*evaluation batch"):
        vae.evaluate(images, batch_size=8, verbose=0)
    # A Gaussian's support is every real value.
    gaussian = small_vae(likelihood="gaussian")
    gaussian.compile(optimizer="adam")
    assert np.isfinite(gaussian.evaluate(images, batch_size=8, verbose=0)[0])


def test_images_without_a_channel_axis_get_the_right_advice():
    vae = small_vae()
    with pytest.raises(ValueError, match=r"no channel axis: add one with images\[\.\.\., None\]"):
        vae.encode(np.zeros((32, 12, 12), "float32"))
    with pytest.raises(ValueError, match="4-D array"):
        vae.encode(np.zeros((12, 12), "float32"))


def test_encode_decode_and_reconstruct_take_tf_data_datasets():
    vae = small_vae()
    images = prototype_images(20, (12, 12, 1))
    labels = np.arange(20)
    expected_mean, expected_log_var = vae.encode(images)
    for dataset in (
        tf.data.Dataset.from_tensor_slices((images, labels)).batch(8),  # as load_images gives
        tf.data.Dataset.from_tensor_slices(images),  # unbatched, images alone
    ):
        mean, log_var = vae.encode(dataset)
        np.testing.assert_allclose(mean, expected_mean, atol=1e-6)
        np.testing.assert_allclose(log_var, expected_log_var, atol=1e-6)
        np.testing.assert_allclose(vae.reconstruct(dataset), vae.reconstruct(images), atol=1e-6)
    z = np.random.default_rng(0).standard_normal((10, 3)).astype("float32")
    decoded = vae.decode(tf.data.Dataset.from_tensor_slices(z).batch(4))
    np.testing.assert_allclose(decoded, vae.decode(z), atol=1e-6)
    with pytest.raises(ValueError, match="empty dataset"):
        vae.encode(tf.data.Dataset.from_tensor_slices(images[:0]))


def test_predict_is_deterministic_and_sampling_is_on_request():
    vae = small_vae()
    x = prototype_images(8)
    first, second = vae.predict(x, verbose=0), vae.predict(x, verbose=0)
    np.testing.assert_array_equal(first, second)
    # The posterior mean's decoding, computed from the two networks apart.
    mean, _ = vae.encoder(x)
    expected = keras.ops.sigmoid(vae.decoder(mean))
    np.testing.assert_allclose(first, expected, atol=1e-6)
    sampled = [vae(x, sample=True).numpy() for _ in range(2)]
    assert np.abs(sampled[0] - sampled[1]).max() > 1e-3
    assert np.abs(vae(x, training=True).numpy() - first).max() > 1e-3


def test_a_second_fit_after_a_failed_first_one_trains():
    vae = small_vae()
    vae.compile(optimizer="adam")
    before = [w.copy() for w in vae.get_weights()]
    with pytest.raises(tf.errors.InvalidArgumentError, match="Divide 8-bit images by 255"):
        vae.fit(prototype_images(32) * 255.0, batch_size=16, epochs=1, verbose=0)
    # The failing batch changed nothing: no weight, no optimizer state.
    for old, new in zip(before, vae.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert int(vae.optimizer.iterations) == 0
    assert all(np.all(v.numpy() == 0) for v in vae.optimizer.variables[2:])
    history = vae.fit(prototype_images(32), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert int(vae.optimizer.iterations) == 2


def test_calls_on_batches_of_many_sizes_trace_no_more_functions(caplog):
    images = prototype_images(40)
    with caplog.at_level("WARNING", logger="tensorflow"):
        # Several models in turn, as the evaluation job uses a VAE and an autoencoder.
        for seed in range(3):
            vae = small_vae(seed=seed)
            for n in (1, 5, 16, 2, 24, 7, 3, 9):
                vae.sample(n, seed=0)
                vae.reconstruct(images[:n])
                vae.interpolate(images[0], images[1])
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    # The batched path gives what one call on all the images gives.
    np.testing.assert_allclose(vae.encode(images, batch_size=7)[0], vae.encoder(images)[0],
                               atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="batch_size"):
        vae.encode(images, batch_size=0)


def test_fit_on_a_dataset_does_not_warn_that_shuffle_is_ignored():
    vae = small_vae()
    vae.compile(optimizer="adam")
    dataset = tf.data.Dataset.from_tensor_slices(prototype_images(32)).batch(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae.fit(dataset, epochs=1, verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)]
