"""A contrastive baseline: SimCLR (Chen et al. 2020, ICML) with the VAE's encoder backbone.

What the field uses for galaxy similarity search (Hayat et al. 2021, ApJL 911, L33 on SDSS;
Stein et al. 2022 on the Legacy Surveys): an encoder trained so that two nuisance-transformed views
of one galaxy land close and views of different galaxies apart. Here the backbone is exactly the VAE
encoder (``models.Encoder``, its ``mu`` layer giving the ``latent_dim``-wide feature), the views come
from the same nuisance transforms as the VAE's consistency term (nuisance.py: any rotation, mirror,
shift, seeing, depth, calibration), and a 2-layer projection head carries the loss (features are
taken before it, as SimCLR does):

    NT-Xent = -1/2N sum_i log exp(s(z_i, z_i') / tau) / sum_{k != i} exp(s(z_i, z_k) / tau),

s the cosine similarity over the 2N views of a batch, tau = 0.2. Trained for a given wall time so
that it can be compared with a VAE trained for as long (bench/feature_variants.py).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batches import to_float
from .data import make_batches
from .models import Encoder, VAEConfig
from .nuisance import NuisanceSpec, random_nuisance

TEMPERATURE = 0.2
PROJECTION_DIM = 64


class ContrastiveEncoder(nn.Module):
    """The VAE encoder (features = its ``mu`` output) plus a projection head used only in training."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.head = nn.Sequential(nn.Linear(config.latent_dim, 128), nn.ReLU(), nn.Linear(128, PROJECTION_DIM))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy (module docstring); z1[i], z2[i] are one galaxy."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = len(z1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, partner)


def train_contrastive(cache: np.ndarray, indices, config: VAEConfig, device, seconds: float | None = None,
                      epochs: int = 1000, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                      spec: NuisanceSpec = NuisanceSpec(), progress: bool = False) -> tuple[ContrastiveEncoder, list[dict]]:
    """Train on the cache rows ``indices`` for ``seconds`` of wall time (or ``epochs``); (model, history)."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    model = ContrastiveEncoder(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history, start = [], time.perf_counter()
    indices = np.asarray(indices)
    bar = tqdm(total=seconds, unit="s", desc="contrastive", disable=not progress, leave=False)
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for batch in make_batches(indices, batch_size, shuffle=True, seed=seed * 1000 + epoch):
            if len(batch) < 2:
                continue
            images = to_float(torch.from_numpy(np.ascontiguousarray(cache[np.sort(batch)])), device)
            loss = nt_xent_loss(model(random_nuisance(images, spec, generator)),
                                model(random_nuisance(images, spec, generator)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        elapsed = time.perf_counter() - start
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "seconds": elapsed})
        bar.update(min(elapsed, seconds or elapsed) - bar.n)
        if seconds is not None and elapsed >= seconds:
            break
    bar.close()
    return model.eval(), history


@torch.no_grad()
def encode_contrastive(model: ContrastiveEncoder, images: np.ndarray, device, batch_size: int = 512) -> np.ndarray:
    """Features (N, latent_dim) of uint8 (N, 3, S, S) or float images in [0, 1]."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
        x = to_float(chunk, device) if chunk.dtype == torch.uint8 else chunk.float().to(device)
        out.append(model.features(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.latent_dim), np.float32)
