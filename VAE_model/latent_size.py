"""The latent-size rule of the study (analysis/decals_2_3.py) and the reader of its choice.

Two knees are reported, one per thing a latent vector is for:

    MSE knee  k_mse = min{k : MSE_k <= (1 + mse_tol) * min_j MSE_j}        reconstruction
    RF knee   k_rf  = min{k : acc_k >= max_j acc_j - rf_tol}               downstream morphology
                      (acc = mean random-forest accuracy over class questions, on the latents mu)

and the chosen size is the smallest size that passes both tests at once,

    k* = min{k : MSE_k <= (1 + mse_tol) * min_j MSE_j  and  acc_k >= max_j acc_j - rf_tol}

(defaults mse_tol = 5%, rf_tol = 0.01 accuracy, i.e. one percentage point). Why both: on a
mock or real survey the reconstruction curve often flattens before the classification curve
does (the demo: MSE flat from 16, RF accuracy still rising to 64), and a latent space chosen for
reconstruction alone then gives away downstream accuracy. Why tolerances rather than a knee
finder: the sweep has 5-6 unevenly spaced sizes, and a chord-distance knee (Kneedle) depends on
that spacing and on the axis scale; a tolerance states its cost in the units of each measure and
can be recomputed from latent_size.csv by hand. One point of accuracy is of the order of the
sampling error of the score itself (binomial: a question with ~300 labelled galaxies at accuracy
~0.7 has a standard error of sqrt(0.7 * 0.3 / 300) ~ 0.026; the mean over ~7 questions ~ 0.01),
so a smaller rf_tol would chase noise and a larger one would ignore real gains. When the accuracy is not measured (no class index) the rule is the MSE test alone,
and the JSON says so. If no size passes both (the best-MSE and best-accuracy sizes far apart),
the larger of the two knees is taken and the JSON says so.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import runfiles
from .errors import GalaxyVAEError, MissingInputError

MSE_TOLERANCE = 0.05     # fraction of the best validation MSE per pixel
RF_TOLERANCE = 0.01      # accuracy (fraction of galaxies), i.e. one percentage point

RULE_BOTH = ("smallest latent size whose validation MSE per pixel is within {mse_pct:g}% of the best MSE of the sweep "
             "AND whose mean random-forest accuracy is within {rf:g} of the best accuracy "
             "(k* = min{{k : MSE_k <= (1 + {mse_frac:g}) min_j MSE_j and acc_k >= max_j acc_j - {rf:g}}})")
RULE_MSE = ("smallest latent size whose validation MSE per pixel is within {mse_pct:g}% of the best MSE of the sweep "
            "(k* = min{{k : MSE_k <= (1 + {mse_frac:g}) min_j MSE_j}}; RF accuracy not measured)")


class LatentSizeError(GalaxyVAEError, ValueError):
    """latent_size.json unusable for --latent-dim auto; str() is one line naming the file."""


def _as_arrays(sizes, values):
    sizes = np.asarray(sizes, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if len(sizes) != len(values) or len(sizes) == 0:
        raise ValueError("need one value per size and at least one size")
    return sizes, values


def mse_passes(sizes, mse, tolerance: float = MSE_TOLERANCE) -> np.ndarray:
    """Boolean per size: MSE within ``tolerance`` (a fraction) of the best; NaN fails."""
    _, mse = _as_arrays(sizes, mse)
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    finite = np.isfinite(mse)
    if not finite.any():
        raise ValueError("no finite MSE values")
    best = mse[finite].min()
    return finite & (mse <= best + tolerance * abs(best))


def smallest_within_tolerance(sizes, mse, tolerance: float = MSE_TOLERANCE) -> int:
    """The MSE knee: min{k : MSE_k <= (1 + tolerance) * min_j MSE_j} (sizes in any order, NaN ignored)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return int(sizes[mse_passes(sizes, mse, tolerance)].min())


def accuracy_passes(sizes, accuracy, tolerance: float = RF_TOLERANCE) -> np.ndarray | None:
    """Boolean per size: accuracy within ``tolerance`` (absolute) of the best; None when none is finite."""
    _, accuracy = _as_arrays(sizes, accuracy)
    if tolerance < 0:
        raise ValueError("rf tolerance must be >= 0")
    finite = np.isfinite(accuracy)
    if not finite.any():
        return None
    return finite & (accuracy >= accuracy[finite].max() - tolerance)


def choose_latent_size(sizes, mse, accuracy=None, mse_tolerance: float = MSE_TOLERANCE,
                       rf_tolerance: float = RF_TOLERANCE) -> dict:
    """Both knees and the chosen size (see the module docstring). Sizes may come in any order.

    Returns {"chosen_latent_dim", "mse_knee", "rf_knee" (None if not measured), "rule", "note"}.
    """
    sizes, mse = _as_arrays(sizes, mse)
    by_mse = mse_passes(sizes, mse, mse_tolerance)
    by_rf = None if accuracy is None else accuracy_passes(sizes, accuracy, rf_tolerance)
    mse_knee = smallest_within_tolerance(sizes, mse, mse_tolerance)
    text = dict(mse_pct=100 * mse_tolerance, mse_frac=mse_tolerance, rf=rf_tolerance)
    if by_rf is None:
        return {"chosen_latent_dim": mse_knee, "mse_knee": mse_knee, "rf_knee": None,
                "rule": RULE_MSE.format(**text), "note": "RF accuracy not measured: MSE test alone"}
    rf_knee = int(sizes[by_rf].min())
    both = by_mse & by_rf
    if both.any():
        chosen, note = int(sizes[both].min()), "smallest size passing both tests"
    else:
        chosen, note = max(mse_knee, rf_knee), "no size passes both tests: the larger knee is taken"
    return {"chosen_latent_dim": chosen, "mse_knee": mse_knee, "rf_knee": rf_knee,
            "rule": RULE_BOTH.format(**text), "note": note}


def read_chosen_latent_dim(run: str | Path) -> tuple[int, dict]:
    """The latent size chosen by analysis/decals_2_3.py in ``run`` (for Galaxy_VAE_n.py --latent-dim auto).

    Returns (size, the JSON's summary). One-line errors when the study has not run or its file is bad.
    """
    from . import provenance

    path = Path(run) / runfiles.LATENT_SIZE_JSON
    if not path.exists():
        raise MissingInputError(f"{path}: not found; --latent-dim auto takes the latent-size study's choice: "
                                f"run analysis/decals_2_3.py --run {run} first")
    provenance.check(run, runfiles.LATENT_SIZE_JSON, f"analysis/decals_2_3.py --run {run}")   # made from today's images
    try:
        summary = json.loads(path.read_text())
        size = int(summary["chosen_latent_dim"])
    except (ValueError, KeyError, TypeError) as error:
        raise LatentSizeError(f"{path}: no usable chosen_latent_dim ({error}); re-run analysis/decals_2_3.py --run {run}") from None
    if size < 1:
        raise LatentSizeError(f"{path}: chosen_latent_dim {size} < 1; re-run analysis/decals_2_3.py --run {run}")
    return size, summary


__all__ = ["MSE_TOLERANCE", "RF_TOLERANCE", "LatentSizeError", "mse_passes", "smallest_within_tolerance", "accuracy_passes", "choose_latent_size",
           "read_chosen_latent_dim"]
