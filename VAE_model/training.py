"""VAE training loop: epochs, validation, atomic checkpoints, resume, DDP.

Reproducibility: every epoch derives its shuffling, augmentation and reparameterisation noise
from (seed, epoch) alone, drawn for the whole global batch, so an interrupted run resumed from
its last checkpoint and a run on N processes follow the same path as one uninterrupted process.
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import runfiles
from .errors import GalaxyVAEError
from .files import atomic_write
from .batches import augment, batch_loader, device_batches, draw_augmentation, to_float
from .data import make_batches, shard
from .config import TrainSettings  # noqa: F401  (defined torch-free, re-exported here)
from .models import KLEIN_VIEWS, VAE, VAEConfig, vae_loss
from .nuisance import NuisanceSpec, random_nuisance
from .runtime import (DistInfo, Precision, atomic_torch_save, load_checkpoint, rng_state)


class NonFiniteLossError(GalaxyVAEError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept."""


class ResumeError(GalaxyVAEError, ValueError):
    """--resume refused: the checkpoint was made with other settings or data."""


# settings that change the optimisation path: a checkpoint trained with others cannot be resumed
RESUME_MUST_MATCH = ("batch_size", "lr", "beta", "val_fraction", "augment", "seed", "consistency", "pool_views")


def data_identity(list_path, paths: list[str], train_indices, val_indices) -> dict:
    """What a training run was trained on: the image list, the images (size, time) and the split."""
    import hashlib

    from .provenance import image_set_identity

    split = hashlib.sha1(np.asarray(train_indices, dtype=np.int64).tobytes() + b"|" +
                         np.asarray(val_indices, dtype=np.int64).tobytes()).hexdigest()
    return {"list": str(list_path), "list_sha1": hashlib.sha1("\n".join(paths).encode()).hexdigest(),
            "images": image_set_identity(paths), "split_sha1": split}


def resume_state(run_dir, config: VAEConfig, settings: TrainSettings, data: dict | None, device,
                 checkpoint_name: str = runfiles.CHECKPOINT) -> dict | None:
    """The checkpoint to resume from, after checking that nothing that shapes the run changed: model
    configuration, optimiser and split settings, the image list, its images and the split itself.
    None when there is no checkpoint yet; ValueError (one line) on any change."""
    checkpoint_path = Path(run_dir) / checkpoint_name
    if not checkpoint_path.exists():
        return None
    state = load_checkpoint(checkpoint_path, map_location=device)
    if VAEConfig.from_dict(state["model_config"]) != config:
        raise ResumeError(f"{checkpoint_path}: model configuration differs from the requested one; "
                          "use another --run directory or the same --latent-dim/--image-size/--arch")
    changed = settings_mismatch(state.get("settings", {}), settings)
    saved_data = state.get("data")
    if data is not None:
        if saved_data is None:
            changed.append("image list (not recorded in this checkpoint)")
        else:
            labels = {"list_sha1": "image list", "images": "images on disk", "split_sha1": "train/validation split"}
            changed += [label for key, label in labels.items() if saved_data.get(key) != data.get(key)]
    if changed:
        raise ResumeError(f"{checkpoint_path}: trained with other {', '.join(changed)}; resume with the same "
                          "settings and data, or train from scratch (without --resume) or in another --run directory")
    return state


def settings_mismatch(saved: dict, settings: TrainSettings) -> list[str]:
    """Names of the settings that differ between a checkpoint's and the requested ones."""
    return [key for key in RESUME_MUST_MATCH if key in saved and saved[key] != getattr(settings, key)]


HISTORY_FIELDS = ["epoch", "train_loss", "train_mse_sum", "train_kl", "train_consistency", "val_loss", "val_mse_sum",
                  "val_kl", "val_mse_per_pixel", "images_per_s", "seconds"]


