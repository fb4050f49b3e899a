"""Part II fine-tuning of the Part I VAE on both surveys with an alignment term.

Training loss per step:  vae_loss(DECaLS batch) + vae_loss(BASS+MzLS batch) + lambda * alignment
                         [+ w * consistency over both batches, for the consistency methods],
starting from the Part I model, so the reconstruction terms keep Part I quality.

Methods (``METHODS``; only ``paired`` uses the cross-matched pairs, the others draw the two surveys'
batches as independent permutations):
  mmd              alignment = multi-kernel MMD^2 between the two batches' mu (losses.mmd2)
  paired           alignment = distance between the mu of the two images of one galaxy
  consistency      no alignment term; every image of both batches is also seen through the nuisance
                   transforms (nuisance.random_nuisance: orientation, shift, the DECaLS -> BASS+MzLS
                   PSF difference, noise, flux scatter) and training.consistency_loss pulls the content
                   latents of each image and of its copy together ("invariant training alone")
  consistency_mmd  the consistency term and the MMD term ("invariant training + MMD")

READS   RUN/transfer/<method>/checkpoint.pt when resuming
WRITES  RUN/transfer/<method>/checkpoint.pt, best.pt, history.csv (names from ``runfiles``)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import runfiles
from ..batches import augment, draw_augmentation, to_float
from ..imageio import PIXEL_SCALE_ARCSEC
from ..models import VAE, vae_loss
from ..nuisance import NuisanceSpec, random_nuisance
from ..runtime import Precision, load_checkpoint
from ..training import (NonFiniteLossError, ResumeError, consistency_loss, epoch_seed, save_training_checkpoint,
                        write_csv_rows)
from .losses import DEFAULT_KERNEL_MULTIPLIERS, mmd2, paired_loss
from .metrics import paired_distances, random_pair_distances
from ..config import ADAPT_CONSISTENCY_WEIGHT, ADAPT_NUISANCE_SCALE, ADAPT_METHODS as METHODS, kl_weight_value

MMD_METHODS = ("mmd", "consistency_mmd")
CONSISTENCY_METHODS = ("consistency", "consistency_mmd")
# the loss's weights (AdaptSettings field -> transfer/adapt.py flag): resuming a checkpoint with others
# would train its later epochs on another objective than its first ones
RESUME_MUST_MATCH = {"align_weight": "--lambda", "consistency_weight": "--consistency",
                     "nuisance_scale": "--nuisance-scale"}


@dataclass
class AdaptSettings:
    method: str = "mmd"                  # one of METHODS (module docstring); 'mmd' is the reference
    align_weight: float = 0.1            # lambda of the alignment term (MMD or paired; 'consistency' has none)
    # weight of training.consistency_loss for the consistency methods; the default is the Part I
    # variants' (bench/feature_variants.py --consistency): the term is ~0..2, the summed-MSE VAE loss tens
    consistency_weight: float = ADAPT_CONSISTENCY_WEIGHT
    # arcsec/pixel of the images (sizes the nuisance blur and noise): the Part I training's, from its checkpoint
    pixel_scale_arcsec: float = PIXEL_SCALE_ARCSEC
    # multiplies the survey-like nuisances (seeing, depth, calibration; nuisance.NuisanceSpec): at 1 they are
    # Part I's; on the demo mock the median DECaLS -> BASS+MzLS latent move at gap 1 is ~5x that of a nuisance
    # copy, and survey-like nuisances x2-3 move the latents about as far
    nuisance_scale: float = ADAPT_NUISANCE_SCALE
    epochs: int = 20
    batch_size: int = 128                # per survey: each step sees 2 x batch_size images
    lr: float = 1e-5
    beta: float | str = 1.0       # or config.CALIBRATED_BETA (models.vae_loss)
    augment: bool = True
    seed: int = 0
    kernel_multipliers: tuple = field(default=DEFAULT_KERNEL_MULTIPLIERS)
    mmd_estimator: str = "biased"        # or 'unbiased'
    paired_distance: str = "squared"     # or 'euclidean'

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.mmd_estimator not in ("biased", "unbiased"):
            raise ValueError(f"mmd_estimator must be 'biased' or 'unbiased', got {self.mmd_estimator!r}")
        if not self.nuisance_scale >= 0:
            raise ValueError(f"nuisance_scale must be >= 0, got {self.nuisance_scale!r}")
        if self.paired_distance not in ("squared", "euclidean"):
            raise ValueError(f"paired_distance must be 'squared' or 'euclidean', got {self.paired_distance!r}")
        self.kernel_multipliers = tuple(float(s) for s in self.kernel_multipliers)

    @property
    def uses_pairs(self) -> bool:
        """Whether the two surveys' batches hold the same galaxies (only the paired method)."""
        return self.method == "paired"

    @property
    def uses_consistency(self) -> bool:
        return self.method in CONSISTENCY_METHODS

    def nuisance(self) -> NuisanceSpec:
        base = NuisanceSpec()
        return NuisanceSpec(pixel_scale_arcsec=self.pixel_scale_arcsec, seeing_scale=base.seeing_scale * self.nuisance_scale,
                            noise_scale=base.noise_scale * self.nuisance_scale,
                            band_mag_sd=base.band_mag_sd * self.nuisance_scale)


