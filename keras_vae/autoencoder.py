"""A plain autoencoder with a VAE's encoder and decoder, as a baseline."""

import keras
from keras import ops

from keras_vae.vae import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class Autoencoder(VAE):
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
        **kwargs: other `VAE` arguments (`beta`, `free_bits` have no effect).
    """

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker]

    def _forward(self, images, training):
        mean, log_var = self.encoder(images, training=training)
        penalty = ops.sum(self.encoder.losses)
        params = self.decoder(mean, training=training)
        penalty += ops.sum(self.decoder.losses)
        return mean, log_var, params, penalty

    def _update_metrics(self, reconstruction, mean, log_var):
        self.reconstruction_tracker.update_state(reconstruction)
        self.loss_tracker.update_state(reconstruction)
