"""Named, known-good VAE configurations."""

from keras_vae import architectures
from keras_vae.vae import VAE

BUILDERS = {
    "conv": (architectures.conv_encoder, architectures.conv_decoder),
    "mlp": (architectures.mlp_encoder, architectures.mlp_decoder),
}

PRESETS = {
    "fashion_mnist_conv": {
        "description": (
            "The default: a conv VAE for 28x28x1 images (two stride-2 blocks of "
            "32 and 64 channels straight to 32 latent dimensions), Bernoulli "
            "likelihood for dynamically binarised data. Chosen by measurement: see "
            "the README."
        ),
        "architecture": "conv",
        "input_shape": (28, 28, 1),
        "latent_dim": 32,
        "encoder": {"filters": (32, 64)},
        "decoder": {"filters": (64, 32), "start_channels": 64},
        "likelihood": "bernoulli",
    },
    "keras_io_mnist": {
        "description": (
            "The conv VAE of the keras.io example (examples/generative/vae.py): "
            "28x28x1, 32/64-channel blocks, a 16-unit dense layer, 2 latent dimensions."
        ),
        "architecture": "conv",
        "input_shape": (28, 28, 1),
        "latent_dim": 2,
        "encoder": {"filters": (32, 64), "hidden_units": (16,)},
        "decoder": {"filters": (64, 32), "start_channels": 64},
        "likelihood": "bernoulli",
    },
    "vanilla_vae_64": {
        "description": (
            "The 5-block conv VAE of the classic PyTorch VanillaVAE for 64x64x3 "
            "images: channels 32..512, stride 2, BatchNorm, LeakyReLU, 128 latent "
            "dimensions, Gaussian likelihood with a learned scale."
        ),
        "architecture": "conv",
        "input_shape": (64, 64, 3),
        "latent_dim": 128,
        "encoder": {
            "filters": (32, 64, 128, 256, 512),
            "batch_norm": True,
            "activation": "leaky_relu",
        },
        "decoder": {
            "filters": (256, 128, 64, 32, 32),
            "start_channels": 512,
            "batch_norm": True,
            "activation": "leaky_relu",
            "projection_activation": False,
        },
        "likelihood": "gaussian",
    },
    "mlp_28": {
        "description": (
            "A one-hidden-layer MLP VAE for 28x28x1 images (512 units, 32 latent "
            "dimensions), the model of the early VAE papers."
        ),
        "architecture": "mlp",
        "input_shape": (28, 28, 1),
        "latent_dim": 32,
        "encoder": {"hidden_units": (512,)},
        "decoder": {"hidden_units": (512,)},
        "likelihood": "bernoulli",
    },
}


def build_preset(
    name,
    input_shape=None,
    latent_dim=None,
    likelihood=None,
    beta=1.0,
    seed=None,
    free_bits=0.0,
    model_class=VAE,
):
    """Builds a `VAE` (or a subclass such as `Autoencoder`) from a preset.

    Args:
        name: a key of `PRESETS`.
        input_shape: `(height, width, channels)`, or `None` for the preset's.
        latent_dim: size of the latent space, or `None` for the preset's.
        likelihood: a likelihood name or instance, or `None` for the preset's.
        beta: the weight of the KL term.
        seed: int or `None`, seed of the sampling noise.
        free_bits: KL floor per latent dimension in nats.
        model_class: `VAE` or a subclass.

    Returns:
        An instance of `model_class`.
    """
    if name not in PRESETS:
        raise ValueError(
            f"Unknown preset. Expected one of {sorted(PRESETS)}. Received: preset={name!r}"
        )
    preset = PRESETS[name]
    input_shape = tuple(input_shape or preset["input_shape"])
    latent_dim = latent_dim or preset["latent_dim"]
    build_encoder, build_decoder = BUILDERS[preset["architecture"]]
    prefix = "vae" if model_class is VAE else model_class.__name__.lower()
    return model_class(
        build_encoder(input_shape, latent_dim, **preset["encoder"]),
        build_decoder(input_shape, latent_dim, **preset["decoder"]),
        likelihood=likelihood or preset["likelihood"],
        beta=beta,
        seed=seed,
        free_bits=free_bits,
        name=f"{prefix}_{name}",
    )
