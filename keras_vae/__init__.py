"""keras-vae: variational autoencoders for Keras 3 on TensorFlow."""

import os

# The training step uses TensorFlow's GradientTape and tf.distribute.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_vae import architectures, likelihoods, presets  # noqa: E402
from keras_vae.autoencoder import Autoencoder  # noqa: E402
from keras_vae.callbacks import ImageLogger, KLAnnealing  # noqa: E402
from keras_vae.distribute import choose_strategy  # noqa: E402
from keras_vae.likelihoods import Bernoulli, Gaussian  # noqa: E402
from keras_vae.sampling import Sampling, gaussian_kl_divergence  # noqa: E402
from keras_vae.vae import VAE  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "Autoencoder",
    "ImageLogger",
    "KLAnnealing",
    "Bernoulli",
    "Gaussian",
    "Sampling",
    "architectures",
    "choose_strategy",
    "gaussian_kl_divergence",
    "likelihoods",
    "presets",
]
