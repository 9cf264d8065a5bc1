"""V: the convolutional VAE of the paper's appendix (4 stride-2 convs, latent N_z, 4 stride-2 deconvs).

Layout from the authors' ``vae.py``: conv 32-64-128-256 (kernel 4), dense to mu and logvar, dense to 1024,
deconv 128-64-32-3 (kernels 5, 5, 6, 6), sigmoid output. CarRacing (N_z = 32): 4,348,547 parameters.
"""
from __future__ import annotations

import torch
from torch import nn


class ConvVAE(nn.Module):
    def __init__(self, z_size: int) -> None:
        super().__init__()
        self.z_size = z_size
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2), nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2), nn.ReLU(),
            nn.Flatten())  # (B, 1024)
        self.fc_mu = nn.Linear(1024, z_size)
        self.fc_logvar = nn.Linear(1024, z_size)
        self.fc_decode = nn.Linear(z_size, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, 64, 64) in [0, 1] -> mu, logvar: (B, z_size)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, z_size) -> (B, 3, 64, 64) in [0, 1]."""
        return self.decoder(self.fc_decode(z).view(-1, 1024, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.exp(logvar / 2) * torch.randn_like(mu)
        return self.decode(z), mu, logvar


def vae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             kl_tolerance: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The authors' loss: summed squared error per image, plus the KL per image floored at kl_tolerance * N_z,
    each averaged over the batch. Returns (loss, reconstruction, kl)."""
    reconstruction = (x - recon).pow(2).sum(dim=(1, 2, 3)).mean()
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)  # (B,)
    kl = torch.clamp(kl, min=kl_tolerance * mu.shape[1]).mean()
    return reconstruction + kl, reconstruction, kl


def to_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, 64, 64, 3) -> float (B, 3, 64, 64) in [0, 1]."""
    return frames.permute(0, 3, 1, 2).float().div(255.0)


def to_frames(images: torch.Tensor) -> torch.Tensor:
    """float (B, 3, 64, 64) in [0, 1] -> uint8 (B, 64, 64, 3)."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)


def sample_z(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.exp(logvar / 2) * torch.randn_like(mu)


__all__ = ["ConvVAE", "vae_loss", "to_input", "to_frames", "sample_z"]