def consistency_loss(mu: torch.Tensor, mu_other: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between the content latents of each galaxy and of its nuisance-transformed
    copy, over the batch's total latent variance (both views):

        C = mean_i |mu_i - mu'_i|^2 / sum_d Var_batch(mu_d)

    Normalised so that shrinking the latent space cannot win it (collapse leaves C unchanged); C = 2
    for latents unrelated to their copies', 0 for invariant ones."""
    both = torch.cat([mu, mu_other]).float()
    variance = both.var(0).sum().clamp_min(1e-8)
    return (mu.float() - mu_other.float()).pow(2).sum(1).mean() / variance


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def build_model(config: VAEConfig, device: torch.device, settings: TrainSettings) -> VAE:
    torch.manual_seed(settings.seed)   # the same initial weights on every process
    model = VAE(config).to(device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def wrap_model(model: VAE, device: torch.device, dist: DistInfo, settings: TrainSettings):
    """The module the loop calls: DDP over processes, optionally torch.compile'd."""
    module = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if settings.compile:
        module = torch.compile(module)
    return module


def _all_reduce_sum(values: list[float], device: torch.device, dist: DistInfo) -> list[float]:
    if not dist.enabled:
        return [float(v) for v in values]
    import torch.distributed as tdist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    tdist.all_reduce(tensor)
    return tensor.tolist()


def train_one_epoch(module, optimizer, scaler, precision: Precision, cache, indices, epoch: int,
                    settings: TrainSettings, device, dist: DistInfo, config: VAEConfig, progress: bool = True) -> dict:
    """One pass over the training indices; returns per-image means and throughput.

    The pose-separated model encodes one random Klein view of each canonical galaxy (models.klein_view),
    drawn here with the rest so that results do not depend on the process count, or the four pooled
    (``settings.pool_views``)."""
    from tqdm import tqdm

    module.train()
    seed = epoch_seed(settings.seed, epoch)
    batches = make_batches(indices, settings.batch_size, shuffle=True, seed=seed)
    parts = [shard(batch, dist.rank, dist.world_size) for batch in batches]
    counts = [len(batch[part]) for batch, part in zip(batches, parts)]
    # a last global batch smaller than the process count leaves a process an empty slice: it still
    # joins the gradient all-reduce, with one image at weight 0
    parts = [part if count else slice(0, 1) for part, count in zip(parts, counts)]
    generator = torch.Generator().manual_seed(seed)
    loader = batch_loader(cache, [b[p] for b, p in zip(batches, parts)], device, settings.workers)
    totals = torch.zeros(4, dtype=torch.float64, device=device)   # summed on the device: no sync per step
    nuisance = NuisanceSpec(pixel_scale_arcsec=settings.pixel_scale_arcsec)
    one_view = config.pose != "none" and not settings.pool_views
    n_images = 0
    start = time.perf_counter()
    bar = tqdm(zip(device_batches(loader, device, settings.channels_last), batches, parts, counts),
               total=len(batches), desc=f"epoch {epoch}", unit="batch", leave=False,
               disable=not (progress and dist.is_main))
    for step, (images, batch, part, n_local) in enumerate(bar):
        # draws for the whole global batch, then this process's slice
        flips, turns = draw_augmentation(len(batch), generator)
        noise = torch.randn(len(batch), config.latent_dim, generator=generator)
        views = torch.randint(0, KLEIN_VIEWS, (len(batch),), generator=generator) if one_view else None
        if settings.augment:
            images = augment(images, flips[part], turns[part])
        consistency = torch.zeros((), device=device)
        if settings.consistency > 0:
            # each galaxy twice, the second time through the nuisance transforms; both are reconstructed
            # and their content latents pulled together (consistency_loss)
            n_here = len(images)
            other_noise = torch.randn(len(batch), config.latent_dim, generator=generator)[part]
            other_views = torch.randint(0, KLEIN_VIEWS, (len(batch),), generator=generator)[part] if one_view else None
            others = random_nuisance(images, nuisance, generator)
            images = torch.cat([images, others])
            with precision.autocast():
                reconstruction, mu, logvar = module(images, torch.cat([noise[part], other_noise]).to(device),
                                                    None if views is None else torch.cat([views[part], other_views]))
            consistency = consistency_loss(mu[:n_here], mu[n_here:])
        else:
            with precision.autocast():
                reconstruction, mu, logvar = module(images, noise[part].to(device, non_blocking=True),
                                                    None if views is None else views[part])
        loss, mse, kl = vae_loss(reconstruction, images, mu, logvar, settings.beta)
        loss = loss + settings.consistency * consistency
        _check_finite(loss, epoch, step, device, dist)
        # DDP averages gradients over processes; weighting each slice by its share of the global
        # batch makes that average the one-process gradient even when slices differ in size
        weight = n_local * dist.world_size / len(batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss * weight if weight != 1 else loss).backward()
        scaler.step(optimizer)
        scaler.update()
        totals += torch.stack([loss.detach(), mse.detach(), kl.detach(), consistency.detach()]).double() * n_local
        n_images += n_local
    totals = totals.tolist()
    sums = _all_reduce_sum([*totals, n_images], device, dist)
    seconds = time.perf_counter() - start
    n_total = max(sums[4], 1)
    return {"train_loss": sums[0] / n_total, "train_mse_sum": sums[1] / n_total, "train_kl": sums[2] / n_total,
            "train_consistency": sums[3] / n_total, "images_per_s": sums[4] / seconds, "seconds": seconds}


def _check_finite(loss: torch.Tensor, epoch: int, step: int, device, dist: DistInfo) -> None:
    """Stop on a NaN/inf loss; under DDP every process sees a non-finite loss on any of them
    (a sum of the losses), so all stop together instead of one waiting forever in all-reduce."""
    value = loss.detach().float().reshape(1)
    if dist.enabled:
        import torch.distributed as tdist

        value = value.clone()
        tdist.all_reduce(value)
    if not torch.isfinite(value).all():
        raise NonFiniteLossError(f"epoch {epoch} step {step}: non-finite loss ({value.item()}); "
                                 "training stopped, the last good checkpoint is kept")


@torch.no_grad()
def evaluate(module, precision: Precision, cache, indices, batch_size: int, device, dist: DistInfo,
             beta: float = 1.0, channels_last: bool = False) -> dict:
    """Validation loss per image with z = mu (no sampling noise), summed over processes."""
    module.eval()
    totals = np.zeros(3)
    n_images = 0
    batches = make_batches(indices, batch_size, shuffle=False, seed=0)
    for batch in batches:
        part = batch[shard(batch, dist.rank, dist.world_size)]
        if len(part) == 0:
            continue
        images = to_float(torch.from_numpy(np.ascontiguousarray(cache[part])), device, channels_last)
        with precision.autocast():
            reconstruction, mu, logvar = module(images)
        loss, mse, kl = vae_loss(reconstruction, images, mu, logvar, beta)
        totals += np.array([loss.item(), mse.item(), kl.item()]) * len(part)
        n_images += len(part)
    sums = _all_reduce_sum([*totals, n_images], device, dist)
    n_total = max(sums[3], 1)
    pixels = int(np.prod(cache.shape[1:]))
    return {"val_loss": sums[0] / n_total, "val_mse_sum": sums[1] / n_total, "val_kl": sums[2] / n_total,
            "val_mse_per_pixel": sums[1] / n_total / pixels}


def save_training_checkpoint(path, model: VAE, optimizer, scaler, epoch: int, history: list[dict],
                             best_val: float, settings: TrainSettings, args_record: dict,
                             data: dict | None = None) -> None:
    atomic_torch_save({
        "model": model.state_dict(), "model_config": model.config.to_dict(),
        "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "epoch": epoch, "history": history, "best_val_loss": best_val,
        "settings": vars(settings).copy(), "args": args_record, "rng_state": rng_state(), "data": data,
    }, path)


def write_csv_rows(rows: list[dict], fields: list[str], path: str | Path) -> None:
    """Write per-epoch rows as CSV (atomically: a reader never sees half a file)."""
    with atomic_write(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key) for key in fields})


