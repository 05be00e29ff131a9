"""Likelihood estimates and latent statistics of a trained VAE.

- `evaluate_losses`: a model's losses on fixed images with fixed sampling noise,
  the same figures from every caller.
- `importance_weighted_log_likelihood`: the IWAE bound on log p(x) with k samples
  (Burda et al., 2016), which tightens towards log p(x) as k grows; k=1 is the ELBO.
- `active_units`: latent dimensions whose posterior mean varies across the data.
- `likelihood_figures`: mean negative log-likelihood, its standard error, bits
  per dimension.
- `paired_difference`: how much one model's likelihood differs from another's on
  the same images, with the error of that difference.
- `bits_per_dim`: nats per example expressed per data dimension in bits.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# Decoded values (latent vectors × pixels) per call of the estimator: about 32 MB
# per float32 tensor whatever the image size.
DECODED_VALUES_PER_CALL = 2**23


def importance_weighted_log_likelihood(
    model,
    images,
    k=1000,
    batch_size=None,
    max_decodes_per_call=None,
    seed=0,
    progress=None,
    labels=None,
):
    """Estimates log p(x) of each image with the k-sample importance-weighted bound.

    For each image, `k` latent vectors are drawn from q(z|x) and
    `log (1/k) Σ p(x|z_i) p(z_i) / q(z_i|x)` is computed with a log-sum-exp over
    the samples. The encoder runs once per batch of images; the samples are
    decoded in chunks so that memory stays bounded. In expectation the
    estimate never exceeds log p(x) and rises towards it as `k` grows.

    Args:
        model: a `keras_vae.VAE`.
        images: array `(n, H, W, C)`, preprocessed as for training.
        k: importance samples per image.
        batch_size: images per call; by default as many as fit in
            `max_decodes_per_call` decodes.
        max_decodes_per_call: bound on `batch_size * samples per chunk`; by
            default `DECODED_VALUES_PER_CALL` divided by the pixels of an image.
        seed: int, seed of the samples.
        progress: `None`, or a function called with `(images done, images)`
            after each batch.
        labels: the images' labels `(n,)`, which a conditional model needs
            (the estimate is then of log p(x|y)), or `None`.

    Returns:
        A float64 NumPy array of shape `(n,)`: the estimate of log p(x) in nats.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"Expected `k` to be a positive integer. Received: k={k!r}")
    images = np.asarray(images, dtype="float32")
    conditional = model.model_inputs.conditional
    # An unconditional model gets no labels: an empty (n, 0) array stands in.
    one_hot = (
        model.one_hot_labels(labels, len(images)) if conditional
        else np.zeros((len(images), 0), "float32")
    )  # fmt: skip
    if max_decodes_per_call is None:
        max_decodes_per_call = max(1, DECODED_VALUES_PER_CALL // math.prod(images.shape[1:]))
    chunk = min(k, max_decodes_per_call)
    batch_size = batch_size or max(1, max_decodes_per_call // chunk)
    seed_generator = keras.random.SeedGenerator(seed)
    estimate_batch = _compile_estimator(model, k, chunk, seed_generator)
    estimates = []
    for start in range(0, len(images), batch_size):
        part = slice(start, start + batch_size)
        estimates.append(
            estimate_batch(tf.constant(images[part]), tf.constant(one_hot[part])).numpy()
        )
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return np.concatenate(estimates).astype("float64")


def _compile_estimator(model, k, chunk, seed_generator):
    noise_dim = model.noise_dim
    conditional = model.model_inputs.conditional

    @tf.function(reduce_retracing=True)
    def estimate(images, one_hot):
        batch = ops.shape(images)[0]
        # An unconditional model gets no labels (`one_hot` is then empty).
        labels = one_hot if conditional else None
        mean, log_var = model.encoder(model.network_inputs(images, labels), training=False)
        chunk_estimates = []
        for size in [chunk] * (k // chunk) + ([k % chunk] if k % chunk else []):
            noise = keras.random.normal((batch, size, noise_dim), seed=seed_generator)
            log_weights, *_ = model.log_importance_weights(images, labels, mean, log_var, noise)
            chunk_estimates.append(ops.logsumexp(log_weights, axis=1))
        return ops.logsumexp(ops.stack(chunk_estimates, axis=1), axis=1) - math.log(k)

    return estimate


def likelihood_figures(log_likelihood, image_shape):
    """The figures of per-image log-likelihood estimates, as papers report them.

    Args:
        log_likelihood: array `(n,)` of estimates of log p(x) in nats, such as
            `importance_weighted_log_likelihood`'s.
        image_shape: `(H, W, C)` of the images.

    Returns:
        A dict of floats: `negative_log_likelihood` (the mean, nats per
        example), its `standard_error` (of the mean over the images) and
        `bits_per_dim`.
    """
    log_likelihood = np.asarray(log_likelihood, dtype="float64")
    negative_log_likelihood = float(-log_likelihood.mean())
    spread = log_likelihood.std(ddof=1) if len(log_likelihood) > 1 else math.nan
    return {
        "negative_log_likelihood": negative_log_likelihood,
        "standard_error": float(spread / math.sqrt(len(log_likelihood))),
        "bits_per_dim": bits_per_dim(negative_log_likelihood, math.prod(image_shape)),
    }


def paired_difference(log_likelihood, baseline):
    """The difference of two models' negative log-likelihoods on the same images.

    Both estimates err image by image in much the same way (a hard image is
    hard for both), so the error of the difference is that of the per-image
    differences, far smaller than the two standard errors combined.

    Args:
        log_likelihood: array `(n,)` of one model's estimates of log p(x).
        baseline: array `(n,)` of the other model's, on the same images in the
            same order.

    Returns:
        A dict of floats: `difference`, the mean negative log-likelihood minus
        the baseline's (negative: better than the baseline), and its
        `standard_error`.
    """
    log_likelihood = np.asarray(log_likelihood, dtype="float64")
    baseline = np.asarray(baseline, dtype="float64")
    if log_likelihood.ndim != 1 or log_likelihood.shape != baseline.shape:
        raise ValueError(
            "Expected two estimates of the same images, arrays (n,) of one shape. "
            f"Received: shapes {log_likelihood.shape} and {baseline.shape}."
        )
    differences = baseline - log_likelihood
    spread = differences.std(ddof=1) if len(differences) > 1 else math.nan
    return {
        "difference": float(differences.mean()),
        "standard_error": float(spread / math.sqrt(len(differences))),
    }


def evaluate_losses(model, images, labels=None, seed=0, batch_size=1000):
    """The model's losses on `images`, with the sampling noise fixed by `seed`.

    `model.evaluate` draws the noise of a VAE's samples from the model's own
    seed generator, whose state moves with every call; here it starts from
    `seed` and is restored afterwards, so the figures repeat for the same
    images, seed and batch size whoever computes them (the training summary,
    the evaluation report), and the model's noise sequence is left as it was.

    Args:
        model: a `keras_vae.VAE` or `keras_vae.Autoencoder`.
        images: array `(n, H, W, C)`, preprocessed as for training.
        labels: their labels `(n,)`, which a conditional model needs, or `None`;
            an unconditional model ignores them.
        seed: int, seed of the sampling noise.
        batch_size: images per evaluation step.

    Returns:
        A dict of floats: `loss`, `reconstruction_loss` and, for a VAE,
        `kl_loss`, in nats per example.
    """
    sampler = getattr(model, "sampler", None)
    state = sampler.seed_generator.state if sampler is not None else None
    kept = None if state is None else ops.convert_to_numpy(state)
    if state is not None:
        state.assign(np.array([seed, 0], dtype=kept.dtype))
    try:
        # Labels only where the model takes them: Keras' build under a
        # multi-worker strategy fails on (images, labels) batches.
        targets = labels if model.model_inputs.conditional else None
        results = model.evaluate(
            images, targets, batch_size=batch_size, verbose=0, return_dict=True
        )
    finally:
        if state is not None:
            state.assign(kept)
    return {name: float(np.ravel(value)[0]) for name, value in results.items()}


def active_units(posterior_means, threshold=0.01):
    """Counts latent dimensions whose posterior mean varies across the data.

    A dimension u is active when Cov_x(E_q(z|x)[z_u]) > threshold (Burda et al.,
    2016); a collapsed dimension has the same posterior for every input.

    Args:
        posterior_means: array `(n, latent_dim)` of encoder means over a data set.
        threshold: variance above which a dimension counts as active.

    Returns:
        A tuple `(count, variances)`: the number of active dimensions and the
        per-dimension variance of the posterior mean.
    """
    variances = np.var(np.asarray(posterior_means, dtype="float64"), axis=0)
    return int(np.sum(variances > threshold)), variances


def bits_per_dim(nats_per_example, dimensions):
    """Converts nats per example to bits per data dimension.

    Args:
        nats_per_example: a negative log-likelihood (or bound) in nats.
        dimensions: the number of dimensions of one example (H·W·C).

    Returns:
        The same quantity in bits per dimension.
    """
    return nats_per_example / (dimensions * math.log(2.0))
