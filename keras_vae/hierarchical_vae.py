"""The two-level VAE: a second stochastic layer above the first."""

import keras
from keras import ops

from keras_vae.architectures import mlp_gaussian
from keras_vae.presets import TWO_LEVEL_PRESETS, is_two_level
from keras_vae.sampling import gaussian_kl_divergence, gaussian_log_density
from keras_vae.seeded_noise import seeded_normal
from keras_vae.vae import VAE
from keras_vae_inference.model_inputs import ModelInputs


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalVAE(VAE):
    """A VAE with two stochastic layers, the two-layer model of Burda et al. (2016).

    Generation runs top-down, `z2 ~ N(0, I)`, `z1 ~ p(z1|z2)`, `x ~ p(x|z1)`;
    inference bottom-up, `z1 ~ q(z1|x)`, `z2 ~ q(z2|z1)`. The prior over `z1`
    is learned, which a one-level VAE's N(0, I) is not, and the loss is the
    negative ELBO `-log p(x|z1) + β (log q(z1|x) - log p(z1|z2) + log q(z2|z1)
    - log p(z2))` for one sample of both layers (the upper layer's part as its
    KL to N(0, I), in closed form), or the importance-weighted bound with
    `importance_samples`. `kl_loss` reports the bracket.

    `encoder`, `decoder` and the methods that use them (`encode`, `decode`,
    `reconstruct`, `interpolate`) work on the lower layer `z1`; `sample` draws
    from the whole model (`prior_codes` gives its draws of `z1`). `export`
    writes all four networks and a sampler graph that draws `z2 → z1 → x`
    from a seed as `sample_from_seeds` does, in any runtime.

    Args:
        encoder: a `keras.Model` mapping images to `[mean, log_var]` of q(z1|x).
        decoder: a `keras.Model` mapping `z1` to decoder outputs `(batch, H, W, C)`.
        top_encoder: a `keras.Model` mapping `z1` to `[mean, log_var]` of q(z2|z1).
        top_decoder: a `keras.Model` mapping `z2` to `[mean, log_var]` of p(z1|z2).
        **kwargs: the other arguments of `VAE` (`free_bits` must be 0).

    Example:

    ```python
    hvae = keras_vae.HierarchicalVAE.from_preset("hvae_gated_28")
    hvae.compile(optimizer="adam")
    hvae.fit(train_images, epochs=10, batch_size=100)
    images = hvae.sample(16, seed=0)
    ```
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        top_encoder: keras.Model,
        top_decoder: keras.Model,
        **kwargs,
    ):
        if kwargs.get("free_bits"):
            raise ValueError(
                "Free bits floor a closed-form KL per latent dimension, which the lower "
                "layer of a hierarchical VAE does not have. Expected free_bits=0. "
                f"Received: free_bits={kwargs['free_bits']!r}"
            )
        super().__init__(encoder, decoder, **kwargs)
        self.top_latent_dim = _check_top_layer(top_encoder, top_decoder, self.latent_dim)
        self.top_encoder = top_encoder
        self.top_decoder = top_decoder

    @classmethod
    def _preset_networks(cls, name, preset, input_shape, latent_dim):
        if not is_two_level(name):
            raise ValueError(
                f"Expected a preset with two stochastic layers ({list(TWO_LEVEL_PRESETS)}). "
                f"Received: {name!r}, which has one; build it with keras_vae.VAE."
            )
        # The x and z1 networks are a one-level model's, from the same entry.
        encoder, decoder = cls._encoder_and_decoder(preset, input_shape, latent_dim)
        top = dict(preset["top"])
        top_latent_dim = top.pop("latent_dim")
        return [
            encoder,
            decoder,
            mlp_gaussian(latent_dim, top_latent_dim, name="top_encoder", **top),
            mlp_gaussian(top_latent_dim, latent_dim, name="top_decoder", **top),
        ]

    @property
    def model_inputs(self) -> ModelInputs:
        """What the networks take; `top_latent_dim` is the size of `z2`."""
        return ModelInputs(self.image_shape, self.latent_dim, top_latent_dim=self.top_latent_dim)

    @property
    def noise_dim(self):
        """Standard normal values per sample: `latent_dim + top_latent_dim`."""
        return self.latent_dim + self.top_latent_dim

    def code_samples(self, mean, log_var, noise, training=False):
        """Samples `z1` of q(z1|x) and `z2` of q(z2|z1), and their log ratios.

        The first `latent_dim` values of each noise vector make `z1`, the rest `z2`.

        Returns:
            A pair: `z1`, `(batch, samples, latent_dim)`, and
            `log p(z2) + log p(z1|z2) - log q(z1|x) - log q(z2|z1)`, `(batch, samples)`.
        """
        z1 = mean[:, None] + ops.exp(0.5 * log_var)[:, None] * noise[..., : self.latent_dim]
        z2, top_mean, top_log_var, prior_mean, prior_log_var = self._top_layer(
            z1, noise[..., self.latent_dim :], training
        )
        log_ratio = (
            gaussian_log_density(z2, 0.0, 0.0)
            - gaussian_log_density(z2, top_mean, top_log_var)
            + gaussian_log_density(z1, prior_mean, prior_log_var)
            - gaussian_log_density(z1, mean[:, None], log_var[:, None])
        )
        return z1, log_ratio

    def _top_layer(self, z1, noise, training):
        """`z2 ~ q(z2|z1)`, q(z2|z1)'s mean and log-variance, and p(z1|z2)'s.

        Args:
            z1: tensor `(..., latent_dim)`.
            noise: standard normal tensor `(..., top_latent_dim)`.
            training: passed to the networks.

        Returns:
            Five float32 tensors of `z1`'s leading shape: `z2`, the mean and
            log-variance of q(z2|z1), and those of p(z1|z2).
        """
        leading = ops.shape(z1)[:-1]

        def shaped(values):
            return ops.reshape(ops.cast(values, "float32"), (*leading, -1))

        top_mean, top_log_var = self.top_encoder(
            ops.reshape(z1, (-1, self.latent_dim)), training=training
        )
        top_mean, top_log_var = shaped(top_mean), shaped(top_log_var)
        z2 = top_mean + ops.exp(0.5 * top_log_var) * noise
        prior_mean, prior_log_var = self.top_decoder(
            ops.reshape(z2, (-1, self.top_latent_dim)), training=training
        )
        return z2, top_mean, top_log_var, shaped(prior_mean), shaped(prior_log_var)

    def latent_code(self, mean, log_var, training):
        """Samples `z1` and `z2`; the penalty is β times their per-example KL term.

        The upper layer's KL to N(0, I) is in closed form; the lower layer's,
        to the learned prior p(z1|z2), is the one-sample estimate.
        """
        noise = self.sampler.noise(mean, None, self.noise_dim)
        z1 = mean + ops.exp(0.5 * log_var) * noise[:, : self.latent_dim]
        _, top_mean, top_log_var, prior_mean, prior_log_var = self._top_layer(
            z1, noise[:, self.latent_dim :], training
        )
        kl = (
            gaussian_log_density(z1, mean, log_var)
            - gaussian_log_density(z1, prior_mean, prior_log_var)
            + gaussian_kl_divergence(top_mean, top_log_var)
        )
        beta = ops.cast(self.beta, "float32")
        penalty = beta * ops.mean(kl)
        penalty += ops.sum(self.top_encoder.losses) + ops.sum(self.top_decoder.losses)
        return z1, penalty, {"kl_loss": (kl, beta)}

    def reported_kl(self, mean, log_var, log_ratio):
        """The samples' mean of `-log_ratio`: the KL term has no closed form here."""
        return -ops.mean(log_ratio, axis=1)

    def prior_codes(self, n, seed=None):
        """Draws `n` codes `z1 ~ p(z1|z2)` for `z2 ~ N(0, I)`: what `sample` decodes.

        Args:
            n: a positive number of codes.
            seed: int for a repeatable draw, or `None`.

        Returns:
            A float32 NumPy array `(n, latent_dim)`.
        """
        generator = keras.random.SeedGenerator(seed)
        z2 = keras.random.normal((n, self.top_latent_dim), seed=generator)
        noise = keras.random.normal((n, self.latent_dim), seed=generator)
        return ops.convert_to_numpy(self._prior_z1(z2, noise))

    def _prior_z1(self, z2, noise):
        """`z1 = mean + exp(0.5 log_var) * noise` of p(z1|z2), in float32."""
        prior_mean, prior_log_var = self.top_decoder(z2, training=False)
        return (
            ops.cast(prior_mean, "float32")
            + ops.exp(0.5 * ops.cast(prior_log_var, "float32")) * noise
        )

    def sample_from_seeds(self, seeds):
        """Draws `z2 ~ N(0, I)`, `z1 ~ p(z1|z2)` and the mean image of p(x|z1), one per seed.

        It is what an exported bundle's sampler graph computes, in every runtime
        that runs it: the noise of seed `s` is `seeded_noise.seeded_normal(s,
        top_latent_dim + latent_dim)`, its first `top_latent_dim` values `z2`,
        the rest the noise of `z1`.

        Args:
            seeds: integers `(n,)` in [0, 2**63 - 1].

        Returns:
            A tuple of float32 tensors: the images `(n, H, W, C)`, `z1`
            `(n, latent_dim)` and `z2` `(n, top_latent_dim)`.
        """
        noise = seeded_normal(seeds, self.top_latent_dim + self.latent_dim)
        z2 = noise[:, : self.top_latent_dim]
        z1 = self._prior_z1(z2, noise[:, self.top_latent_dim :])
        images = self.likelihood(self.decoder(z1, training=False))
        return ops.cast(images, "float32"), z1, z2

    def get_config(self):
        return {
            **super().get_config(),
            "top_encoder": keras.saving.serialize_keras_object(self.top_encoder),
            "top_decoder": keras.saving.serialize_keras_object(self.top_decoder),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("top_encoder", "top_decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return super().from_config(config)


def _check_top_layer(top_encoder, top_decoder, latent_dim):
    """Checks the upper layer's networks against `z1`; returns the size of `z2`."""
    shapes = {
        "top encoder": ([tuple(s.shape[1:]) for s in top_encoder.inputs], top_encoder.output_shape),
        "top decoder": ([tuple(s.shape[1:]) for s in top_decoder.inputs], top_decoder.output_shape),
    }
    for name, (inputs, outputs) in shapes.items():
        if not (isinstance(outputs, list) and len(outputs) == 2 and outputs[0] == outputs[1]
                and len(inputs) == 1 and len(inputs[0]) == 1):  # fmt: skip
            raise ValueError(
                f"Expected the {name} to map vectors (batch, d) to [mean, log_var] of "
                f"equal shapes (batch, d'). Received: input shapes {inputs}, output "
                f"shapes {outputs}."
            )
    (encoder_in,), encoder_out = shapes["top encoder"]
    (decoder_in,), decoder_out = shapes["top decoder"]
    top_latent_dim = encoder_out[0][-1]
    if encoder_in != (latent_dim,) or decoder_out[0][-1] != latent_dim:
        raise ValueError(
            f"Expected the top encoder to take, and the top decoder to give, z1 of "
            f"{latent_dim} dimensions, the encoder's. Received: the top encoder takes "
            f"{encoder_in}, the top decoder gives {decoder_out[0][1:]}."
        )
    if decoder_in != (top_latent_dim,):
        raise ValueError(
            f"Expected the top decoder to take z2 of {top_latent_dim} dimensions, as the "
            f"top encoder gives. Received: input shape {decoder_in}."
        )
    return top_latent_dim
