"""Named, known-good VAE configurations, as plain data.

`VAE.from_preset(name)` builds one: `architecture` names a pair of builders in
`keras_vae.architectures`, `encoder` and `decoder` are their keyword arguments.
A two-level preset's `top` gives the size of `z2` and the arguments of its
upper networks; `keras_vae.HierarchicalVAE.from_preset` builds those.
The presets of `PRETRAINED` also ship trained weights (`keras_vae/pretrained/`).
"""

# Named presets whose trained weights ship with the package, and what they were trained on.
PRETRAINED = {
    "fashion_mnist_conv": "the default run of `make run`: dynamically binarised "
    "Fashion-MNIST, 10 epochs",
}

# The upper stochastic layer of the two-level presets: gated MLPs of 300-300 units for
# q(z2|z1) and p(z1|z2), z2 of 40 dimensions, log-variances clipped to [-6, 2].
GATED_TOP = {
    "latent_dim": 40,
    "hidden_units": (300, 300),
    "activation": "gated",
    "log_var_bounds": (-6.0, 2.0),
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
    "mlp_gated_28": {
        "description": (
            "The MLP VAE of the published likelihood tables (Tomczak & Welling, 2018) "
            "for 28x28x1 images: two gated dense layers of 300 units each way, 40 "
            "latent dimensions, Bernoulli likelihood."
        ),
        "architecture": "mlp",
        "input_shape": (28, 28, 1),
        "latent_dim": 40,
        "encoder": {"hidden_units": (300, 300), "activation": "gated"},
        "decoder": {"hidden_units": (300, 300), "activation": "gated"},
        "likelihood": "bernoulli",
    },
    "mlp_relu_28": {
        "description": (
            "mlp_gated_28 without its gates, the gates' control: two ReLU dense "
            "layers of 300 units each way, 40 latent dimensions, Bernoulli likelihood."
        ),
        "architecture": "mlp",
        "input_shape": (28, 28, 1),
        "latent_dim": 40,
        "encoder": {"hidden_units": (300, 300), "activation": "relu"},
        "decoder": {"hidden_units": (300, 300), "activation": "relu"},
        "likelihood": "bernoulli",
    },
    "hvae_gated_28": {
        "description": (
            "A two-level VAE (keras_vae.HierarchicalVAE) for 28x28x1 images: "
            "mlp_gated_28's networks for x and z1 (40 dimensions), and gated MLPs "
            "of 300-300 units for q(z2|z1) and the prior p(z1|z2), z2 of 40 "
            "dimensions, Bernoulli likelihood; the three Gaussians' log-variances "
            "clipped to [-6, 2], as in the published two-level VAEs."
        ),
        "architecture": "mlp",
        "input_shape": (28, 28, 1),
        "latent_dim": 40,
        "encoder": {
            "hidden_units": (300, 300),
            "activation": "gated",
            "log_var_bounds": (-6.0, 2.0),
        },
        "decoder": {"hidden_units": (300, 300), "activation": "gated"},
        "top": GATED_TOP,
        "likelihood": "bernoulli",
    },
    "hvae_gated_conv_28": {
        "description": (
            "The convolutional two-level VAE (keras_vae.HierarchicalVAE) for 28x28x1 "
            "images, after the published ConvHVAE (Tomczak & Welling, 2018): q(z1|x) "
            "is five gated convolutions (32 7x7, 32 3x3 stride 2, 64 5x5, 64 3x3 "
            "stride 2, 6 3x3), p(x|z1) two gated dense layers (300 units, then "
            "28x28) and four gated 3x3 convolutions of 64 channels over the "
            "image-sized map; gated MLPs of 300-300 units for q(z2|z1) and p(z1|z2); "
            "z1 and z2 of 40 dimensions, Bernoulli likelihood, the three Gaussians' "
            "log-variances clipped to [-6, 2]."
        ),
        "architecture": "gated_conv",
        "input_shape": (28, 28, 1),
        "latent_dim": 40,
        "encoder": {"log_var_bounds": (-6.0, 2.0)},
        "decoder": {},
        "top": GATED_TOP,
        "likelihood": "bernoulli",
    },
}


def is_two_level(name):
    """Whether the named preset has two stochastic layers (its `top`), which
    `keras_vae.HierarchicalVAE` builds; the other presets build one-level models."""
    return "top" in PRESETS[name]


# The presets of keras_vae.HierarchicalVAE.
TWO_LEVEL_PRESETS = tuple(sorted(name for name in PRESETS if is_two_level(name)))
