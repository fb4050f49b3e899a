"""Part II: domain adaptation of the DECaLS-trained VAE to BASS+MzLS, and the metrics that judge it.

Alignment losses (between the ``mu`` of DECaLS and BASS+MzLS batches):
  * ``mmd``    multi-kernel RBF maximum mean discrepancy (Gretton et al. 2012, JMLR 13, 723;
               multi-kernel as in Long et al. 2015, DAN). Needs no pairs: the two batches are
               drawn independently, only their distributions are compared.
  * ``paired`` mean squared Euclidean distance between the ``mu`` of the two images of one
               galaxy (uses the cross-matched pairs).
Training loss per step:  vae_loss(DECaLS batch) + vae_loss(BASS+MzLS batch) + lambda * alignment,
starting from the Part I model, so the reconstruction terms keep Part I quality.

Metrics (``pair_metrics``), computed on the TEST pairs: latent distance between the two images
of a galaxy vs between random non-matching pairs (and their ratio, which does not change when
a model merely rescales its latent space), cross-survey retrieval ranks, and classification
transfer (random forest trained on DECaLS latents of the TRAIN pairs, scored on the test pairs'
DECaLS and BASS+MzLS latents). ``model_quality`` guards against collapse: reconstruction MSE
per pixel and the latent variance.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import runfiles
from .data import augment, draw_augmentation, to_float
from .features import encode_arrays
from .models import VAE, vae_loss
from .runtime import DistInfo, Precision, load_checkpoint
from .training import NonFiniteLossError, epoch_seed, evaluate, save_training_checkpoint, write_csv_rows

METHODS = ("mmd", "paired")
# Bandwidths of the multi-kernel RBF, as multiples of the median heuristic (median pairwise
# squared distance of the pooled batch): spans a factor 16, so the kernel stays informative
# whether the two surveys' clouds overlap or sit far apart (DAN uses a similar geometric family).
DEFAULT_KERNEL_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)
MIN_CLASS_MEMBERS = 5          # a class takes part in the RF transfer test with >= this many train pairs
RANDOM_PAIR_SAMPLES = 100_000  # random non-matching pairs drawn for the reference distance
BOOTSTRAP_SAMPLES = 300        # resamplings of the test galaxies for the 95% intervals


# ----------------------------------------------------------------------------- alignment losses
def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Matrix of squared Euclidean distances ||x_i - y_j||^2, (n, m), clamped at 0."""
    return (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1)[None] - 2.0 * x @ y.T).clamp_min(0.0)


def mmd2(x: torch.Tensor, y: torch.Tensor, multipliers=DEFAULT_KERNEL_MULTIPLIERS, unbiased: bool = False,
         bandwidth: float | None = None) -> torch.Tensor:
    """Squared maximum mean discrepancy between samples x (n, d) and y (m, d).

        k(a, b) = sum_s exp(-||a - b||^2 / (s * h)),   s in ``multipliers``
        h = median squared distance between distinct points of the pooled sample (median
            heuristic; computed without gradient, so the bandwidth is not optimised away)
        biased   (V-statistic):  mean K_xx + mean K_yy - 2 mean K_xy      >= 0, exactly 0 for x == y
        unbiased (U-statistic, Gretton et al. 2012 eq. 3): the diagonals of K_xx, K_yy are left out;
                 can be slightly negative.

    The biased estimator is the default: it is non-negative and smooth, which suits a loss term.
    """
    x, y = x.float(), y.float()
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"MMD needs at least 2 samples per side, got {n} and {m}")
    d_xx, d_yy, d_xy = squared_distances(x, x), squared_distances(y, y), squared_distances(x, y)
    if bandwidth is None:
        with torch.no_grad():
            pooled = torch.cat([d_xx[~torch.eye(n, dtype=torch.bool, device=x.device)],
                                d_yy[~torch.eye(m, dtype=torch.bool, device=y.device)], d_xy.flatten()])
            h = pooled.median().item()
        bandwidth = h if h > 0 else 1.0

    def kernel(d):
        return sum(torch.exp(-d / (s * bandwidth)) for s in multipliers)

    k_xx, k_yy, k_xy = kernel(d_xx), kernel(d_yy), kernel(d_xy)
    if unbiased:
        term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
        term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    else:
        term_xx, term_yy = k_xx.mean(), k_yy.mean()
    return term_xx + term_yy - 2.0 * k_xy.mean()


