"""The reparameterised Gaussian posterior: sampling and its KL to the prior."""

import math

import keras
from keras import ops

from keras_vae.distribute import global_batch_position

_SEED_STATE = "seed_generator_state"


def gaussian_kl_divergence(mean, log_var, per_dimension: bool = False):
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) in nats.

    Args:
        mean: tensor of shape `(batch, latent_dim)`.
        log_var: tensor of shape `(batch, latent_dim)`, the log-variance.
        per_dimension: whether to keep one value per latent dimension.

    Returns:
        A tensor of shape `(batch,)`, summed over latent dimensions, or
        `(batch, latent_dim)` with `per_dimension=True`.
    """
    kl = -0.5 * (1.0 + log_var - ops.square(mean) - ops.exp(log_var))
    return kl if per_dimension else ops.sum(kl, axis=-1)


def gaussian_log_density(z, mean, log_var):
    """log N(z; mean, exp(log_var)) in nats, summed over the last (latent) axis.

    Args:
        z: tensor `(..., latent_dim)`.
        mean: tensor broadcasting against `z`.
        log_var: tensor broadcasting against `z`, the log-variance.

    Returns:
        A tensor of `z`'s shape without its last axis.
    """
    return -0.5 * ops.sum(
        math.log(2.0 * math.pi) + log_var + ops.square(z - mean) * ops.exp(-log_var), axis=-1
    )


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """Draws `z = mean + exp(0.5 * log_var) * epsilon` and adds the KL term as a loss.

    The layer adds `beta * KL(q(z|x) ‖ N(0, I))`, averaged over its batch, through
    `add_loss`, so any model that calls it optimises the KL part of the ELBO.
    `beta` is a non-trainable variable: a callback can anneal it without
    retracing the training step. With `free_bits > 0`, each latent dimension's
    batch-averaged KL counts as at least `free_bits` nats (Kingma et al., 2016),
    so the optimiser gains nothing by collapsing a dimension below it.

    The noise `epsilon` is drawn for the global batch from the layer's
    `SeedGenerator` and each replica takes its own rows, so a seeded run gives
    the same noise per example on one device or on several.

    Args:
        beta: non-negative float, the weight of the KL term.
        seed: int or `None`, seed of the noise.
        free_bits: non-negative float, the KL floor per latent dimension in nats.

    Call arguments:
        inputs: list `[mean, log_var]`, each of shape `(batch, latent_dim)`.

    Returns:
        The sample `z`, of shape `(batch, latent_dim)`.
    """

    def __init__(
        self, beta: float = 1.0, seed: int | None = None, free_bits: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        for name, value in (("beta", beta), ("free_bits", free_bits)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"Expected `{name}` to be a finite, non-negative number. "
                    f"Received: {name}={value!r}"
                )
        self.seed = seed
        self.free_bits = float(free_bits)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.beta = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(beta)),
            trainable=False,
            name="beta",
        )

    def noise(self, mean, samples=None, dim=None):
        """Standard normal noise for this replica's rows of the global batch.

        Args:
            mean: the posterior mean `(batch, latent_dim)`, for shape and dtype.
            samples: `None` for one sample per example, or how many.
            dim: values per sample; `None` for `latent_dim`.

        Returns:
            A tensor `(batch, dim)`, or `(batch, samples, dim)`.
        """
        batch_size = ops.shape(mean)[0]
        offset, global_batch_size = global_batch_position(batch_size)
        dim = ops.shape(mean)[1] if dim is None else dim
        per_example = (dim,) if samples is None else (samples, dim)
        noise = keras.random.normal(
            (global_batch_size, *per_example), dtype=mean.dtype, seed=self.seed_generator
        )
        return ops.slice(noise, (offset,) + (0,) * len(per_example), (batch_size, *per_example))

    def call(self, inputs):
        mean, log_var = inputs
        batch_size = ops.shape(mean)[0]
        epsilon = self.noise(mean)
        kl = gaussian_kl_divergence(mean, log_var, per_dimension=True)
        examples = ops.maximum(ops.cast(batch_size, kl.dtype), 1.0)
        kl_per_dimension = ops.maximum(ops.sum(kl, axis=0) / examples, self.free_bits)
        # Last, after any cross-replica op: see `VAE._forward`.
        self.add_loss(self.beta * ops.sum(kl_per_dimension))
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
        config = {
            "beta": float(ops.convert_to_numpy(self.beta)),
            "seed": self.seed,
            "free_bits": self.free_bits,
        }
        return {**super().get_config(), **config}
