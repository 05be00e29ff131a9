import math

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae.evaluation import (
    active_units,
    bits_per_dim,
    evaluate_losses,
    importance_weighted_log_likelihood,
)

DATA_DIM, LATENT_DIM, NOISE_SCALE = 5, 2, 0.5


def ppca_model(posterior_shift=0.0, posterior_log_var_offset=0.0, seed=0):
    """Probabilistic PCA as a VAE: p(z)=N(0,I), p(x|z)=N(Wz+b, σ²I), linear encoder.

    W has orthogonal columns, so the true posterior is a diagonal Gaussian that
    the linear encoder represents exactly; the offsets move q away from it.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(DATA_DIM, LATENT_DIM)))
    weights = basis * np.array([2.0, 1.2])
    bias = rng.normal(size=DATA_DIM)
    precision = np.diag(weights.T @ weights) + NOISE_SCALE**2  # diagonal of M = WᵀW + σ²I

    images = keras.Input((DATA_DIM, 1, 1))
    flat = keras.layers.Flatten()(images)
    mean_layer, log_var_layer = keras.layers.Dense(LATENT_DIM), keras.layers.Dense(LATENT_DIM)
    encoder = keras.Model(images, [mean_layer(flat), log_var_layer(flat)])
    mean_layer.set_weights([weights / precision, -(bias @ weights) / precision + posterior_shift])
    log_var_layer.set_weights(
        [
            np.zeros((DATA_DIM, LATENT_DIM)),
            np.log(NOISE_SCALE**2 / precision) + posterior_log_var_offset,
        ]
    )
    z = keras.Input((LATENT_DIM,))
    project = keras.layers.Dense(DATA_DIM)
    decoder = keras.Model(z, keras.layers.Reshape((DATA_DIM, 1, 1))(project(z)))
    project.set_weights([weights.T, bias])
    likelihood = keras_vae.Gaussian(scale=NOISE_SCALE, link="identity")
    model = keras_vae.VAE(encoder, decoder, likelihood=likelihood, seed=seed)

    covariance = weights @ weights.T + NOISE_SCALE**2 * np.eye(DATA_DIM)
    x = rng.multivariate_normal(bias, covariance, size=300)
    _, log_det = np.linalg.slogdet(covariance)
    centred = x - bias
    mahalanobis = np.einsum("ni,ij,nj->n", centred, np.linalg.inv(covariance), centred)
    true_log_likelihood = -0.5 * (DATA_DIM * math.log(2 * math.pi) + log_det + mahalanobis)
    return model, x.reshape(-1, DATA_DIM, 1, 1).astype("float32"), true_log_likelihood


def test_with_the_exact_posterior_every_k_gives_the_true_log_likelihood():
    model, x, truth = ppca_model()
    for k, max_decodes in ((1, 8192), (64, 8192), (100, 30)):  # the last in chunks 30,30,30,10
        estimate = importance_weighted_log_likelihood(
            model, x, k=k, max_decodes_per_call=max_decodes
        )
        np.testing.assert_allclose(estimate, truth, atol=2e-4)


def test_the_bound_tightens_with_k_and_stays_below_the_truth():
    model, x, truth = ppca_model(posterior_shift=0.6, posterior_log_var_offset=1.0)
    gaps = []
    for k in (1, 10, 100, 1000):
        estimate = importance_weighted_log_likelihood(model, x, k=k, seed=k)
        gaps.append(float(np.mean(truth - estimate)))
    # Never above the truth in expectation (the mean over 300 examples), rising with k.
    assert all(gap > -0.01 for gap in gaps), gaps
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3], gaps
    assert gaps[0] > 0.5 and gaps[3] < 0.1 * gaps[0], gaps


def test_k_one_is_the_elbo_and_matches_the_analytic_elbo():
    model, x, _ = ppca_model(posterior_shift=0.3, posterior_log_var_offset=0.5)
    flat = x.reshape(len(x), DATA_DIM).astype("float64")
    mean, log_var = (np.asarray(t, "float64") for t in model.encoder(x))
    weights, bias = (w.astype("float64") for w in model.decoder.get_weights())  # Wᵀ, b
    # E_q[log p(x|z)] = -D/2 log(2πσ²) - (|x - Wμ - b|² + Σ_u |W_u|² var_u) / (2σ²)
    residual = np.sum((flat - mean @ weights - bias) ** 2, axis=1)
    spread = np.exp(log_var) @ np.sum(weights**2, axis=1)
    expected_log_likelihood = -0.5 * DATA_DIM * math.log(2 * math.pi * NOISE_SCALE**2) - (
        residual + spread
    ) / (2 * NOISE_SCALE**2)
    kl = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1)
    analytic_elbo = np.mean(expected_log_likelihood - kl)

    estimates = [
        importance_weighted_log_likelihood(model, x, k=1, seed=s).mean() for s in range(20)
    ]
    assert np.mean(estimates) == pytest.approx(analytic_elbo, abs=0.03)
    model.compile(optimizer="adam")
    repeated = np.tile(x, (20, 1, 1, 1))
    evaluated = model.evaluate(repeated, batch_size=1000, verbose=0, return_dict=True)["loss"]
    assert -evaluated == pytest.approx(analytic_elbo, abs=0.03)


def test_estimates_repeat_with_a_seed_and_bad_k_is_refused():
    model, x, _ = ppca_model(posterior_shift=0.3)
    first = importance_weighted_log_likelihood(model, x[:20], k=7, seed=3)
    np.testing.assert_array_equal(
        first, importance_weighted_log_likelihood(model, x[:20], k=7, seed=3)
    )
    with pytest.raises(ValueError, match="positive integer"):
        importance_weighted_log_likelihood(model, x, k=0)


def test_active_units_count_dimensions_whose_mean_varies():
    rng = np.random.default_rng(0)
    means = np.stack(
        [rng.normal(size=1000), 0.5 + 0.001 * rng.normal(size=1000), 0.3 * rng.normal(size=1000)],
        axis=1,
    )
    count, variances = active_units(means)
    assert count == 2
    np.testing.assert_allclose(variances, np.var(means, axis=0))


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


def test_losses_on_fixed_images_repeat_and_leave_the_noise_state_alone(small_trained_vae):
    vae, images = small_trained_vae
    state = vae.sampler.seed_generator.state.numpy().copy()
    first = evaluate_losses(vae, images, seed=3, batch_size=64)
    np.testing.assert_array_equal(vae.sampler.seed_generator.state.numpy(), state)
    assert evaluate_losses(vae, images, seed=3, batch_size=64) == first
    assert evaluate_losses(vae, images, seed=4, batch_size=64) != first
    assert first["loss"] == pytest.approx(first["reconstruction_loss"] + first["kl_loss"])
    # An independent computation with the same noise: the analytic KL of the
    # encoder's posterior and the Bernoulli NLL of a sample drawn by hand.
    mean, log_var = vae.encode(images)
    kl = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1)
    assert first["kl_loss"] == pytest.approx(kl.mean(), rel=1e-5)


def test_the_iwae_estimate_reports_its_progress_batch_by_batch():
    model, x, _ = ppca_model()
    calls = []
    importance_weighted_log_likelihood(
        model, x[:50], k=10, batch_size=16, progress=lambda done, total: calls.append(done)
    )
    assert calls == [16, 32, 48, 50]
