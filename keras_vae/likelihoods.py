"""Observation models p(x|z): what the decoder's output parameterises.

A decoder ends in unconstrained per-pixel parameters; a likelihood turns them
into the negative log-likelihood of the data (nats, summed over pixels) and
into the mean image, which lies in [0, 1] like the data.
"""

import math

import keras
from keras import ops


class Likelihood(keras.layers.Layer):
    """Base class: a per-pixel observation model on decoder outputs.

    Call arguments:
        params: decoder outputs, of shape `(batch, H, W, C)`.

    Returns:
        The mean image `E[x|z]`, same shape as `params`, in [0, 1].
    """

    # What the likelihood is, for manifests and reports: its distribution, what
    # its mean image holds, and whether it is a probability of discrete pixels
    # (so that its negative log is a real negative log-likelihood of binary
    # data) or a density; `support` is the (low, high) range pixels must lie
    # in, or None for any real value.
    distribution = None
    mean_meaning = None
    discrete = False
    support = None

    def negative_log_likelihood(self, x, params):
        """-log p(x|z) in nats, summed over all pixels of each example.

        Args:
            x: images of shape `(batch, H, W, C)` in [0, 1].
            params: decoder outputs of the same shape, or of any shape that
                `x` broadcasts against, such as `(batch, samples, H, W, C)`
                for `x` of shape `(batch, 1, H, W, C)`.

        Returns:
            A tensor of `params`' shape without the last three (image) axes.
        """
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_vae")
class Bernoulli(Likelihood):
    """Bernoulli pixels with logits `params`, for binary or binarised images.

    For grey levels in [0, 1] the value is the binary cross-entropy, which is not
    a log-likelihood: it includes the entropy of the grey levels themselves.
    """

    distribution = "bernoulli"
    mean_meaning = "per-pixel Bernoulli probabilities"
    discrete = True
    support = (0.0, 1.0)

    def call(self, params):
        return ops.sigmoid(params)

    def negative_log_likelihood(self, x, params):
        # The binary cross-entropy from logits, -x log σ(l) - (1-x) log(1-σ(l)).
        x = ops.cast(x, params.dtype)
        per_pixel = ops.softplus(params) - x * params
        return ops.sum(per_pixel, axis=(-3, -2, -1))


@keras.saving.register_keras_serializable(package="keras_vae")
class Gaussian(Likelihood):
    """Gaussian pixels with mean `link(params)` and one shared scale.

    With a fixed `scale` this is the mean squared error of the classic
    tutorials, divided by `2 * scale**2`, plus a constant. With `scale=None` the
    scale is learned (a trainable log-scale, started at 0), which balances the
    reconstruction against the KL without tuning.

    Args:
        scale: positive float, or `None` to learn the scale.
        link: `"sigmoid"` for data in [0, 1], or `"identity"` for unbounded data
            (with a linear decoder this is probabilistic PCA).
    """

    LINKS = ("sigmoid", "identity")
    distribution = "gaussian"
    mean_meaning = "per-pixel Gaussian means"

    def __init__(self, scale=None, link="sigmoid", **kwargs):
        super().__init__(**kwargs)
        if scale is not None and not (isinstance(scale, (int, float)) and scale > 0):
            raise ValueError(
                f"Expected `scale` to be a positive number or None. Received: scale={scale!r}"
            )
        if link not in self.LINKS:
            raise ValueError(f"Expected `link` to be one of {self.LINKS}. Received: link={link!r}")
        self.scale = scale
        self.link = link
        self.log_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(0.0 if scale is None else math.log(scale)),
            trainable=scale is None,
            name="log_scale",
        )

    def call(self, params):
        return self._mean(params)

    def _mean(self, params):
        return ops.sigmoid(params) if self.link == "sigmoid" else params

    def negative_log_likelihood(self, x, params):
        x = ops.cast(x, params.dtype)
        log_scale = ops.cast(self.log_scale, params.dtype)
        squared = ops.square((x - self._mean(params)) * ops.exp(-log_scale))
        per_pixel = 0.5 * squared + log_scale + 0.5 * math.log(2.0 * math.pi)
        return ops.sum(per_pixel, axis=(-3, -2, -1))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "link": self.link}


LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian}


def get(identifier):
    """Returns a likelihood from a name (`"bernoulli"`, `"gaussian"`) or an instance.

    Args:
        identifier: a name from `LIKELIHOODS` or a `Likelihood` instance.

    Returns:
        A `Likelihood`.
    """
    if isinstance(identifier, Likelihood):
        return identifier
    if identifier in LIKELIHOODS:
        # float32 even under a mixed-precision policy: log-likelihoods need it.
        return LIKELIHOODS[identifier](dtype="float32")
    raise ValueError(
        f"Unknown likelihood. Expected one of {sorted(LIKELIHOODS)} or a "
        f"`Likelihood` instance. Received: likelihood={identifier!r}"
    )
