import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.sampling import Sampling, gaussian_kl_divergence


def kl_from_general_formula(mean, log_var):
    """KL(N(m1, s1²) ‖ N(m2, s2²)) = log(s2/s1) + (s1² + (m1-m2)²) / (2 s2²) - 1/2, m2=0, s2=1."""
    s1 = np.exp(0.5 * log_var.astype("float64"))
    return np.sum(-np.log(s1) + (s1**2 + mean.astype("float64") ** 2) / 2.0 - 0.5, axis=-1)


def test_kl_matches_the_general_gaussian_formula():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(7, 5)).astype("float32")
    log_var = rng.normal(size=(7, 5)).astype("float32")
    kl = keras.ops.convert_to_numpy(gaussian_kl_divergence(mean, log_var))
    np.testing.assert_allclose(kl, kl_from_general_formula(mean, log_var), rtol=1e-5)


def test_kl_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(1)
    mean = np.array([[0.7, -1.2, 0.1]], "float32")
    log_var = np.array([[-0.5, 0.4, -2.0]], "float32")
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.normal(size=(400_000, 3))
    log_q = -0.5 * (((z - mean) / std) ** 2 + np.log(2 * np.pi) + log_var)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    estimate = np.mean(np.sum(log_q - log_p, axis=-1))
    kl = float(gaussian_kl_divergence(mean, log_var)[0])
    assert abs(kl - estimate) < 0.01, (kl, estimate)


def test_kl_is_zero_for_the_prior():
    kl = gaussian_kl_divergence(np.zeros((2, 4), "float32"), np.zeros((2, 4), "float32"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kl), [0.0, 0.0])


def test_samples_have_the_posterior_moments():
    layer = Sampling(seed=3)
    mean = np.tile(np.array([[1.0, -2.0]], "float32"), (100_000, 1))
    log_var = np.tile(np.array([[0.0, np.log(0.25)]], "float32"), (100_000, 1))
    z = keras.ops.convert_to_numpy(layer([mean, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.01)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 0.5], atol=0.01)


def test_kl_is_added_as_a_beta_weighted_batch_mean():
    layer = Sampling(beta=0.25, seed=0)
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(6, 3)).astype("float32")
    log_var = rng.normal(size=(6, 3)).astype("float32")
    layer([mean, log_var])
    assert len(layer.losses) == 1
    expected = 0.25 * kl_from_general_formula(mean, log_var).mean()
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)


def test_gradients_flow_through_the_sample():
    layer = Sampling(seed=5)
    mean = tf.Variable(np.array([[0.3, -0.4]], "float32"))
    log_var = tf.Variable(np.array([[0.2, -1.0]], "float32"))
    with tf.GradientTape() as tape:
        z = layer([mean, log_var])
        total = tf.reduce_sum(z)
    d_mean, d_log_var = tape.gradient(total, [mean, log_var])
    epsilon = (z.numpy() - mean.numpy()) / np.exp(0.5 * log_var.numpy())
    np.testing.assert_allclose(d_mean.numpy(), [[1.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(
        d_log_var.numpy(), 0.5 * np.exp(0.5 * log_var.numpy()) * epsilon, rtol=1e-5
    )


def test_same_seed_gives_the_same_noise_and_config_round_trips():
    inputs = [np.zeros((4, 3), "float32"), np.zeros((4, 3), "float32")]
    first, second = Sampling(seed=11), Sampling(seed=11)
    np.testing.assert_array_equal(first(inputs), second(inputs))
    assert not np.array_equal(first(inputs), second.__class__(seed=12)(inputs))
    restored = Sampling.from_config(first.get_config())
    assert restored.get_config()["seed"] == 11
    assert restored.get_config()["beta"] == 1.0


@pytest.mark.parametrize("beta", [-1.0, "1"])
def test_bad_beta_is_refused(beta):
    with pytest.raises(ValueError, match="non-negative"):
        Sampling(beta=beta)


def test_free_bits_floor_each_dimensions_kl_in_the_added_loss():
    layer = Sampling(free_bits=0.5, seed=0)
    mean = np.array([[0.1, 2.0], [-0.1, 1.0]], "float32")
    log_var = np.zeros((2, 2), "float32")
    layer([mean, log_var])
    per_dimension = np.mean(0.5 * mean**2, axis=0)  # KL_d with unit variance = mean²/2
    expected = np.sum(np.maximum(per_dimension, 0.5))
    assert float(layer.losses[0]) == pytest.approx(expected, rel=1e-6)
    assert expected > np.sum(per_dimension)
