"""keras-vae's networks in PyTorch, trained by a plain loop.

The loop of the classic PyTorch VAE tutorials (pytorch/examples `vae`): a
`DataLoader` over a tensor of images, and per batch `zero_grad`, forward, the
loss, `backward`, `step`. `TorchVAE` is keras-vae's default network
(`fashion_mnist_conv`) with binary cross-entropy; `TorchVanillaVAE` is the
VanillaVAE of the PyTorch-VAE tutorials (the `vanilla_vae_64` preset) with
their MSE loss. Both are written in `torch.nn`, channels first.
"""

import torch
from torch import nn
from torch.nn import functional


class TorchVAE(nn.Module):
    """Two stride-2 convolutions to a Gaussian posterior; their mirror back to logits.

    Args:
        latent_dim: size of the latent space.
    """

    def __init__(self, latent_dim=32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.mean = nn.Linear(64 * 7 * 7, latent_dim)
        self.log_var = nn.Linear(64 * 7 * 7, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 64 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, 3, padding=1),
        )

    def forward(self, x):
        hidden = self.encoder(x)
        mean, log_var = self.mean(hidden), self.log_var(hidden)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        return self.decoder(z), mean, log_var


def loss_function(logits, x, mean, log_var):
    """The negative ELBO in nats per example: Bernoulli NLL plus KL."""
    bce = functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
    return (bce + kld) / x.shape[0]


def _vanilla_blocks(channels, transpose):
    """Stride-2 (transposed) convolution, BatchNorm, LeakyReLU, for each pair of channels."""
    return [
        layer
        for channels_in, channels_out in zip(channels, channels[1:], strict=False)
        for layer in _vanilla_block(channels_in, channels_out, transpose)
    ]


def _vanilla_block(channels_in, channels_out, transpose):
    if transpose:
        conv = nn.ConvTranspose2d(channels_in, channels_out, 3, stride=2, padding=1,
                                  output_padding=1)  # fmt: skip
    else:
        conv = nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1)
    return [conv, nn.BatchNorm2d(channels_out), nn.LeakyReLU()]


class TorchVanillaVAE(nn.Module):
    """The PyTorch-VAE tutorials' VanillaVAE for 64x64x3 images.

    Five stride-2 conv blocks (32..512 channels, BatchNorm, LeakyReLU) to a
    Gaussian posterior; a dense layer to 512x2x2, five stride-2 transposed
    blocks back to 64x64, a 3x3 convolution to RGB and `tanh`, as the seed
    code writes it.

    Args:
        latent_dim: size of the latent space.
    """

    def __init__(self, latent_dim=128):
        super().__init__()
        channels = (3, 32, 64, 128, 256, 512)
        self.encoder = nn.Sequential(
            *_vanilla_blocks(channels, transpose=False),
            nn.Flatten(),
        )
        self.mean = nn.Linear(512 * 4, latent_dim)
        self.log_var = nn.Linear(512 * 4, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, 512 * 4)
        back = (512, 256, 128, 64, 32, 32)
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (512, 2, 2)),
            *_vanilla_blocks(back, transpose=True),
            nn.Conv2d(32, 3, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x):
        hidden = self.encoder(x)
        mean, log_var = self.mean(hidden), self.log_var(hidden)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        return self.decoder(self.decoder_input(z)), mean, log_var


def vanilla_loss_function(reconstruction, x, mean, log_var, kld_weight=1.0):
    """The VanillaVAE's loss: mean squared error plus the weighted KL, per example."""
    mse = functional.mse_loss(reconstruction, x)
    kld = torch.mean(-0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp(), dim=1))
    return mse + kld_weight * kld


# The models the trainer knows: network, loss, and the image range it trains on.
MODELS = {
    "fashion_mnist_conv": (TorchVAE, loss_function, (0.0, 1.0)),
    "vanilla_vae_64": (TorchVanillaVAE, vanilla_loss_function, (-1.0, 1.0)),
}


class TorchTrainer:
    """Trains a PyTorch model of `MODELS` with Adam, batch after batch of an endless loader.

    Args:
        images: float32 array `(n, H, W, C)` in [0, 1].
        batch_size: examples per step.
        seed: seed of the initial weights, the shuffling and the noise.
        learning_rate: Adam's learning rate.
        model: a key of `MODELS`.
    """

    def __init__(self, images, batch_size, seed=0, learning_rate=1e-3,
                 model="fashion_mnist_conv"):  # fmt: skip
        torch.manual_seed(seed)
        network, self.loss_function, (low, high) = MODELS[model]
        self.model = network()
        images = low + (high - low) * images
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self.loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data),
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
        )
        self.batches = iter(self.loader)
        self.last_loss = None

    def step(self):
        """Trains on the next batch; starts a new epoch when the loader runs out."""
        try:
            (x,) = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            (x,) = next(self.batches)
        self.model.train()
        self.optimizer.zero_grad()
        outputs, mean, log_var = self.model(x)
        loss = self.loss_function(outputs, x, mean, log_var)
        loss.backward()
        self.last_loss = loss.item()
        self.optimizer.step()
