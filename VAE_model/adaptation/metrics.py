"""Part II metrics: how close the two surveys' latents of one galaxy are, and what that buys.

Computed on the TEST pairs (``pair_metrics``): latent distance between the two images of a
galaxy vs between random non-matching pairs (and their ratio, which does not change when a
model merely rescales its latent space), cross-survey retrieval ranks with 95% bootstrap
intervals, and classification transfer (random forest trained on DECaLS latents of the TRAIN
pairs, scored on the test pairs' DECaLS and BASS+MzLS latents). ``model_quality`` guards against
collapse: reconstruction MSE per pixel and the latent variance.

READS / WRITES nothing (arrays and models in, dicts and tables out).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..features import encode_arrays
from ..models import VAE
from ..runtime import DistInfo, Precision
from ..training import evaluate

MIN_CLASS_MEMBERS = 5          # a class takes part in the RF transfer test with >= this many train pairs
RANDOM_PAIR_SAMPLES = 100_000  # random non-matching pairs drawn for the reference distance
BOOTSTRAP_SAMPLES = 300        # resamplings of the test galaxies for the 95% intervals
# fewest test pairs the metrics mean anything on: a retrieval among 1 candidate is always top-1, the
# random-pair distance (and so the ratio) needs 2 galaxies, the bootstrap intervals 3
MIN_TEST_PAIRS = 3


def require_test_pairs(n_test: int, where: str = "the pairs") -> None:
    """NotEnoughDataError (one line) when there are too few test pairs to score a model on."""
    if n_test < MIN_TEST_PAIRS:
        from ..errors import NotEnoughDataError

        raise NotEnoughDataError(f"{where}: {n_test} test pair(s); the Part II metrics need at least {MIN_TEST_PAIRS} "
                                 "(one candidate is always retrieved first, a distance ratio needs two galaxies): "
                                 "run transfer/make_pairs.py with a larger --test-fraction or more overlapping galaxies")


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
    def interval(values) -> list[float] | None:
        # a resampling that drew one galaxy n times has no random pair: it has no ratio, and is left out
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if len(values) else None
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
    require_test_pairs(int(test.sum()))
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
                      "chance_top1": 1.0 / max(int(test.sum()), 1), "chance_top10": min(1.0, 10 / max(int(test.sum()), 1)),
                      "chance_median_rank": (int(test.sum()) + 1) / 2},
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


def _value(value) -> float:
    """A metric as a float; one that could not be computed (null in the JSON) is NaN in the table."""
    return float("nan") if value is None else float(value)


def metrics_row(metrics: dict) -> dict:
    """The before/after table's rows from a metrics dict (pair_metrics + model_quality)."""
    quality = metrics.get("quality", {})
    return {
        "median paired distance": _value(metrics["distance"]["median_paired"]),
        "random-pair median distance": _value(metrics["distance"]["median_random"]),
        "paired / random distance ratio": _value(metrics["distance"]["ratio_median_paired_to_random"]),
        "distance ratio 95% interval, low": _ci(metrics["distance"], "ratio_ci95", 0),
        "distance ratio 95% interval, high": _ci(metrics["distance"], "ratio_ci95", 1),
        "retrieval top-1 fraction": _value(metrics["retrieval"]["top1"]),
        "retrieval top-1 95% interval, low": _ci(metrics["retrieval"], "top1_ci95", 0),
        "retrieval top-1 95% interval, high": _ci(metrics["retrieval"], "top1_ci95", 1),
        "retrieval top-10 fraction": _value(metrics["retrieval"]["top10"]),
        "retrieval median rank": _value(metrics["retrieval"]["median_rank"]),
        "RF accuracy on DECaLS latents (mean)": _value(metrics["classification"]["mean_accuracy_decals"]),
        "RF accuracy on BASS+MzLS latents (mean)": _value(metrics["classification"]["mean_accuracy_bass"]),
        "DECaLS recon MSE/pixel (Part I val)": _value(quality.get("recon_mse_per_pixel_part1_val")),
        "DECaLS recon MSE/pixel (test pairs)": _value(quality.get("recon_mse_per_pixel_test_decals")),
        "latent variance (test DECaLS)": _value(quality.get("latent_variance_test_decals")),
    }



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


# ----------------------------------------------------------------------------- gap sweep metrics
SWEEP_METRICS = ("retrieval top-1", "retrieval top-10", "retrieval median rank", "paired / random distance ratio",
                 "RF cross-survey (DECaLS-trained, on BASS+MzLS)", "RF within DECaLS", "RF within BASS+MzLS",
                 "DECaLS recon MSE/pixel (test)")


