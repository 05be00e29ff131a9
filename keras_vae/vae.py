"""The variational autoencoder model."""

import math

import keras
from keras import ops

from keras_vae.encoder_decoder import EncoderDecoder
from keras_vae.likelihoods import Likelihood
from keras_vae.sampling import Sampling, gaussian_kl_divergence, gaussian_log_density


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(EncoderDecoder):
    """A variational autoencoder trained with `fit` on the negative ELBO.

    The encoder maps images to the mean and log-variance of q(z|x); a `Sampling`
    layer draws `z` and adds `beta * KL(q(z|x) ‖ N(0, I))` through `add_loss`;
    the decoder maps `z` to the parameters of a `Likelihood` p(x|z).

    Losses are in nats per example: `reconstruction_loss` is -log p(x|z) summed
    over pixels, `kl_loss` is the KL summed over latent dimensions, both
    averaged over the global batch, and `loss = reconstruction_loss + beta *
    kl_loss`. Under a `tf.distribute` strategy the gradient is scaled for the
    global batch, so N replicas take the same step as one device.

    Args:
        encoder: a `keras.Model` mapping images `(batch, H, W, C)` to
            `[mean, log_var]`, each `(batch, latent_dim)`.
        decoder: a `keras.Model` mapping `(batch, latent_dim)` to decoder
            outputs `(batch, H, W, C)`.
        likelihood: `"bernoulli"`, `"gaussian"` or a `Likelihood` instance.
        beta: non-negative float, the weight of the KL term.
        seed: int or `None`, seed of the sampling noise.
        free_bits: KL floor per latent dimension in nats, see `Sampling`. It
            changes the gradient only: the reported losses stay the ELBO's.
        importance_samples: k; with k > 1 training minimises the importance-
            weighted bound of Burda et al. (2016), `-log (1/k) Σ_i p(x|z_i)
            p(z_i)^β / q(z_i|x)^β` over k samples of q(z|x), which is tighter
            than the ELBO and trains a better likelihood, at k decodes per
            example. It changes the gradient only: the reported losses stay the
            ELBO's (reconstruction averaged over the k samples), and
            evaluation is unchanged.

    Call arguments:
        inputs: images of shape `(batch, H, W, C)` in [0, 1].
        training: Python boolean, passed to the encoder and decoder.
        sample: whether `z` is drawn from q(z|x) rather than taken as its
            mean; `None` (the default) samples only when `training`.

    Returns:
        The mean image of p(x|z), in [0, 1]: for the posterior mean `z`
        (so `predict` is deterministic), or for one sample of q(z|x).

    Example:

    ```python
    vae = keras_vae.VAE.from_preset("fashion_mnist_conv")
    vae.compile(optimizer="adam")
    vae.fit(train_images, epochs=10, batch_size=128)
    images = vae.sample(16, seed=0)
    ```
    """

    CODE_METRICS = ("kl_loss",)

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        likelihood: str | Likelihood = "bernoulli",
        beta: float = 1.0,
        seed: int | None = None,
        free_bits: float = 0.0,
        importance_samples: int = 1,
        **kwargs,
    ):
        if (
            isinstance(importance_samples, bool)
            or not isinstance(importance_samples, int)
            or importance_samples < 1
        ):
            raise ValueError(
                "Expected `importance_samples` to be a positive integer. "
                f"Received: importance_samples={importance_samples!r}"
            )
        if importance_samples > 1 and free_bits:
            raise ValueError(
                "Free bits floor the ELBO's KL term, which the importance-weighted bound "
                "does not have. Expected free_bits=0 with importance_samples > 1. "
                f"Received: free_bits={free_bits!r}, importance_samples={importance_samples}"
            )
        super().__init__(encoder, decoder, likelihood, **kwargs)
        self.sampler = Sampling(
            beta=beta, seed=seed, free_bits=free_bits, dtype="float32", name="sampling"
        )
        self.seed = seed
        self.importance_samples = importance_samples

    @property
    def beta(self):
        """The weight of the KL term, a non-trainable variable."""
        return self.sampler.beta

    def latent_code(self, mean, log_var, training):
        """Samples `z` from q(z|x); the penalty is the sampler's β·KL."""
        z = self.sampler([mean, log_var], training=training)
        penalty = ops.sum(self.sampler.losses)
        # The per-example KL; the sampler's add_loss holds only its β-weighted mean.
        kl = gaussian_kl_divergence(mean, log_var)
        return z, penalty, {"kl_loss": (kl, ops.cast(self.beta, kl.dtype))}

    @property
    def noise_dim(self):
        """Standard normal values per posterior sample: `latent_dim` here."""
        return self.latent_dim

    def code_samples(self, mean, log_var, noise, training=False):
        """Samples of q(z|x) and their log prior-over-posterior ratios.

        Args:
            mean, log_var: the posterior, float32 tensors `(batch, latent_dim)`.
            noise: standard normal tensor `(batch, samples, noise_dim)`; the
                samples are `z = mean + exp(log_var / 2) * noise`.
            training: passed to any network the code uses.

        Returns:
            A pair: the codes the decoder takes, `(batch, samples, latent_dim)`,
            and `log p(z) - log q(z|x)`, `(batch, samples)`.
        """
        z = mean[:, None] + ops.exp(0.5 * log_var)[:, None] * noise
        log_ratio = gaussian_log_density(z, 0.0, 0.0) - gaussian_log_density(
            z, mean[:, None], log_var[:, None]
        )
        return z, log_ratio

    def log_importance_weights(self, images, labels, mean, log_var, noise, beta=1.0,
                               training=False):  # fmt: skip
        """The log-weights of samples of q(z|x), `log p(x|z) + β (log p(z) - log q(z|x))`.

        Their log-mean-exp over the samples is the importance-weighted bound on
        log p(x) (for β = 1), what training with `importance_samples` maximises
        and what `keras_vae.evaluation` estimates.

        Args:
            images: float32 tensor `(batch, H, W, C)`.
            labels: `None`, or a conditional model's one-hot labels `(batch, num_classes)`.
            mean, log_var: the posterior, float32 tensors `(batch, latent_dim)`.
            noise: standard normal tensor `(batch, samples, noise_dim)`, see
                `code_samples`.
            beta: the weight of the prior-over-posterior ratio.
            training: passed to the networks.

        Returns:
            A triple of float32 tensors `(batch, samples)`: the log-weights, each
            sample's reconstruction term -log p(x|z), and its log ratio
            log p(z) - log q(z|x).
        """
        samples = ops.shape(noise)[1]
        z, log_ratio = self.code_samples(mean, log_var, noise, training=training)
        flat = ops.reshape(z, (-1, self.latent_dim))
        repeated = None if labels is None else ops.repeat(labels, samples, axis=0)
        params = self.decoder(self.network_inputs(flat, repeated), training=training)
        params = ops.reshape(ops.cast(params, "float32"), (-1, samples, *self.image_shape))
        # Each image broadcasts against its samples' decoded parameters.
        reconstructions = self.likelihood.negative_log_likelihood(images[:, None], params)
        return -reconstructions + beta * log_ratio, reconstructions, log_ratio

    def reported_kl(self, mean, log_var, log_ratio):
        """The per-example KL term the reported losses show, `(batch,)`.

        Args:
            mean, log_var: the posterior, `(batch, latent_dim)`.
            log_ratio: `log p(z) - log q(z|x)` of samples `(batch, samples)`.

        Returns:
            KL(q(z|x) ‖ N(0, I)) in closed form; `log_ratio` is not needed.
        """
        del log_ratio
        return gaussian_kl_divergence(mean, log_var)

    def _objective(self, images, labels):
        if self.importance_samples == 1:
            return super()._objective(images, labels)
        k = self.importance_samples
        mean, log_var = self.encoder(self.network_inputs(images, labels), training=True)
        mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
        penalty = ops.sum(self.encoder.losses)
        beta = ops.cast(self.beta, "float32")
        noise = self.sampler.noise(mean, k, self.noise_dim)
        log_weights, reconstructions, log_ratio = self.log_importance_weights(
            images, labels, mean, log_var, noise, beta, training=True
        )
        penalty += ops.sum(self.decoder.losses)
        objective = math.log(k) - ops.logsumexp(log_weights, axis=1)
        reported_terms = {"kl_loss": (self.reported_kl(mean, log_var, log_ratio), beta)}
        return objective, penalty, ops.mean(reconstructions, axis=1), reported_terms

    def get_config(self):
        return {
            **super().get_config(),
            "beta": float(ops.convert_to_numpy(self.beta)),
            "seed": self.seed,
            "free_bits": self.sampler.free_bits,
            "importance_samples": self.importance_samples,
        }
