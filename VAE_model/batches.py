"""Batches on the device: uint8 cache batches to float tensors, the data loader, and augmentation.

The torch side of the data path (VAE_model/data.py keeps the lists, the decode-once cache and the
batch indices without torch, so a stage that only reads the cache, such as a similarity query by
name, never imports torch: ~2.5 s of CPU per process).
"""
from __future__ import annotations

import numpy as np
import torch


def to_float(batch_uint8: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 batch -> float32 [0, 1] on the device (conversion after the transfer: 4x less traffic)."""
    batch = batch_uint8.to(device, non_blocking=True).float().div_(255.0)
    return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch


def draw_augmentation(n_images: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (flip, quarter-turns) per image, drawn on the CPU from a seeded generator."""
    flips = torch.rand(n_images, generator=generator) < 0.5
    turns = torch.randint(0, 4, (n_images,), generator=generator)
    return flips, turns


def augment(images: torch.Tensor, flips: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Apply flips and 90-degree rotations on the device (galaxy orientation is arbitrary)."""
    images = torch.where(flips.to(images.device, non_blocking=True)[:, None, None, None], images.flip(-1), images)
    out = images.clone()
    turns = turns.cpu()
    for k in (1, 2, 3):
        # which images turn by k is decided on the CPU, so a GPU never has to report back (no sync)
        chosen = torch.nonzero(turns == k).flatten()
        if len(chosen):
            chosen = chosen.to(images.device, non_blocking=True)
            out[chosen] = torch.rot90(images[chosen], k, dims=(-2, -1))
    return out


class CachedBatches(torch.utils.data.Dataset):
    """Whole batches sliced from the cache (sorted indices give sequential memmap reads).

    Used with ``DataLoader(batch_size=None)`` so workers and pinned memory can overlap the
    reads with compute on a GPU.
    """

    def __init__(self, cache, batches: list[np.ndarray]):
        self.cache = cache
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.cache[self.batches[i]]))


def batch_loader(cache: np.ndarray, batches: list[np.ndarray], device: torch.device, workers: int = 0):
    """Iterate uint8 batches; on CUDA with worker processes and pinned memory."""
    dataset = CachedBatches(cache, batches)
    use_workers = workers if device.type == "cuda" else 0
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=use_workers,
                                       pin_memory=device.type == "cuda", persistent_workers=False)


def device_batches(loader, device: torch.device, channels_last: bool = False):
    """Float [0, 1] batches on the device from a loader of uint8 batches (see ``to_float``).

    On CUDA the copy of batch k+1 to the GPU is started on a side stream before batch k is handed
    out, so it overlaps the computation on batch k (on one stream the two would run in turn).
    """
    if device.type != "cuda":
        for batch in loader:
            yield to_float(batch, device, channels_last)
        return
    copy_stream, compute_stream = torch.cuda.Stream(device), torch.cuda.current_stream(device)

    def start_copy(batch):
        with torch.cuda.stream(copy_stream):
            moved = batch.to(device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(copy_stream)
        return moved, done

    def ready(moved, done):
        compute_stream.wait_event(done)
        moved.record_stream(compute_stream)   # its memory is reused only after the compute stream is done
        return to_float(moved, device, channels_last)

    pending = None
    for batch in loader:
        incoming = start_copy(batch)
        if pending is not None:
            yield ready(*pending)
        pending = incoming
    if pending is not None:
        yield ready(*pending)


__all__ = ["to_float", "draw_augmentation", "augment", "CachedBatches", "batch_loader", "device_batches"]