def alignment_loss(mu_decals: torch.Tensor, mu_bass: torch.Tensor, settings: AdaptSettings) -> torch.Tensor:
    if settings.method == "paired":
        return paired_loss(mu_decals, mu_bass, settings.paired_distance)
    if settings.method in MMD_METHODS:
        return mmd2(mu_decals, mu_bass, settings.kernel_multipliers, unbiased=settings.mmd_estimator == "unbiased")
    return mu_decals.new_zeros((), dtype=torch.float32)        # 'consistency': no alignment term


def part1_training_setting(checkpoint, name: str, default: float) -> float | str:
    """A setting the Part I model was trained with (its checkpoint's TrainSettings), else ``default``
    (checkpoints from before the setting existed): the KL weight ``beta`` (a number or 'calibrated'),
    ``pixel_scale_arcsec``."""
    value = load_checkpoint(checkpoint).get("settings", {}).get(name, default)
    return kl_weight_value(value) if name == "beta" else float(value)


ADAPT_HISTORY_FIELDS = ["epoch", "train_loss", "train_vae_decals", "train_vae_bass", "train_align",
                        "train_consistency", "val_loss", "val_vae_decals", "val_vae_bass", "val_align",
                        "val_consistency", "val_distance_ratio", "images_per_s", "seconds"]


def _batches(order_decals: np.ndarray, order_bass: np.ndarray, batch_size: int):
    """Aligned slices of the two orders; a last batch of 1 is dropped (MMD needs 2 per side)."""
    for start in range(0, len(order_decals), batch_size):
        idx_d, idx_b = order_decals[start:start + batch_size], order_bass[start:start + batch_size]
        if len(idx_d) >= 2:
            yield idx_d, idx_b


def _read(cache, indices: np.ndarray) -> torch.Tensor:
    """Rows of a uint8 memmap in the given order (read sorted: sequential disk access)."""
    order = np.argsort(indices, kind="stable")
    rows = np.empty((len(indices), *cache.shape[1:]), dtype=cache.dtype)
    rows[order] = cache[indices[order]]
    return torch.from_numpy(rows)


