"""The feature scorecard: are a set of features morphology, and not pose or survey?

Every feature set (the VAE's ``mu``, PCA of the pixels, PCA of the pose-aligned pixels, classical
morphology, a contrastive encoder, ...) is scored on the same galaxies, the same folds and the same
transformed copies:

  precision@10      leave-one-out: the share of a galaxy's 10 nearest neighbours (Euclidean, each
                    dimension scaled to unit variance) with its label; mean over galaxies with a
                    95% normal interval (the per-galaxy precisions are averaged)
  linear / forest   5-fold stratified accuracy of a logistic regression (standardised) and of the
                    200-tree random forest (VAE_model.classify, the folds every method shares),
                    Wilson 95% interval over the galaxies
  orientation and   median distance between a galaxy's features and those of its transformed copy
  shift ratios      over the median distance between two different galaxies (features scaled as
                    for precision@10): 0 = invariant, ~1 = the transform moves a galaxy as far as
                    another galaxy; 95% bootstrap interval over galaxies. Transforms: a quarter
                    turn, a turn by an arbitrary angle (drawn per galaxy, seeded), a mirror, a
                    sub-pixel shift (0.5 px in x and y) and the survey nuisances (seeing, depth and
                    calibration of nuisance.py, no geometry)
  cross-survey      on runs with overlap pairs: top-1 retrieval of a galaxy's BASS+MzLS features
                    among all test pairs' from its DECaLS features, and a forest trained on DECaLS
                    features scored on BASS+MzLS features
Functions take plain arrays and are tested on hand-made features (tests/test_scorecard.py).
"""
from __future__ import annotations

import math

import numpy as np

from .classify import NotEnoughClassesError, score_question

PRECISION_K = 10
Z95 = 1.959964
BOOTSTRAP_SAMPLES = 500
RANDOM_PAIRS = 20000


def scale_features(features: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Features divided by the per-dimension standard deviation of ``reference`` (default: themselves)."""
    reference = features if reference is None else reference
    std = np.asarray(reference, np.float64).std(0)
    return np.asarray(features, np.float64) / np.where(std > 0, std, 1.0)


def wilson_interval(p: float, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a proportion p measured on n trials."""
    if n <= 0:
        return float("nan"), float("nan")
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / (1 + Z95 ** 2 / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)   # rounding can step past 0 or 1 when p is 0 or 1


def mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high): the mean with a 95% normal interval."""
    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, mean - half, mean + half


def knn_precision(features: np.ndarray, labels, k: int = PRECISION_K) -> np.ndarray:
    """Per galaxy: the share of its k nearest other galaxies (scaled features) with its label."""
    from sklearn.neighbors import NearestNeighbors

    x = scale_features(features)
    labels = np.asarray(labels)
    k = min(k, len(x) - 1)
    _, rows = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    # drop each galaxy itself (normally the first column; with exact duplicates it may sit elsewhere)
    own = rows == np.arange(len(x))[:, None]
    drop = np.where(own.any(1), own.argmax(1), k)
    keep = np.ones_like(rows, bool)
    keep[np.arange(len(x)), drop] = False
    neighbours = rows[keep].reshape(len(x), k)
    return (labels[neighbours] == labels[:, None]).mean(1)


def probe_accuracies(features: np.ndarray, labels, folds: int = 5, seed: int = 0) -> dict:
    """{'linear': (acc, lo, hi, n), 'forest': (...)}: 5-fold accuracies on the shared folds."""
    result = score_question(features, labels, folds=folds, seed=seed, models=("logistic", "random_forest"))
    n = result["n_galaxies"]
    out = {}
    for name, model in (("linear", "logistic"), ("forest", "random_forest")):
        accuracy = result["models"][model]["accuracy_mean"]
        out[name] = (accuracy, *wilson_interval(accuracy, n), n)
    return out


def invariance_ratio(features: np.ndarray, transformed: np.ndarray, seed: int = 0,
                     bootstrap: int = BOOTSTRAP_SAMPLES) -> tuple[float, float, float]:
    """(ratio, low, high): median |f_i - f'_i| over the median |f_i - f_j| (i != j), both on features
    scaled by the untransformed set's spread; 95% bootstrap interval over galaxies."""
    rng = np.random.default_rng(seed)
    x = scale_features(features)
    t = scale_features(transformed, features)
    n = len(x)
    own = np.linalg.norm(x - t, axis=1)
    i = rng.integers(0, n, RANDOM_PAIRS)
    j = (i + rng.integers(1, n, RANDOM_PAIRS)) % n          # j != i
    other = np.linalg.norm(x[i] - x[j], axis=1)
    ratio = float(np.median(own) / np.median(other))
    samples = []
    for _ in range(bootstrap):
        pick = rng.integers(0, n, n)
        pairs = rng.integers(0, RANDOM_PAIRS, RANDOM_PAIRS)
        samples.append(np.median(own[pick]) / np.median(other[pairs]))
    low, high = np.percentile(samples, [2.5, 97.5])
    return ratio, float(low), float(high)


def retrieval_top1(features_a: np.ndarray, features_b: np.ndarray) -> tuple[float, float, float]:
    """(top-1, lo, hi): the share of galaxies whose nearest row of ``features_b`` (scaled by the
    spread of a) is its own; rows are pairs of one galaxy in two surveys."""
    from sklearn.neighbors import NearestNeighbors

    a = scale_features(features_a)
    b = scale_features(features_b, features_a)
    _, rows = NearestNeighbors(n_neighbors=1).fit(b).kneighbors(a)
    hit = float((rows[:, 0] == np.arange(len(a))).mean())
    return (hit, *wilson_interval(hit, len(a)))


def cross_survey_forest(train_features: np.ndarray, train_labels, test_same: np.ndarray, test_other: np.ndarray,
                        test_labels, seed: int = 0) -> dict:
    """A forest trained on DECaLS features: accuracy on held-out DECaLS features and on the same held-out
    galaxies' BASS+MzLS features, each (acc, lo, hi, n)."""
    from .classify import make_model

    estimator = make_model("random_forest", seed)
    estimator.fit(np.asarray(train_features, np.float64), np.asarray(train_labels))
    labels = np.asarray(test_labels)
    out = {}
    for name, features in (("same_survey", test_same), ("other_survey", test_other)):
        accuracy = float((estimator.predict(np.asarray(features, np.float64)) == labels).mean())
        out[name] = (accuracy, *wilson_interval(accuracy, len(labels)), len(labels))
    return out


def label_scores(features: np.ndarray, labels, folds: int = 5, seed: int = 0) -> dict | None:
    """precision@10, linear and forest accuracies for one labelling; None when it cannot be scored."""
    labels = np.asarray(labels)
    try:
        probes = probe_accuracies(features, labels, folds, seed)
    except NotEnoughClassesError:
        return None
    precision = mean_interval(knn_precision(features, labels))
    return {"precision_at_10": (*precision, len(labels)), **probes}
