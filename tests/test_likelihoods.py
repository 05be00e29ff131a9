import math

import numpy as np
import pytest

from keras_vae import likelihoods


def test_bernoulli_matches_the_log_probability_of_each_pixel():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(3, 4, 5, 2)).astype("float32")
    x = (rng.random((3, 4, 5, 2)) > 0.5).astype("float32")
    p = 1.0 / (1.0 + np.exp(-logits.astype("float64")))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    nll = likelihoods.Bernoulli().negative_log_likelihood(x, logits)
    np.testing.assert_allclose(nll, expected, rtol=1e-5)


def test_bernoulli_mean_is_the_pixel_probability():
    logits = np.array([[[[0.0], [2.0]]]], "float32")
    np.testing.assert_allclose(likelihoods.Bernoulli()(logits), 1 / (1 + np.exp(-logits)))


def test_gaussian_matches_the_density():
    rng = np.random.default_rng(1)
    params = rng.normal(size=(2, 3, 3, 1)).astype("float32")
    x = rng.random((2, 3, 3, 1)).astype("float32")
    scale = 0.3
    mu = 1.0 / (1.0 + np.exp(-params.astype("float64")))
    density = np.exp(-((x - mu) ** 2) / (2 * scale**2)) / (scale * math.sqrt(2 * math.pi))
    expected = -np.sum(np.log(density), axis=(1, 2, 3))
    nll = likelihoods.Gaussian(scale=scale).negative_log_likelihood(x, params)
    np.testing.assert_allclose(nll, expected, rtol=1e-5)


def test_gaussian_scale_is_learned_only_when_not_given():
    assert likelihoods.Gaussian().log_scale.trainable
    assert not likelihoods.Gaussian(scale=0.5).log_scale.trainable
    assert likelihoods.get("gaussian").scale is None


def test_unknown_names_and_bad_scales_are_refused():
    with pytest.raises(ValueError, match="Unknown likelihood.*'poisson'"):
        likelihoods.get("poisson")
    with pytest.raises(ValueError, match="positive number"):
        likelihoods.Gaussian(scale=0.0)


def test_likelihoods_describe_themselves():
    bernoulli, gaussian = likelihoods.get("bernoulli"), likelihoods.get("gaussian")
    assert (bernoulli.distribution, bernoulli.discrete) == ("bernoulli", True)
    assert (gaussian.distribution, gaussian.discrete) == ("gaussian", False)
    assert "probabilities" in bernoulli.mean_meaning and "means" in gaussian.mean_meaning
