"""Latent features: encode images with a trained VAE (batched, no grad, mixed precision on CUDA).

``encode_cache`` works on the decode-once cache of an image list; under torchrun each process
encodes its share of the batches and the results are gathered, so extraction scales like training.
"""
from __future__ import annotations

import numpy as np
import torch

from .data import make_batches, shard, to_float
from .runtime import DistInfo, Precision, pick_precision


@torch.no_grad()
def encode_arrays(model, images: np.ndarray, device, precision: Precision | None = None,
                  batch_size: int = 1024, progress: bool = False, dist: DistInfo = DistInfo()) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) as float32 arrays (N, latent_dim) for uint8 (N, 3, S, S) images in [0, 255]
    (a cache) or float images in [0, 1]."""
    from tqdm import tqdm

    precision = precision or pick_precision(torch.device(device))
    model.eval()
    n, latent_dim = len(images), model.config.latent_dim
    mu_all = np.zeros((n, latent_dim), np.float32)
    logvar_all = np.zeros((n, latent_dim), np.float32)
    batches = make_batches(np.arange(n), batch_size, shuffle=False, seed=0)
    for batch in tqdm(batches, desc="encode", unit="batch", disable=not (progress and dist.is_main), leave=False):
        part = batch[shard(batch, dist.rank, dist.world_size)]
        if len(part) == 0:
            continue
        chunk = torch.from_numpy(np.ascontiguousarray(images[part]))
        x = to_float(chunk, device, channels_last=True) if chunk.dtype == torch.uint8 else chunk.float().to(device)
        with precision.autocast():
            mu, logvar = model.encode(x)
        mu_all[part], logvar_all[part] = mu.float().cpu().numpy(), logvar.float().cpu().numpy()
    if dist.enabled:
        import torch.distributed as tdist

        for array in (mu_all, logvar_all):
            tensor = torch.from_numpy(array).to(device)
            tdist.all_reduce(tensor)   # each row is non-zero on exactly one process
            array[:] = tensor.cpu().numpy()
    return mu_all, logvar_all


@torch.no_grad()
def reconstruct_arrays(model, images: np.ndarray, device, batch_size: int = 512) -> np.ndarray:
    """Reconstructions (z = mu) as float32 (N, 3, S, S) in the stretched [0, 1] units."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
        x = to_float(chunk, device, channels_last=True) if chunk.dtype == torch.uint8 else chunk.float().to(device)
        out.append(model(x)[0].float().clamp(0, 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)
