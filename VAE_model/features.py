"""Latent features: encode images with a trained VAE (batched, no grad, mixed precision on CUDA).

``encode_arrays`` works on the decode-once cache of an image list (or any uint8/float array); under
torchrun each process encodes its share of the batches and the results are gathered, so extraction
scales like training.

Orientation averaging (``orientation_average=True``): the VAE is trained with random flips and
quarter-turns, so it learns to reconstruct every orientation and ``mu`` encodes the position angle.
Averaging ``mu`` over the 8 dihedral views of an image (4 quarter-turns, each with and without a
flip) gives an embedding that is exactly invariant to those 8 transforms, which is what a
"galaxies like this one" search wants (a galaxy's orientation on the sky carries no morphology).
"""
from __future__ import annotations

import numpy as np
import torch

from .batches import to_float
from .data import make_batches, shard
from .runtime import DistInfo, Precision, pick_precision


N_DIHEDRAL_VIEWS = 8


def dihedral_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 views of a batch (N, C, H, W) under the symmetries of the square: the quarter-turns
    0, 1, 2, 3 of the batch, then the same of its left-right mirror image (first view = x)."""
    # keep the batch's memory layout (channels-last batches are the fast path of the conv encoder)
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return [torch.rot90(image, turns, dims=(-2, -1)).contiguous(memory_format=layout)
            for image in (x, x.flip(-1)) for turns in range(4)]


def _encode_orientation_average(model, x: torch.Tensor, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """mu = mean of mu over the 8 dihedral views; logvar = log of the mean variance exp(logvar) over
    the views (the average encoder uncertainty; the spread of mu between views is not added)."""
    mu_sum, logvars = 0.0, []
    for view in dihedral_views(x):   # one view at a time: memory stays that of one batch
        with precision.autocast():
            mu, logvar = model.encode(view)
        mu_sum = mu_sum + mu.float()
        logvars.append(logvar.float())
    logvar_mean = torch.logsumexp(torch.stack(logvars), dim=0) - np.log(N_DIHEDRAL_VIEWS)
    return mu_sum / N_DIHEDRAL_VIEWS, logvar_mean


@torch.no_grad()
def encode_arrays(model, images: np.ndarray, device, precision: Precision | None = None,
                  batch_size: int = 1024, progress: bool = False, dist: DistInfo = DistInfo(),
                  orientation_average: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) as float32 arrays (N, latent_dim) for uint8 (N, 3, S, S) images in [0, 255]
    (a cache) or float images in [0, 1].

    ``orientation_average``: mu averaged over the 8 dihedral views of each image (``dihedral_views``),
    logvar = log of the mean variance over the views; 8x the encoding time. Default: one view.
    """
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
        if orientation_average:
            mu, logvar = _encode_orientation_average(model, x, precision)
        else:
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
def encode_pose_arrays(model, images: np.ndarray, device, batch_size: int = 1024) -> np.ndarray | None:
    """The measured pose (N, 4) of each image as written in tables (``pose.POSE_FIELDS``: centre offset in
    pixels, position angle in degrees, mirror flag) for a pose-separated VAE; None for the plain VAE."""
    from .pose import pose_table_values

    if not getattr(model, "pose_separated", False):
        return None
    out = np.zeros((len(images), 4), np.float32)
    for start in range(0, len(images), batch_size):
        chunk = torch.from_numpy(np.array(images[start:start + batch_size]))
        x = to_float(chunk, device) if chunk.dtype == torch.uint8 else chunk.float().to(device)
        out[start:start + len(x)] = pose_table_values(model.pose(x)).cpu().numpy()
    return out


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
