"""Small models whose likelihood is known in closed form, for the tests to check against."""

import math

import keras
import numpy as np

import keras_vae

DATA_DIM, LATENT_DIM, NOISE_SCALE = 5, 2, 0.5


def ppca_model(posterior_shift=0.0, posterior_log_var_offset=0.0, seed=0, importance_samples=1):
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
    model = keras_vae.VAE(
        encoder, decoder, likelihood=likelihood, seed=seed, importance_samples=importance_samples
    )

    covariance = weights @ weights.T + NOISE_SCALE**2 * np.eye(DATA_DIM)
    return (model, *_gaussian_data(rng, bias, covariance))


def two_level_gaussian_model(posterior_shift=0.0, seed=0, importance_samples=1):
    """A linear-Gaussian `HierarchicalVAE` with scalar z1 and z2, whose log p(x) is exact.

    p(z2)=N(0,1), p(z1|z2)=N(a z2 + b, s²), p(x|z1)=N(w z1 + c, σ²I). With
    scalar codes the true posteriors p(z1|x) and p(z2|z1) are the Gaussians the
    linear networks below represent exactly; `posterior_shift` moves q(z1|x).
    """
    rng = np.random.default_rng(seed)
    a, b, s = 1.5, 0.3, 0.6
    w, c = rng.normal(size=DATA_DIM), rng.normal(size=DATA_DIM)
    z1_variance = a**2 + s**2  # z1's marginal variance
    precision = 1.0 / z1_variance + w @ w / NOISE_SCALE**2  # of p(z1|x)
    top_precision = 1.0 + a**2 / s**2  # of p(z2|z1)

    def linear_gaussian(inputs, mean_weights, mean_bias, log_var):
        layer_input = keras.Input(inputs)
        flat = keras.layers.Flatten()(layer_input)
        mean_layer, log_var_layer = keras.layers.Dense(1), keras.layers.Dense(1)
        network = keras.Model(layer_input, [mean_layer(flat), log_var_layer(flat)])
        mean_weights = np.reshape(mean_weights, (-1, 1))
        mean_layer.set_weights([mean_weights, np.array([mean_bias])])
        log_var_layer.set_weights([np.zeros_like(mean_weights), np.array([log_var])])
        return network

    encoder = linear_gaussian(
        (DATA_DIM, 1, 1),
        w / NOISE_SCALE**2 / precision,
        (b / z1_variance - w @ c / NOISE_SCALE**2) / precision + posterior_shift,
        -math.log(precision),
    )
    top_encoder = linear_gaussian(
        (1,), a / s**2 / top_precision, -a * b / s**2 / top_precision, -math.log(top_precision)
    )
    top_decoder = linear_gaussian((1,), a, b, math.log(s**2))
    z = keras.Input((1,))
    project = keras.layers.Dense(DATA_DIM)
    decoder = keras.Model(z, keras.layers.Reshape((DATA_DIM, 1, 1))(project(z)))
    project.set_weights([w[None], c])
    model = keras_vae.HierarchicalVAE(
        encoder, decoder, top_encoder, top_decoder,
        likelihood=keras_vae.Gaussian(scale=NOISE_SCALE, link="identity"),
        seed=seed, importance_samples=importance_samples,
    )  # fmt: skip

    covariance = z1_variance * np.outer(w, w) + NOISE_SCALE**2 * np.eye(DATA_DIM)
    return (model, *_gaussian_data(rng, w * b + c, covariance))


def _gaussian_data(rng, mean, covariance, n=300):
    """`n` draws of N(mean, covariance) as `(n, DATA_DIM, 1, 1)` images, and their exact
    log-densities."""
    x = rng.multivariate_normal(mean, covariance, size=n)
    _, log_det = np.linalg.slogdet(covariance)
    centred = x - mean
    mahalanobis = np.einsum("ni,ij,nj->n", centred, np.linalg.inv(covariance), centred)
    log_density = -0.5 * (DATA_DIM * math.log(2 * math.pi) + log_det + mahalanobis)
    return x.reshape(-1, DATA_DIM, 1, 1).astype("float32"), log_density
