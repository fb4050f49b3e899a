"""Part II alignment losses between the ``mu`` of DECaLS and BASS+MzLS batches.

  * ``mmd2``        multi-kernel RBF maximum mean discrepancy (Gretton et al. 2012, JMLR 13, 723;
                    multi-kernel as in Long et al. 2015, DAN). Needs no pairs: the two batches are
                    drawn independently, only their distributions are compared.
  * ``paired_loss`` mean (squared) Euclidean distance between the ``mu`` of the two images of one
                    galaxy (uses the cross-matched pairs).

READS / WRITES nothing (tensor functions).
"""
from __future__ import annotations

import torch

from ..config import DEFAULT_KERNEL_MULTIPLIERS  # noqa: F401  (the multi-kernel bandwidths; torch-free there)


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