def forest_correct(mu_train: np.ndarray, labels_train, mu_test: np.ndarray, labels_test, seed: int = 0,
                   min_members: int = MIN_CLASS_MEMBERS, n_estimators: int = 100) -> np.ndarray | None:
    """Random forest on (mu_train, labels_train); per test galaxy 1.0 (right) / 0.0 (wrong), NaN
    where the galaxy has no label of a kept class. None when fewer than 2 classes are kept."""
    from sklearn.ensemble import RandomForestClassifier

    labels_train = pd.Series(labels_train, dtype=object)
    labels_test = pd.Series(labels_test, dtype=object)
    counts = labels_train.dropna().value_counts()
    kept = sorted(counts[counts >= min_members].index)
    test = labels_test.isin(kept).to_numpy()
    if len(kept) < 2 or not test.any():
        return None
    train = labels_train.isin(kept).to_numpy()
    forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    forest.fit(mu_train[train], labels_train[train].to_numpy().astype(str))
    correct = np.full(len(labels_test), np.nan)
    correct[test] = forest.predict(mu_test[test]) == labels_test[test].to_numpy().astype(str)
    return correct


def sweep_metrics(mu_decals: np.ndarray, mu_bass: np.ndarray, split, labels: dict | None = None,
                  recon_mse_test: np.ndarray | None = None, n_boot: int = BOOTSTRAP_SAMPLES,
                  seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """{metric: (value, 95% low, 95% high)} for one model on row-aligned pair latents.

    Test pairs: retrieval of the true DECaLS counterpart of each BASS+MzLS image among all DECaLS
    test images (top-1, top-10, median rank), median paired / random-pair distance ratio, and the
    DECaLS reconstruction MSE per pixel (``recon_mse_test``, one value per test pair). Random
    forests learn on the train pairs: DECaLS latents -> tested on the BASS+MzLS latents of the test
    galaxies (cross-survey), DECaLS -> DECaLS and BASS+MzLS -> BASS+MzLS (within each survey); the
    value is the mean accuracy over the class questions. Intervals: the test galaxies resampled
    with replacement ``n_boot`` times (models, forests and ranks fixed).
    """
    split = np.asarray(split)
    test, train = np.flatnonzero(split == "test"), np.flatnonzero(split == "train")
    mu_d, mu_b = np.asarray(mu_decals, np.float64), np.asarray(mu_bass, np.float64)
    ranks = retrieval_ranks(mu_b[test], mu_d[test])
    paired = paired_distances(mu_d[test], mu_b[test])
    correct = {"RF cross-survey (DECaLS-trained, on BASS+MzLS)": [], "RF within DECaLS": [],
               "RF within BASS+MzLS": []}
    for values in (labels or {}).values():
        values = np.asarray(values, dtype=object)
        for name, (source, target) in {"RF cross-survey (DECaLS-trained, on BASS+MzLS)": (mu_d, mu_b),
                                       "RF within DECaLS": (mu_d, mu_d),
                                       "RF within BASS+MzLS": (mu_b, mu_b)}.items():
            result = forest_correct(source[train], values[train], target[test], values[test], seed=seed)
            if result is not None:
                correct[name].append(result)
    mse = None if recon_mse_test is None else np.asarray(recon_mse_test, np.float64)

    def statistics(idx: np.ndarray, rng) -> dict[str, float]:
        other = idx[rng.permutation(len(idx))]
        different = idx != other
        random = paired_distances(mu_d[test][idx[different]], mu_b[test][other[different]])
        out = {"retrieval top-1": float(np.mean(ranks[idx] <= 1)), "retrieval top-10": float(np.mean(ranks[idx] <= 10)),
               "retrieval median rank": float(np.median(ranks[idx])),
               "paired / random distance ratio": float(np.median(paired[idx]) / np.median(random))
               if len(random) else float("nan")}
        for name, arrays in correct.items():
            out[name] = float(np.mean([np.nanmean(c[idx]) for c in arrays if np.isfinite(c[idx]).any()])) \
                if arrays else float("nan")
        out["DECaLS recon MSE/pixel (test)"] = float(np.mean(mse[idx])) if mse is not None else float("nan")
        return out

    rng = np.random.default_rng([seed, 7])
    n = len(test)
    full = np.arange(n)
    values = statistics(full, np.random.default_rng([seed, 8]))
    # the random-pair median of the full set uses every non-matching pair, as pair_metrics does
    values["paired / random distance ratio"] = float(np.median(paired) / np.median(
        random_pair_distances(mu_d[test], mu_b[test], seed=seed))) if n >= 2 else float("nan")
    boots = [statistics(rng.integers(0, n, n), rng) for _ in range(n_boot)] if n >= 3 else []
    result = {}
    for name in SWEEP_METRICS:
        samples = np.array([b[name] for b in boots], dtype=float)
        samples = samples[np.isfinite(samples)]
        low, high = (np.percentile(samples, [2.5, 97.5]) if len(samples) else (np.nan, np.nan))
        result[name] = (values[name], float(low), float(high))
    return result
