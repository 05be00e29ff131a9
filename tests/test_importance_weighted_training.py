import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import architectures
from keras_vae.evaluation import importance_weighted_log_likelihood
from keras_vae.run import build_model
from keras_vae.run_config import RunConfig
from tests.support.replicas import assert_one_step_on_two_replicas_equals_one, two_replicas
from tests.support.toy_data import prototype_images
from tests.support.toy_models import ppca_model


def objective(model, x):
    """The per-example loss a training step of `model` minimises on `x`."""
    values, penalty, _, _ = model._objective(tf.constant(x), None)
    return np.asarray(values) + float(penalty)


def test_with_the_exact_posterior_the_objective_is_minus_log_p_x_for_every_draw():
    model, x, truth = ppca_model(importance_samples=7)
    for _ in range(3):
        np.testing.assert_allclose(objective(model, x), -truth, atol=2e-4)


def test_the_objective_is_the_evaluations_iwae_bound_and_tightens_with_k():
    means = {}
    for k in (2, 50):
        model, x, truth = ppca_model(
            posterior_shift=0.6, posterior_log_var_offset=1.0, importance_samples=k
        )
        repeated = np.tile(x, (20, 1, 1, 1))  # 20 draws for each example
        draws = objective(model, repeated)
        # A second implementation of the same bound: the evaluation's estimator.
        estimates = -importance_weighted_log_likelihood(model, repeated, k=k, seed=k)
        error = np.hypot(draws.std(), estimates.std()) / np.sqrt(len(draws))
        assert abs(draws.mean() - estimates.mean()) < 4 * error, (k, error)
        means[k] = draws.mean()
    assert -truth.mean() - 0.01 < means[50] < means[2] - 0.1, means


def small_vae(importance_samples, seed=0):
    keras.utils.set_random_seed(seed)
    return keras_vae.VAE(
        architectures.mlp_encoder((8, 8, 1), 3, hidden_units=(32,)),
        architectures.mlp_decoder((8, 8, 1), 3, hidden_units=(32,)),
        seed=seed,
        importance_samples=importance_samples,
    )


def test_fit_on_the_bound_reports_the_elbo_and_saves_k(tmp_path):
    images = prototype_images(256, (8, 8, 1))
    vae = small_vae(importance_samples=5)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(images, epochs=4, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    # The reported loss is the ELBO's: reconstruction (over the k samples) + KL.
    np.testing.assert_allclose(
        history["loss"], np.add(history["reconstruction_loss"], history["kl_loss"]), rtol=1e-5
    )
    vae.save(tmp_path / "vae.keras")
    assert keras.saving.load_model(tmp_path / "vae.keras").importance_samples == 5


@pytest.mark.training
def test_one_step_on_the_bound_on_two_replicas_equals_one_step_on_one():
    data = tf.data.Dataset.from_tensor_slices(prototype_images(16, (8, 8, 1))).batch(16)

    def build(strategy):
        with strategy.scope():
            vae = small_vae(importance_samples=3, seed=1)
            vae.compile(optimizer=keras.optimizers.SGD(1e-3))
        return vae

    one, two = build(tf.distribute.get_strategy()), build(two_replicas())
    assert_one_step_on_two_replicas_equals_one(one, two, data, batch_norm=False)


def test_runs_train_on_the_bound_and_refuse_what_it_cannot_have():
    config = RunConfig(preset="mlp_28", importance_samples=4)
    assert build_model(config).importance_samples == 4
    with pytest.raises(ValueError, match="importance_samples=1 with model='autoencoder'"):
        config.replace(free_bits=0.5)
    with pytest.raises(ValueError, match="positive integer"):
        config.replace(importance_samples=0)
    with pytest.raises(ValueError, match="Expected free_bits=0 with importance_samples > 1"):
        small_vae(importance_samples=2).__class__(
            architectures.mlp_encoder((8, 8, 1), 3),
            architectures.mlp_decoder((8, 8, 1), 3),
            free_bits=0.1,
            importance_samples=2,
        )


def test_a_conditional_vae_trains_on_the_bound_given_its_labels():
    from keras_vae.conditional_vae import ConditionalVAE

    keras.utils.set_random_seed(0)
    networks = architectures.conditional_networks("mlp", (8, 8, 1), 3, 2)
    cvae = ConditionalVAE(*networks, num_classes=2, importance_samples=4, seed=0)
    cvae.compile(optimizer="adam")
    images = prototype_images(64, (8, 8, 1))
    labels = np.arange(64) % 2
    history = cvae.fit(images, labels, epochs=2, batch_size=16, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    # With the same noise, the same labels give the same bound and the other labels
    # another: the labels reach the encoder and the decoder.
    state = cvae.sampler.seed_generator.state
    start = np.asarray(state)
    values = []
    for y in (labels, labels, 1 - labels):
        state.assign(start)
        values.append(
            np.asarray(cvae._objective(tf.constant(images), cvae.one_hot_labels(y, 64))[0])
        )
    np.testing.assert_array_equal(values[0], values[1])
    assert np.abs(values[0] - values[2]).mean() > 0.01