def adapt_one_epoch(model: VAE, optimizer, scaler, precision: Precision, decals_cache, bass_cache,
                    indices: np.ndarray, epoch: int, settings: AdaptSettings, device, progress: bool = True) -> dict:
    """One pass over the train pairs. paired: the same galaxies in the same order, with the same
    flips/rotation; every other method: the two surveys' batches are independent permutations (pairs
    unused). Consistency methods also encode each image's nuisance copy (module docstring)."""
    from tqdm import tqdm

    model.train()
    seed = epoch_seed(settings.seed, epoch)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    order_d = rng.permutation(indices)
    order_b = order_d if settings.uses_pairs else rng.permutation(indices)
    batches = list(_batches(order_d, order_b, settings.batch_size))
    nuisance = settings.nuisance()
    totals, n_images, start = np.zeros(5), 0, time.perf_counter()
    for step, (idx_d, idx_b) in enumerate(tqdm(batches, desc=f"{settings.method} epoch {epoch}", unit="batch",
                                               leave=False, disable=not progress)):
        n = len(idx_d)
        flips, turns = draw_augmentation(n, generator)
        if settings.uses_pairs:
            flips_b, turns_b = flips, turns            # the two images of a galaxy stay aligned
        else:
            flips_b, turns_b = draw_augmentation(n, generator)
        noise = torch.randn(2 * n, model.config.latent_dim, generator=generator)
        x_d, x_b = to_float(_read(decals_cache, idx_d), device), to_float(_read(bass_cache, idx_b), device)
        if settings.augment:
            x_d, x_b = augment(x_d, flips, turns), augment(x_b, flips_b, turns_b)
        images = torch.cat([x_d, x_b])
        consistency = torch.zeros((), device=device)
        with precision.autocast():
            reconstruction, mu, logvar = model(images, noise.to(device))
            if settings.uses_consistency:
                # the nuisance copies only enter the consistency term: encoded, not decoded
                mu_copies = model.encode(random_nuisance(images, nuisance, generator))[0]
        if settings.uses_consistency:
            consistency = consistency_loss(mu, mu_copies)
        loss_d = vae_loss(reconstruction[:n], x_d, mu[:n], logvar[:n], settings.beta)[0]
        loss_b = vae_loss(reconstruction[n:], x_b, mu[n:], logvar[n:], settings.beta)[0]
        align = alignment_loss(mu[:n], mu[n:], settings)
        loss = loss_d + loss_b + settings.align_weight * align + settings.consistency_weight * consistency
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"{settings.method} epoch {epoch} step {step}: loss is {loss.item()} "
                                     "(non-finite); adaptation stopped, the last good checkpoint is kept")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        totals += np.array([loss.item(), loss_d.item(), loss_b.item(), align.item(), consistency.item()]) * n
        n_images += 2 * n
    seconds = time.perf_counter() - start
    n_pairs = max(n_images // 2, 1)
    return {"train_loss": totals[0] / n_pairs, "train_vae_decals": totals[1] / n_pairs,
            "train_vae_bass": totals[2] / n_pairs, "train_align": totals[3] / n_pairs,
            "train_consistency": totals[4] / n_pairs, "images_per_s": n_images / max(seconds, 1e-9),
            "seconds": seconds}


@torch.no_grad()
def adapt_validation(model: VAE, precision: Precision, decals_cache, bass_cache, indices: np.ndarray,
                     settings: AdaptSettings, device, batch_size: int = 256) -> dict:
    """The adaptation objective on held-out train pairs (z = mu): the epoch with the lowest
    ``val_loss`` becomes best.pt. The alignment and consistency terms are evaluated on the whole
    held-out set; the consistency term's nuisance copies are drawn from ``settings.seed`` alone, so
    every epoch sees the same copies. (``val_distance_ratio``, paired / random distance of the
    held-out pairs, is reported for every method but enters no method's ``val_loss``.)"""
    model.eval()
    indices = np.sort(np.asarray(indices))
    generator = torch.Generator().manual_seed(settings.seed)
    nuisance = settings.nuisance()
    sums, mus_d, mus_b, copies = np.zeros(2), [], [], ([], [])
    for start in range(0, len(indices), batch_size):
        part = indices[start:start + batch_size]
        for k, cache, mus in ((0, decals_cache, mus_d), (1, bass_cache, mus_b)):
            x = to_float(_read(cache, part), device)
            with precision.autocast():
                reconstruction, mu, logvar = model(x)
            sums[k] += vae_loss(reconstruction, x, mu, logvar, settings.beta)[0].item() * len(part)
            mus.append(mu.float())
            if settings.uses_consistency:
                copies[0].append(mu.float())
                with precision.autocast():
                    copies[1].append(model.encode(random_nuisance(x, nuisance, generator))[0].float())
    mu_d, mu_b = torch.cat(mus_d), torch.cat(mus_b)
    align = alignment_loss(mu_d, mu_b, settings).item() if len(indices) >= 2 else 0.0
    consistency = (consistency_loss(torch.cat(copies[0]), torch.cat(copies[1])).item()
                   if settings.uses_consistency and len(indices) >= 2 else 0.0)
    n = max(len(indices), 1)
    d_np, b_np = mu_d.cpu().numpy(), mu_b.cpu().numpy()
    random = random_pair_distances(d_np, b_np, n_samples=20_000, seed=settings.seed)
    ratio = float(np.median(paired_distances(d_np, b_np)) / np.median(random)) if len(random) else float("nan")
    return {"val_loss": (sums[0] / n + sums[1] / n + settings.align_weight * align
                         + settings.consistency_weight * consistency),
            "val_vae_decals": sums[0] / n, "val_vae_bass": sums[1] / n, "val_align": align,
            "val_consistency": consistency, "val_distance_ratio": ratio}


def write_adapt_history(history: list[dict], path: str | Path) -> None:
    write_csv_rows(history, ADAPT_HISTORY_FIELDS, path)


def check_loss_settings(checkpoint_path, saved: dict, settings: AdaptSettings) -> None:
    """ResumeError (one line) when a loss weight of ``settings`` differs from the one the checkpoint
    was trained with (``saved``, its "settings" record)."""
    for key, flag in RESUME_MUST_MATCH.items():
        # a checkpoint older than the setting does not record it: what it was trained with is unknown,
        # so that comparison is skipped rather than guessed from today's default
        if key in saved and saved[key] != getattr(settings, key):
            raise ResumeError(f"{checkpoint_path}: trained with {flag} {saved[key]}, not {getattr(settings, key)}; "
                              f"pass {flag} {saved[key]} to continue it, or drop --resume to start again")


def adapt(run_dir: str | Path, model: VAE, decals_cache, bass_cache, train_indices, val_indices,
          settings: AdaptSettings, device, precision: Precision, resume: bool = False,
          args_record: dict | None = None, progress: bool = True, log=print,
          on_epoch=None) -> tuple[VAE, list[dict]]:
    """Fine-tune ``model`` (the Part I VAE, on ``device``) on both surveys' train pairs.

    ``on_epoch(history)`` runs after each epoch's files are written (to record their provenance).

    Every epoch: RUN/transfer/<method>/checkpoint.pt (atomic, training.save_training_checkpoint
    format) and history.csv; best.pt when the held-out adaptation loss improves. History row
    epoch 0 (held-out metrics of the starting model) is for reference only; best.pt is chosen
    among the adapted epochs. ``resume`` continues from checkpoint.pt (same method and loss weights
    required: ``check_loss_settings``).
    Raises NonFiniteLossError on NaN/inf.
    """
    checkpoint_path = runfiles.run_path(run_dir, runfiles.ADAPT_CHECKPOINT.format(method=settings.method))
    best_path = runfiles.run_path(run_dir, runfiles.ADAPT_BEST.format(method=settings.method))
    history_path = runfiles.run_path(run_dir, runfiles.ADAPT_HISTORY_CSV.format(method=settings.method))
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scaler = precision.scaler()
    history, start_epoch, best_val = [], 1, math.inf
    if resume and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, map_location=device)
        if state.get("settings", {}).get("method") != settings.method:
            raise ResumeError(f"{checkpoint_path}: saved by method {state.get('settings', {}).get('method')!r}, "
                              f"not {settings.method!r}; drop --resume to start again")
        if state["model_config"] != model.config.to_dict():
            raise ResumeError(f"{checkpoint_path}: model configuration differs from the Part I model's; "
                              "drop --resume to start again")
        check_loss_settings(checkpoint_path, state.get("settings", {}), settings)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, best_val, start_epoch = state["history"], state["best_val_loss"], state["epoch"] + 1
        log(f"resumed from {checkpoint_path} at epoch {state['epoch']}")
    elif resume:
        log(f"--resume: no checkpoint in {checkpoint_path.parent}, starting from the Part I model")
    train_indices, val_indices = np.asarray(train_indices), np.asarray(val_indices)
    record = args_record or {}
    if start_epoch == 1 and len(val_indices) >= 2:   # epoch 0: the Part I model, for reference
        history.append({"epoch": 0, **adapt_validation(model, precision, decals_cache, bass_cache, val_indices,
                                                        settings, device)})
        log(f"{settings.method} epoch   0 (Part I model)  val {history[0]['val_loss']:.2f}  "
            f"val align {history[0]['val_align']:.4f}  val distance ratio {history[0]['val_distance_ratio']:.3f}")
    for epoch in range(start_epoch, settings.epochs + 1):
        row = {"epoch": epoch}
        row.update(adapt_one_epoch(model, optimizer, scaler, precision, decals_cache, bass_cache, train_indices,
                                   epoch, settings, device, progress))
        if len(val_indices) >= 2:
            row.update(adapt_validation(model, precision, decals_cache, bass_cache, val_indices, settings, device))
        history.append(row)
        val = row.get("val_loss", row["train_loss"])
        if val < best_val:
            best_val = val
            save_training_checkpoint(best_path, model, optimizer, scaler, epoch, history, best_val, settings, record)
        save_training_checkpoint(checkpoint_path, model, optimizer, scaler, epoch, history, best_val, settings, record)
        write_adapt_history(history, history_path)
        if on_epoch is not None:
            on_epoch(history)
        log(f"{settings.method} epoch {epoch:3d}/{settings.epochs}  loss {row['train_loss']:.2f}  "
            f"(VAE DECaLS {row['train_vae_decals']:.2f}, BASS+MzLS {row['train_vae_bass']:.2f}, "
            f"align {row['train_align']:.4f}, consistency {row['train_consistency']:.4f})  "
            f"val {row.get('val_loss', float('nan')):.2f}  "
            f"val distance ratio {row.get('val_distance_ratio', float('nan')):.3f}  {row['images_per_s']:.0f} images/s")
    return model, history