def paired_loss(mu_a: torch.Tensor, mu_b: torch.Tensor, distance: str = "squared") -> torch.Tensor:
    """Mean over galaxies of the distance between the two images' ``mu``: 'squared' Euclidean, or
    'euclidean' (robust: a pair with a defect in one image pulls no harder than any other pair)."""
    squared = (mu_a.float() - mu_b.float()).pow(2).sum(1)
    if distance == "squared":
        return squared.mean()
    return torch.sqrt(squared + 1e-8).mean()


# ----------------------------------------------------------------------------- metrics
def paired_distances(mu_a: np.ndarray, mu_b: np.ndarray) -> np.ndarray:
    """Euclidean latent distance between row i of mu_a and row i of mu_b (same galaxy)."""
    return np.linalg.norm(np.asarray(mu_a, np.float64) - np.asarray(mu_b, np.float64), axis=1)


def random_pair_distances(mu_a: np.ndarray, mu_b: np.ndarray, n_samples: int = RANDOM_PAIR_SAMPLES,
                          seed: int = 0) -> np.ndarray:
    """Distances between mu_a[i] and mu_b[j] for random i != j (different galaxies)."""
    n = len(mu_a)
    if n < 2:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    if n * (n - 1) <= n_samples:                       # small sets: every non-matching pair
        i, j = np.where(~np.eye(n, dtype=bool))
    else:
        i = rng.integers(0, n, n_samples)
        j = (i + rng.integers(1, n, n_samples)) % n    # uniform over j != i
    return paired_distances(mu_a[i], mu_b[j])


