"""The reparameterised Gaussian posterior: sampling and its KL to the prior."""

import keras
from keras import ops

from keras_vae.distribution import replica_rows

_SEED_STATE = "seed_generator_state"


def gaussian_kl_divergence(mean, log_var):
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) in nats, summed over latent dimensions.

    Args:
        mean: tensor of shape `(batch, latent_dim)`.
        log_var: tensor of shape `(batch, latent_dim)`, the log-variance.

    Returns:
        A tensor of shape `(batch,)`.
    """
    return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """Draws `z = mean + exp(0.5 * log_var) * epsilon` and adds the KL term as a loss.

    The layer adds `beta * KL(q(z|x) ‖ N(0, I))`, averaged over its batch, through
    `add_loss`, so any model that calls it optimises the KL part of the ELBO.
    `beta` is a non-trainable variable: a callback can anneal it without
    retracing the training step.

    The noise `epsilon` is drawn for the global batch from the layer's
    `SeedGenerator` and each replica takes its own rows, so a seeded run gives
    the same noise per example on one device or on several.

    Args:
        beta: non-negative float, the weight of the KL term.
        seed: int or `None`, seed of the noise.

    Call arguments:
        inputs: list `[mean, log_var]`, each of shape `(batch, latent_dim)`.

    Returns:
        The sample `z`, of shape `(batch, latent_dim)`.
    """

    def __init__(self, beta=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(beta, (int, float)) or beta < 0:
            raise ValueError(
                f"Expected `beta` to be a non-negative number. Received: beta={beta!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.beta = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(beta)),
            trainable=False,
            name="beta",
        )

    def call(self, inputs):
        mean, log_var = inputs
        batch_size = ops.shape(mean)[0]
        offset, global_batch_size = replica_rows(batch_size)
        noise = keras.random.normal(
            (global_batch_size, ops.shape(mean)[1]),
            dtype=mean.dtype,
            seed=self.seed_generator,
        )
        epsilon = ops.slice(noise, (offset, 0), ops.shape(mean))
        kl = gaussian_kl_divergence(mean, log_var)
        examples = ops.maximum(ops.cast(batch_size, kl.dtype), 1.0)
        # Last, after any cross-replica op: see `VAE._forward`.
        self.add_loss(self.beta * ops.sum(kl) / examples)
        return mean + ops.exp(0.5 * log_var) * epsilon

    def save_own_variables(self, store):
        # Keras does not save a SeedGenerator's state; saving it makes a reloaded
        # model continue the same noise sequence, so resumed training repeats.
        super().save_own_variables(store)
        store[_SEED_STATE] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        # The store is a dict or an H5 group: both have keys(), not always __iter__.
        keys = list(store.keys())
        super().load_own_variables({key: store[key] for key in keys if key != _SEED_STATE})
        if _SEED_STATE in keys:
            self.seed_generator.state.assign(store[_SEED_STATE])

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = {"beta": float(ops.convert_to_numpy(self.beta)), "seed": self.seed}
        return {**super().get_config(), **config}
