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
    paired_difference,
)
from tests.support.toy_models import DATA_DIM, NOISE_SCALE, ppca_model


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


GRID = np.linspace(-12.0, 12.0, 24001)  # z values for the exact integral over a 1-D latent


def bernoulli_model(seed=0):
    """A Bernoulli VAE with a 1-D latent whose log p(x) a dense grid integrates exactly.

    p(z) = N(0, 1), p(x|z) = Π_i Bernoulli(σ(w_i z + b_i)) over 4×4 pixels. Its
    encoder is linear, fitted afterwards to the exact posteriors' moments.
    """
    rng = np.random.default_rng(seed)
    weights, bias = rng.normal(size=16) * 1.5, rng.normal(size=16)
    z = keras.Input((1,))
    project = keras.layers.Dense(16)
    decoder = keras.Model(z, keras.layers.Reshape((4, 4, 1))(project(z)))
    project.set_weights([weights[None, :], bias])
    images = keras.Input((4, 4, 1))
    flat = keras.layers.Flatten()(images)
    mean_layer, log_var_layer = keras.layers.Dense(1), keras.layers.Dense(1)
    encoder = keras.Model(images, [mean_layer(flat), log_var_layer(flat)])
    model = keras_vae.VAE(encoder, decoder, likelihood="bernoulli", seed=seed)
    return model, weights, bias, (mean_layer, log_var_layer)


def exact_log_likelihood(x, weights, bias):
    """log p(x) and the posterior's mean and variance of each binary image, by summing
    p(x|z) p(z) over `GRID` in float64: an independent computation."""
    logits = GRID[:, None] * weights + bias  # (grid, pixels)
    flat = x.reshape(len(x), -1).astype("float64")
    log_joint = (
        flat @ logits.T
        - np.logaddexp(0.0, logits).sum(axis=1)
        - 0.5 * (GRID**2 + math.log(2 * math.pi))
    )  # (images, grid)
    step = GRID[1] - GRID[0]
    peak = log_joint.max(axis=1, keepdims=True)
    mass = np.exp(log_joint - peak)
    log_p = peak[:, 0] + np.log(mass.sum(axis=1) * step)
    posterior = mass / mass.sum(axis=1, keepdims=True)
    mean = posterior @ GRID
    return log_p, mean, posterior @ GRID**2 - mean**2


def test_the_published_protocol_on_a_fixed_binarised_test_set_gives_the_exact_likelihood(
    tmp_path,
):
    from keras_vae.evaluation import likelihood_figures
    from keras_vae.likelihood_protocols import PUBLISHED_K
    from keras_vae.run import RunData
    from keras_vae.run_config import RunConfig

    model, weights, bias, (mean_layer, log_var_layer) = bernoulli_model()
    # Grey images from the model: binarised, they are draws from its own p(x).
    rng = np.random.default_rng(1)
    grey = 1 / (1 + np.exp(-(rng.normal(size=(250, 1)) * weights + bias)))
    grey = np.round(255 * grey).astype("uint8").reshape(-1, 4, 4)
    np.savez(tmp_path / "grey.npz", x_train=grey, x_test=grey)

    config = RunConfig(dataset=str(tmp_path / "grey.npz"), preset="mlp_28")
    test = RunData(config).test_set
    # Binarised once, by the test seed alone: every run sees the same images.
    np.testing.assert_array_equal(test.images, RunData(config).test_set.images)
    assert not np.array_equal(test.images, RunData(config.replace(test_seed=1)).test_set.images)
    assert set(np.unique(test.images)) == {0.0, 1.0}
    assert abs(test.images.mean() - grey.mean() / 255) < 4 * 0.5 / math.sqrt(grey.size)
    assert "binarised once (seed 0)" in test.description

    truth, posterior_mean, posterior_var = exact_log_likelihood(test.images, weights, bias)
    flat = test.images.reshape(len(test.images), -1)
    fit, *_ = np.linalg.lstsq(np.c_[flat, np.ones(len(flat))], posterior_mean, rcond=None)
    mean_layer.set_weights([fit[:-1, None], fit[-1:]])
    # A proposal somewhat wider than the posteriors, as an encoder's often is.
    log_var_layer.set_weights([np.zeros((16, 1)), np.array([math.log(posterior_var.mean()) + 0.5])])

    # The default batching: 104 images of 5000 samples per call, the last call
    # partial; then 1500 decodes per call: 3 chunks of 1500 and one of 500.
    for max_decodes in (None, 1500):
        estimate = importance_weighted_log_likelihood(
            model, test.images, k=PUBLISHED_K, max_decodes_per_call=max_decodes, seed=2
        )
        gaps = truth - estimate
        assert np.abs(gaps).max() < 0.02, np.abs(gaps).max()
        assert -0.002 < gaps.mean() < 0.005, gaps.mean()
        figures = likelihood_figures(estimate, (4, 4, 1))
        assert figures["negative_log_likelihood"] == pytest.approx(-truth.mean(), abs=0.005)
        assert figures["standard_error"] == pytest.approx(
            truth.std(ddof=1) / math.sqrt(len(truth)), rel=0.01
        )
        assert figures["bits_per_dim"] == pytest.approx(-truth.mean() / (16 * math.log(2)), 1e-3)


def test_a_paired_difference_has_the_error_of_the_per_image_differences():
    rng = np.random.default_rng(0)
    baseline = rng.normal(-230.0, 80.0, size=10_000)  # images differ widely
    shifted = paired_difference(baseline - 1.5, baseline)
    assert shifted == {
        "difference": pytest.approx(1.5),
        "standard_error": pytest.approx(0, abs=1e-9),
    }
    # Per-image differences of spread 2 nats: the error is 2/√n, not the images' 80/√n.
    noisy = paired_difference(baseline + 0.5 + rng.normal(0.0, 2.0, size=10_000), baseline)
    assert noisy["difference"] == pytest.approx(-0.5, abs=4 * 0.02)
    assert noisy["standard_error"] == pytest.approx(2.0 / 100, rel=0.05)
    with pytest.raises(ValueError, match=r"Received: shapes \(3,\) and \(4,\)"):
        paired_difference(np.zeros(3), np.zeros(4))
