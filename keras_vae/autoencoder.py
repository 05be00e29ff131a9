"""A plain autoencoder with a VAE's encoder and decoder, as a baseline."""

import keras

from keras_vae.encoder_decoder import EncoderDecoder


@keras.saving.register_keras_serializable(package="keras_vae")
class Autoencoder(EncoderDecoder):
    """A deterministic autoencoder: `z` is the encoder's mean; no sampling, no KL.

    It takes the same encoder, decoder and likelihood as a `VAE` and trains with
    the same `fit`, so the two can be compared like for like. The loss is the
    reconstruction negative log-likelihood in nats per example; the encoder's
    log-variance head is unused. `sample` decodes points of N(0, I), which an
    autoencoder does not train its latent space to fill.

    Args:
        encoder: a `keras.Model` mapping images to `[mean, log_var]`.
        decoder: a `keras.Model` mapping `z` to decoder outputs.
        likelihood: `"bernoulli"`, `"gaussian"` or a `Likelihood` instance.
    """

    def latent_code(self, mean, log_var, training):
        """The code is the posterior mean; nothing is added to the loss."""
        return mean, 0.0, {}
