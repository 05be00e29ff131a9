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
    x = rng.multivariate_normal(bias, covariance, size=300)
    _, log_det = np.linalg.slogdet(covariance)
    centred = x - bias
    mahalanobis = np.einsum("ni,ij,nj->n", centred, np.linalg.inv(covariance), centred)
    true_log_likelihood = -0.5 * (DATA_DIM * math.log(2 * math.pi) + log_det + mahalanobis)
    return model, x.reshape(-1, DATA_DIM, 1, 1).astype("float32"), true_log_likelihood
