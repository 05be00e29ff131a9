"""The default model's network in PyTorch, trained by a plain loop.

The loop of the classic PyTorch VAE tutorials (pytorch/examples `vae`): a
`DataLoader` over a tensor of images, and per batch `zero_grad`, forward,
binary cross-entropy summed over pixels plus the KL, `backward`, `step`. The
network is keras-vae's default (`fashion_mnist_conv`) written in `torch.nn`,
channels first.
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


class TorchTrainer:
    """Trains a `TorchVAE` with Adam, batch after batch of an endless loader.

    Args:
        images: float32 array `(n, 28, 28, 1)` in [0, 1].
        batch_size: examples per step.
        seed: seed of the initial weights, the shuffling and the noise.
        learning_rate: Adam's learning rate.
    """

    def __init__(self, images, batch_size, seed=0, learning_rate=1e-3):
        torch.manual_seed(seed)
        self.model = TorchVAE()
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
        logits, mean, log_var = self.model(x)
        loss = loss_function(logits, x, mean, log_var)
        loss.backward()
        self.last_loss = loss.item()
        self.optimizer.step()