def retrieval_ranks(queries: np.ndarray, gallery: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """For each query i, the 1-based rank of gallery[i] (its counterpart) among all gallery rows by
    Euclidean distance (1 = nearest; ties count in the query's favour)."""
    queries, gallery = np.asarray(queries, np.float64), np.asarray(gallery, np.float64)
    ranks = np.zeros(len(queries), dtype=int)
    gallery_sq = (gallery ** 2).sum(1)
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        d2 = (q ** 2).sum(1)[:, None] + gallery_sq[None] - 2.0 * q @ gallery.T
        own = d2[np.arange(len(q)), np.arange(start, start + len(q))]
        ranks[start:start + len(q)] = 1 + (d2 < own[:, None] - 1e-12).sum(1)
    return ranks


def bootstrap_intervals(mu_decals: np.ndarray, mu_bass: np.ndarray, ranks: np.ndarray,
                        n_boot: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict:
    """95% bootstrap intervals (test galaxies resampled with replacement) of the paired/random
    distance ratio and of the retrieval top-1/top-10 fractions (ranks kept from the full gallery).
    Differences between models smaller than these intervals are noise."""
    n = len(mu_decals)
    if n < 3:
        return {}
    rng = np.random.default_rng([seed, 99])
    paired = paired_distances(mu_decals, mu_bass)
    ratios, top1, top10 = [], [], []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        other = idx[rng.permutation(n)]
        different = idx != other
        random = paired_distances(mu_decals[idx[different]], mu_bass[other[different]])
        ratios.append(np.median(paired[idx]) / np.median(random))
        top1.append(np.mean(ranks[idx] <= 1))
        top10.append(np.mean(ranks[idx] <= 10))
    interval = lambda values: [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]  # noqa: E731
    return {"ratio_ci95": interval(ratios), "top1_ci95": interval(top1), "top10_ci95": interval(top10)}


def classification_transfer(mu_train: np.ndarray, labels_train: np.ndarray, mu_test_decals: np.ndarray,
                            mu_test_bass: np.ndarray, labels_test: np.ndarray, seed: int = 0,
                            min_members: int = MIN_CLASS_MEMBERS, n_estimators: int = 100) -> dict | None:
    """Random forest trained on DECaLS latents (train pairs), accuracy on the test pairs' DECaLS
    and BASS+MzLS latents. Classes with fewer than ``min_members`` train galaxies are left out;
    None if fewer than 2 classes remain or no test galaxy carries a kept class."""
    from sklearn.ensemble import RandomForestClassifier

    labels_train = pd.Series(labels_train, dtype=object)
    labels_test = pd.Series(labels_test, dtype=object)
    counts = labels_train.dropna().value_counts()
    kept = sorted(counts[counts >= min_members].index)
    if len(kept) < 2:
        return None
    train = labels_train.isin(kept).to_numpy()
    test = labels_test.isin(kept).to_numpy()
    if not test.any():
        return None
    forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    forest.fit(mu_train[train], labels_train[train].to_numpy().astype(str))
    truth = labels_test[test].to_numpy().astype(str)
    majority = counts[kept].idxmax()
    return {"classes": [str(k) for k in kept], "n_train": int(train.sum()), "n_test": int(test.sum()),
            "accuracy_decals": float(np.mean(forest.predict(mu_test_decals[test]) == truth)),
            "accuracy_bass": float(np.mean(forest.predict(mu_test_bass[test]) == truth)),
            "majority_class_accuracy": float(np.mean(truth == str(majority)))}


def pair_metrics(mu_decals: np.ndarray, mu_bass: np.ndarray, split, labels: dict | None = None,
                 seed: int = 0) -> dict:
    """The Part II metrics of one model on the pairs (rows of pairs.csv).

    mu_decals, mu_bass: (n_pairs, latent_dim) row-aligned; split: 'train'/'test' per pair;
    labels: {class question: array of DECaLS class labels per pair (NaN: none)}.
    Distances and retrieval use the test pairs; the random forest learns on the train pairs.
    """
    split = np.asarray(split)
    test, train = split == "test", split == "train"
    mu_d, mu_b = np.asarray(mu_decals, np.float64), np.asarray(mu_bass, np.float64)
    paired = paired_distances(mu_d[test], mu_b[test])
    random = random_pair_distances(mu_d[test], mu_b[test], seed=seed)
    ranks = retrieval_ranks(mu_b[test], mu_d[test])
    median_random = float(np.median(random)) if len(random) else float("nan")
    intervals = bootstrap_intervals(mu_d[test], mu_b[test], ranks, seed=seed)
    out = {
        "n_train_pairs": int(train.sum()), "n_test_pairs": int(test.sum()),
        "distance": {"median_paired": float(np.median(paired)), "mean_paired": float(np.mean(paired)),
                     "median_random": median_random, "mean_random": float(np.mean(random)) if len(random) else float("nan"),
                     "ratio_median_paired_to_random": float(np.median(paired)) / median_random,
                     "ratio_ci95": intervals.get("ratio_ci95"), "n_random_pairs": int(len(random))},
        "retrieval": {"n_candidates": int(test.sum()), "top1": float(np.mean(ranks <= 1)),
                      "top10": float(np.mean(ranks <= 10)), "median_rank": float(np.median(ranks)),
                      "top1_ci95": intervals.get("top1_ci95"), "top10_ci95": intervals.get("top10_ci95"),
                      "mean_rank": float(np.mean(ranks)),
                      "chance_top1": 1.0 / max(int(test.sum()), 1), "chance_median_rank": (int(test.sum()) + 1) / 2},
        "classification": {"questions": {}, "mean_accuracy_decals": float("nan"), "mean_accuracy_bass": float("nan")},
    }
    for question, values in (labels or {}).items():
        values = np.asarray(values, dtype=object)
        result = classification_transfer(mu_d[train], values[train], mu_d[test], mu_b[test], values[test], seed=seed)
        if result is not None:
            out["classification"]["questions"][question] = result
    scores = out["classification"]["questions"].values()
    if scores:
        out["classification"]["mean_accuracy_decals"] = float(np.mean([s["accuracy_decals"] for s in scores]))
        out["classification"]["mean_accuracy_bass"] = float(np.mean([s["accuracy_bass"] for s in scores]))
    return out


@torch.no_grad()
def model_quality(model: VAE, decals_cache, test_indices, device, precision: Precision,
                  part1_cache=None, part1_val_indices=None, batch_size: int = 256) -> dict:
    """Collapse guards: reconstruction MSE per pixel (z = mu) on the Part I validation split and on
    the test pairs' DECaLS images, and the mean per-dimension variance of mu over the latter."""
    out = {}
    if part1_cache is not None and part1_val_indices is not None and len(part1_val_indices):
        out["recon_mse_per_pixel_part1_val"] = evaluate(model, precision, part1_cache, np.asarray(part1_val_indices),
                                                        batch_size, device, DistInfo())["val_mse_per_pixel"]
    test_indices = np.asarray(test_indices)
    out["recon_mse_per_pixel_test_decals"] = evaluate(model, precision, decals_cache, test_indices, batch_size,
                                                      device, DistInfo())["val_mse_per_pixel"]
    mu, _ = encode_arrays(model, decals_cache[np.sort(test_indices)], device, precision, batch_size)
    out["latent_variance_test_decals"] = float(mu.var(axis=0).mean())
    return out


def _ci(section: dict, key: str, side: int) -> float:
    values = section.get(key)
    return float(values[side]) if values else float("nan")


def metrics_row(metrics: dict) -> dict:
    """The before/after table's rows from a metrics dict (pair_metrics + model_quality)."""
    quality = metrics.get("quality", {})
    return {
        "median paired distance": metrics["distance"]["median_paired"],
        "random-pair median distance": metrics["distance"]["median_random"],
        "paired / random distance ratio": metrics["distance"]["ratio_median_paired_to_random"],
        "distance ratio 95% interval, low": _ci(metrics["distance"], "ratio_ci95", 0),
        "distance ratio 95% interval, high": _ci(metrics["distance"], "ratio_ci95", 1),
        "retrieval top-1 fraction": metrics["retrieval"]["top1"],
        "retrieval top-1 95% interval, low": _ci(metrics["retrieval"], "top1_ci95", 0),
        "retrieval top-1 95% interval, high": _ci(metrics["retrieval"], "top1_ci95", 1),
        "retrieval top-10 fraction": metrics["retrieval"]["top10"],
        "retrieval median rank": metrics["retrieval"]["median_rank"],
        "RF accuracy on DECaLS latents (mean)": metrics["classification"]["mean_accuracy_decals"],
        "RF accuracy on BASS+MzLS latents (mean)": metrics["classification"]["mean_accuracy_bass"],
        "DECaLS recon MSE/pixel (Part I val)": quality.get("recon_mse_per_pixel_part1_val", float("nan")),
        "DECaLS recon MSE/pixel (test pairs)": quality.get("recon_mse_per_pixel_test_decals", float("nan")),
        "latent variance (test DECaLS)": quality.get("latent_variance_test_decals", float("nan")),
    }


# ----------------------------------------------------------------------------- adaptation training
@dataclass
class AdaptSettings:
    method: str = "mmd"                  # 'mmd' (reference) or 'paired'
    align_weight: float = 0.1            # lambda
    epochs: int = 20
    batch_size: int = 128                # per survey: each step sees 2 x batch_size images
    lr: float = 1e-5
    beta: float = 1.0
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
        if self.paired_distance not in ("squared", "euclidean"):
            raise ValueError(f"paired_distance must be 'squared' or 'euclidean', got {self.paired_distance!r}")
        self.kernel_multipliers = tuple(float(s) for s in self.kernel_multipliers)


def alignment_loss(mu_decals: torch.Tensor, mu_bass: torch.Tensor, settings: AdaptSettings) -> torch.Tensor:
    if settings.method == "paired":
        return paired_loss(mu_decals, mu_bass, settings.paired_distance)
    return mmd2(mu_decals, mu_bass, settings.kernel_multipliers, unbiased=settings.mmd_estimator == "unbiased")


ADAPT_HISTORY_FIELDS = ["epoch", "train_loss", "train_vae_decals", "train_vae_bass", "train_align",
                        "val_loss", "val_vae_decals", "val_vae_bass", "val_align", "val_distance_ratio",
                        "images_per_s", "seconds"]


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
    """One pass over the train pairs. mmd: the two surveys' batches are independent permutations
    (pairs unused); paired: the same galaxies in the same order, with the same flips/rotation."""
    from tqdm import tqdm

    model.train()
    seed = epoch_seed(settings.seed, epoch)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    order_d = rng.permutation(indices)
    order_b = order_d if settings.method == "paired" else rng.permutation(indices)
    batches = list(_batches(order_d, order_b, settings.batch_size))
    totals, n_images, start = np.zeros(4), 0, time.perf_counter()
    for step, (idx_d, idx_b) in enumerate(tqdm(batches, desc=f"{settings.method} epoch {epoch}", unit="batch",
                                               leave=False, disable=not progress)):
        n = len(idx_d)
        flips, turns = draw_augmentation(n, generator)
        if settings.method == "paired":
            flips_b, turns_b = flips, turns            # the two images of a galaxy stay aligned
        else:
            flips_b, turns_b = draw_augmentation(n, generator)
        noise = torch.randn(2 * n, model.config.latent_dim, generator=generator)
        x_d, x_b = to_float(_read(decals_cache, idx_d), device), to_float(_read(bass_cache, idx_b), device)
        if settings.augment:
            x_d, x_b = augment(x_d, flips, turns), augment(x_b, flips_b, turns_b)
        images = torch.cat([x_d, x_b])
        with precision.autocast():
            reconstruction, mu, logvar = model(images, noise.to(device))
        loss_d = vae_loss(reconstruction[:n], x_d, mu[:n], logvar[:n], settings.beta)[0]
        loss_b = vae_loss(reconstruction[n:], x_b, mu[n:], logvar[n:], settings.beta)[0]
        align = alignment_loss(mu[:n], mu[n:], settings)
        loss = loss_d + loss_b + settings.align_weight * align
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"{settings.method} epoch {epoch} step {step}: loss is {loss.item()} "
                                     "(non-finite); adaptation stopped, the last good checkpoint is kept")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        totals += np.array([loss.item(), loss_d.item(), loss_b.item(), align.item()]) * n
        n_images += 2 * n
    seconds = time.perf_counter() - start
    n_pairs = max(n_images // 2, 1)
    return {"train_loss": totals[0] / n_pairs, "train_vae_decals": totals[1] / n_pairs,
            "train_vae_bass": totals[2] / n_pairs, "train_align": totals[3] / n_pairs,
            "images_per_s": n_images / max(seconds, 1e-9), "seconds": seconds}


@torch.no_grad()
def adapt_validation(model: VAE, precision: Precision, decals_cache, bass_cache, indices: np.ndarray,
                     settings: AdaptSettings, device, batch_size: int = 256) -> dict:
    """The adaptation objective on held-out train pairs (z = mu): the epoch with the lowest
    ``val_loss`` becomes best.pt. The alignment term is evaluated on the whole held-out set."""
    model.eval()
    indices = np.sort(np.asarray(indices))
    sums, mus_d, mus_b = np.zeros(2), [], []
    for start in range(0, len(indices), batch_size):
        part = indices[start:start + batch_size]
        for k, cache, mus in ((0, decals_cache, mus_d), (1, bass_cache, mus_b)):
            x = to_float(_read(cache, part), device)
            with precision.autocast():
                reconstruction, mu, logvar = model(x)
            sums[k] += vae_loss(reconstruction, x, mu, logvar, settings.beta)[0].item() * len(part)
            mus.append(mu.float())
    mu_d, mu_b = torch.cat(mus_d), torch.cat(mus_b)
    align = alignment_loss(mu_d, mu_b, settings).item() if len(indices) >= 2 else 0.0
    n = max(len(indices), 1)
    d_np, b_np = mu_d.cpu().numpy(), mu_b.cpu().numpy()
    random = random_pair_distances(d_np, b_np, n_samples=20_000, seed=settings.seed)
    ratio = float(np.median(paired_distances(d_np, b_np)) / np.median(random)) if len(random) else float("nan")
    return {"val_loss": sums[0] / n + sums[1] / n + settings.align_weight * align, "val_vae_decals": sums[0] / n,
            "val_vae_bass": sums[1] / n, "val_align": align, "val_distance_ratio": ratio}


def write_adapt_history(history: list[dict], path: str | Path) -> None:
    write_csv_rows(history, ADAPT_HISTORY_FIELDS, path)


def adapt(run_dir: str | Path, model: VAE, decals_cache, bass_cache, train_indices, val_indices,
          settings: AdaptSettings, device, precision: Precision, resume: bool = False,
          args_record: dict | None = None, progress: bool = True, log=print) -> tuple[VAE, list[dict]]:
    """Fine-tune ``model`` (the Part I VAE, on ``device``) on both surveys' train pairs.

    Every epoch: RUN/transfer/<method>/checkpoint.pt (atomic, training.save_training_checkpoint
    format) and history.csv; best.pt when the held-out adaptation loss improves. History row
    epoch 0 (held-out metrics of the starting model) is for reference only; best.pt is chosen
    among the adapted epochs. ``resume`` continues from checkpoint.pt (same method required).
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
            raise ValueError(f"{checkpoint_path}: saved by method {state.get('settings', {}).get('method')!r}, "
                             f"not {settings.method!r}")
        if state["model_config"] != model.config.to_dict():
            raise ValueError(f"{checkpoint_path}: model configuration differs from the Part I model's")
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
        log(f"{settings.method} epoch {epoch:3d}/{settings.epochs}  loss {row['train_loss']:.2f}  "
            f"(VAE DECaLS {row['train_vae_decals']:.2f}, BASS+MzLS {row['train_vae_bass']:.2f}, "
            f"align {row['train_align']:.4f})  val {row.get('val_loss', float('nan')):.2f}  "
            f"val distance ratio {row.get('val_distance_ratio', float('nan')):.3f}  {row['images_per_s']:.0f} images/s")
    return model, history


# ----------------------------------------------------------------------------- pair data of a run
def read_pairs(run_dir: str | Path) -> pd.DataFrame:
    """RUN/transfer/pairs.csv (written by transfer/make_pairs.py)."""
    path = runfiles.require(Path(run_dir) / runfiles.TRANSFER_PAIRS_CSV, f"transfer/make_pairs.py --run {run_dir}")
    return pd.read_csv(path, dtype={"decals_iauname": str, "bass_iauname": str, "split": str})


def pair_caches(run_dir: str | Path, image_size: int, n_pairs: int, progress: bool = True):
    """The decode-once caches (uint8 memmaps) of the DECaLS and BASS+MzLS pair images, row-aligned
    with pairs.csv: RUN/cache/decals_pairs_<S>px.npy and bass_pairs_<S>px.npy."""
    from .data import image_cache

    caches = []
    for name in (runfiles.TRANSFER_DECALS_LIST, runfiles.TRANSFER_BASS_LIST):
        list_path = runfiles.require(Path(run_dir) / name, f"transfer/make_pairs.py --run {run_dir}")
        cache = image_cache(list_path, image_size, Path(run_dir) / runfiles.CACHE_DIR, progress=progress)
        if len(cache) != n_pairs:
            raise runfiles.MissingInputError(f"{list_path}: {len(cache)} images for {n_pairs} pairs; "
                                             f"rerun transfer/make_pairs.py --run {run_dir}")
        caches.append(cache)
    return caches[0], caches[1]


def read_pair_labels(run_dir: str | Path, pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """{class question: DECaLS class label per pair (NaN: none)} from RUN/transfer/pair_labels.csv."""
    path = Path(run_dir) / runfiles.TRANSFER_PAIR_LABELS_CSV
    if not path.exists():
        return {}
    table = pd.read_csv(path, dtype=object)
    table["pair_id"] = table["pair_id"].astype(int)
    table = pairs[["pair_id"]].merge(table, on="pair_id", how="left")
    return {column: table[column].to_numpy(dtype=object) for column in table.columns if column != "pair_id"}


def part1_validation(run_dir: str | Path, image_size: int, progress: bool = True):
    """(cache of RUN/train.txt, validation indices of RUN/split.json), or (None, None) if absent."""
    import json

    from .data import image_cache

    run_dir = Path(run_dir)
    list_path, split_path = run_dir / runfiles.TRAIN_TXT, run_dir / runfiles.SPLIT_JSON
    if not (list_path.exists() and split_path.exists()):
        return None, None
    val = np.asarray(json.loads(split_path.read_text())["val"], dtype=int)
    return image_cache(list_path, image_size, run_dir / runfiles.CACHE_DIR, progress=progress), val


def evaluate_model(model: VAE, pairs: pd.DataFrame, decals_cache, bass_cache, labels: dict, device,
                   precision: Precision, part1=(None, None), seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Encode both surveys' pair images and compute pair_metrics + model_quality.

    Returns (metrics, mu_decals, mu_bass), the latents row-aligned with pairs.csv."""
    mu_d, _ = encode_arrays(model, decals_cache, device, precision)
    mu_b, _ = encode_arrays(model, bass_cache, device, precision)
    metrics = pair_metrics(mu_d, mu_b, pairs["split"].to_numpy(), labels, seed=seed)
    test = np.flatnonzero(pairs["split"].to_numpy() == "test")
    metrics["quality"] = model_quality(model, decals_cache, test, device, precision, *part1)
    return metrics, mu_d, mu_b


def distance_table(pairs: pd.DataFrame, mu_decals: np.ndarray, mu_bass: np.ndarray) -> pd.DataFrame:
    """Per pair: latent distance between its two images; for test pairs, the retrieval rank of the
    DECaLS image among the DECaLS test galaxies for the BASS+MzLS query (train pairs: -1)."""
    table = pairs[["pair_id", "split", "decals_iauname", "bass_iauname"]].copy()
    table["latent_distance"] = paired_distances(mu_decals, mu_bass)
    test = np.flatnonzero(pairs["split"].to_numpy() == "test")
    ranks = np.full(len(pairs), -1, dtype=int)
    ranks[test] = retrieval_ranks(mu_bass[test], mu_decals[test])
    table["retrieval_rank"] = ranks
    return table


# ----------------------------------------------------------------------------- figures
def save_pair_gallery(distances: pd.DataFrame, decals_cache, bass_cache, path, most_alike: bool,
                      n: int = 8, split: str = "test") -> Path:
    """Test pairs ordered by latent distance (most or least alike first): DECaLS above BASS+MzLS."""
    from .plots import save_image_grid

    chosen = distances[distances["split"] == split].sort_values("latent_distance", ascending=most_alike).head(n)
    rows = chosen["pair_id"].to_numpy()
    decals = [np.asarray(decals_cache[i], np.float32) / 255.0 for i in rows]
    bass = [np.asarray(bass_cache[i], np.float32) / 255.0 for i in rows]
    labels = [f"{name[:10]}\nd = {d:.2f}" for name, d in zip(chosen["decals_iauname"], chosen["latent_distance"])]
    kind = "most alike" if most_alike else "least alike"
    return save_image_grid([decals, bass], path, row_labels=["DECaLS", "BASS+MzLS"], col_labels=labels,
                           title=f"{kind} {split} pairs by latent distance (Part I model)")


def save_distance_histograms(panels: dict[str, tuple[np.ndarray, np.ndarray]], path, normalise: bool = True) -> Path:
    """One panel per model: paired vs random-pair latent distances of the test pairs. With
    ``normalise`` both are divided by the model's random-pair median (scale-free comparison)."""
    from .plots import plt, save_figure

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False, sharey=False)
    for ax, (name, (paired, random)) in zip(axes[0], panels.items()):
        scale = float(np.median(random)) if normalise and len(random) else 1.0
        top = max(np.percentile(random / scale, 99.5), np.max(paired / scale)) if len(random) else np.max(paired)
        bins = np.linspace(0, top, 40)
        ax.hist(random / scale, bins=bins, density=True, alpha=0.5, label="random pairs")
        ax.hist(paired / scale, bins=bins, density=True, alpha=0.6, label="same galaxy")
        ax.axvline(np.median(paired) / scale, color="C1", lw=1)
        ax.set_title(f"{name}: median paired / random {np.median(paired) / np.median(random):.3f}", fontsize=8)
        ax.set_xlabel("latent distance / random-pair median" if normalise else "latent distance (mu)")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