def write_history(history: list[dict], path: str | Path) -> None:
    write_csv_rows(history, HISTORY_FIELDS, path)


def fit(run_dir: str | Path, cache, train_indices, val_indices, config: VAEConfig, settings: TrainSettings,
        device: torch.device, precision: Precision, dist: DistInfo = DistInfo(), resume: bool = False,
        args_record: dict | None = None, progress: bool = True, log=print, data: dict | None = None,
        start_state: dict | None = None, on_epoch=None) -> tuple[VAE, list[dict]]:
    """Train (or resume) a VAE in ``run_dir``; checkpoint every epoch (atomic) and keep the best.

    ``data`` (``data_identity``) is stored in the checkpoints so a resume can refuse other data;
    ``start_state`` is a checkpoint already checked by ``resume_state`` (else it is loaded and
    checked here when ``resume``). ``on_epoch(history)`` runs on the main process after each
    epoch's checkpoints are written (e.g. to record their provenance).
    Returns the model at the last epoch and the per-epoch history.
    """
    run_dir = Path(run_dir)
    model = build_model(config, device, settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scaler = precision.scaler()
    history, start_epoch, best_val = [], 1, math.inf
    checkpoint_path = run_dir / runfiles.CHECKPOINT
    state = start_state
    if resume and state is None:
        state = resume_state(run_dir, config, settings, data, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, best_val = state["history"], state["best_val_loss"]
        start_epoch = state["epoch"] + 1
        log(f"resumed from {checkpoint_path} at epoch {state['epoch']}")
    elif resume and not checkpoint_path.exists():
        log(f"--resume: no checkpoint in {run_dir}, starting from scratch")
    module = wrap_model(model, device, dist, settings)
    record = args_record or {}
    for epoch in range(start_epoch, settings.epochs + 1):
        row = {"epoch": epoch}
        row.update(train_one_epoch(module, optimizer, scaler, precision, cache, train_indices, epoch, settings,
                                   device, dist, config, progress))
        if len(val_indices):
            row.update(evaluate(module, precision, cache, val_indices, settings.batch_size, device, dist,
                                settings.beta, settings.channels_last))
        history.append(row)
        if dist.is_main:
            val = row.get("val_loss", row["train_loss"])
            if val < best_val:
                best_val = val
                save_training_checkpoint(run_dir / runfiles.BEST_CHECKPOINT, model, optimizer, scaler, epoch,
                                         history, best_val, settings, record, data)
            save_training_checkpoint(checkpoint_path, model, optimizer, scaler, epoch, history, best_val,
                                     settings, record, data)
            write_history(history, run_dir / runfiles.LOSS_CSV)
            if on_epoch is not None:
                on_epoch(history)
            held_out = (f"val {row['val_loss']:.2f}  (val MSE/pixel {row['val_mse_per_pixel']:.5f})  "
                        if "val_loss" in row else "(no validation split)  ")
            log(f"epoch {epoch:3d}/{settings.epochs}  train {row['train_loss']:.2f}  {held_out}"
                f"{row['images_per_s']:.0f} images/s")
    return model, history
