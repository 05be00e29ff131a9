"""keras-vae: variational autoencoders for Keras 3 on TensorFlow."""

import importlib
import os
from typing import TYPE_CHECKING

# The training step uses TensorFlow's GradientTape and tf.distribute.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

# Each public name and the module that defines it. They load on first use, so
# the light modules (presets, run settings, the command line) start without
# TensorFlow. Like any Keras custom class, a model class must be loaded (e.g.
# `from keras_vae import VAE`) before `keras.saving.load_model` reads its files.
_EXPORTS = {
    "VAE": "keras_vae.vae",
    "Autoencoder": "keras_vae.autoencoder",
    "ConditionalVAE": "keras_vae.conditional_vae",
    "HierarchicalVAE": "keras_vae.hierarchical_vae",
    "ImageLogger": "keras_vae.callbacks",
    "KLAnnealing": "keras_vae.callbacks",
    "Bernoulli": "keras_vae.likelihoods",
    "Gaussian": "keras_vae.likelihoods",
    "Sampling": "keras_vae.sampling",
    "gaussian_kl_divergence": "keras_vae.sampling",
    "choose_strategy": "keras_vae.distribute",
}
_SUBMODULES = ("architectures", "likelihoods", "presets")

__all__ = [
    "VAE",
    "Autoencoder",
    "Bernoulli",
    "ConditionalVAE",
    "Gaussian",
    "HierarchicalVAE",
    "ImageLogger",
    "KLAnnealing",
    "Sampling",
    "architectures",
    "choose_strategy",
    "gaussian_kl_divergence",
    "likelihoods",
    "presets",
]

if TYPE_CHECKING:
    from keras_vae import architectures, likelihoods, presets
    from keras_vae.autoencoder import Autoencoder
    from keras_vae.callbacks import ImageLogger, KLAnnealing
    from keras_vae.conditional_vae import ConditionalVAE
    from keras_vae.distribute import choose_strategy
    from keras_vae.hierarchical_vae import HierarchicalVAE
    from keras_vae.likelihoods import Bernoulli, Gaussian
    from keras_vae.sampling import Sampling, gaussian_kl_divergence
    from keras_vae.vae import VAE


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"keras_vae.{name}")
    else:
        raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
