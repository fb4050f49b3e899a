"""Reconstruction and ranking metrics shared by the analysis stages.

Images are stretched (3, S, S) arrays in [0, 1] (the units the VAE sees), so MSE per pixel and
SSIM are comparable across image sizes and models:

    mse_per_pixel(x, x_hat) = mean over bands and pixels of (x_hat - x)^2
    SSIM                    = Wang et al. (2004, IEEE TIP 13, 600) with the paper's settings: an
                              11 x 11 Gaussian window of sigma 1.5 px, K1 = 0.01, K2 = 0.03, data
                              range L = 1 (the stretch's range), population (not sample) variances;
                              the SSIM map over the pixels whose window lies inside the image, averaged
                              over pixels and bands. Equal (to float rounding) to
                              skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=1, channel_axis=0); computed
                              in torch so it runs in batches on the model's device

Also here: rank normalisation of anomaly scores, precision/recall in the top k, and the
"where does the curve level off" rule of the latent-size study.
"""
from __future__ import annotations

import numpy as np
import torch

from .batches import to_float


# ----------------------------------------------------------------------------- per-image metrics
def _as_float(images: np.ndarray) -> np.ndarray:
    """uint8 cache slices (0..255) or float [0, 1] images -> float32 [0, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32, copy=False)


def mse_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """(N,) mean squared error per pixel (over bands and pixels) of each image, [0, 1] units."""
    originals, reconstructions = _as_float(originals), _as_float(reconstructions)
    if originals.shape != reconstructions.shape:
        raise ValueError(f"shape mismatch: {originals.shape} vs {reconstructions.shape}")
    return ((reconstructions - originals) ** 2).reshape(len(originals), -1).mean(axis=1)


# Wang et al. (2004), Sec. III-C: Gaussian weighting window 11 x 11, sigma 1.5; K1 = 0.01, K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_DATA_RANGE = 1.0


def _gaussian_window(device, dtype) -> torch.Tensor:
    radius = SSIM_WINDOW // 2
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    weights = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def ssim_torch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) SSIM of (N, C, H, W) float images in [0, 1] (Wang et al. 2004 settings, see the module
    docstring); images must be at least 11 px on a side. Computed in float64."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"need two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} px, got {tuple(x.shape[-2:])}")
    x, y = x.double(), y.double()
    n, channels = x.shape[:2]
    g = _gaussian_window(x.device, x.dtype)
    kernel_h = g.view(1, 1, 1, -1).expand(channels, 1, 1, SSIM_WINDOW)
    kernel_v = g.view(1, 1, -1, 1).expand(channels, 1, SSIM_WINDOW, 1)

    def blur(image):   # separable Gaussian, 'valid' region only (skimage crops the same border)
        image = torch.nn.functional.conv2d(image, kernel_h, groups=channels)
        return torch.nn.functional.conv2d(image, kernel_v, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * SSIM_DATA_RANGE) ** 2, (SSIM_K2 * SSIM_DATA_RANGE) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.reshape(n, -1).mean(dim=1)


def ssim_per_image(originals: np.ndarray, reconstructions: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N,) structural similarity of each 3-band image (Wang et al. 2004 settings, data range 1)."""
    originals, reconstructions = _as_float(originals), _as_float(reconstructions)
    if originals.shape != reconstructions.shape:
        raise ValueError(f"shape mismatch: {originals.shape} vs {reconstructions.shape}")
    out = [ssim_torch(torch.from_numpy(originals[i:i + batch_size]), torch.from_numpy(reconstructions[i:i + batch_size]))
           for i in range(0, len(originals), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0)


@torch.no_grad()
def reconstruction_metrics(model, cache: np.ndarray, indices, device, batch_size: int = 256,
                           ssim: bool = True, progress: bool = False, precision=None) -> dict[str, np.ndarray]:
    """Per-image MSE per pixel (and SSIM) of ``model`` (z = mu) on ``cache[indices]``.

    Streams the memory-mapped cache in batches, so it works on 10^5 galaxies at 256 px.
    Reconstructions are clipped to [0, 1] (the range of the stretched inputs).
    Returns {"mse_per_pixel": (n,), "mse_per_pixel_inner": (n,), "ssim": (n,) or absent}, in the order
    of ``indices``. ``mse_per_pixel_inner``: over the pixels within the inscribed circle (radius S/2),
    the part of the image that a turned square frame keeps; the pose-separated VAE's canonical frame
    cannot cover the corners outside it (their neighbours and sky), so the two say where its error is.
    """
    from tqdm import tqdm

    model.eval()
    indices = np.asarray(indices, dtype=np.int64)
    mse = np.zeros(len(indices))
    mse_inner = np.zeros(len(indices))
    side = cache.shape[-1]
    centre = (side - 1) / 2
    rows, columns = np.mgrid[:side, :side]
    inner = torch.from_numpy(np.hypot(rows - centre, columns - centre) < side / 2).to(device)
    ssim_values = np.zeros(len(indices))
    starts = range(0, len(indices), batch_size)
    for start in tqdm(starts, desc="reconstruct", unit="batch", disable=not progress, leave=False):
        part = indices[start:start + batch_size]
        order = np.argsort(part)   # sorted reads from the memmap, results put back in the caller's order
        chunk = np.empty((len(part), *cache.shape[1:]), dtype=cache.dtype)
        chunk[order] = cache[part[order]]
        x = to_float(torch.from_numpy(chunk), device) if chunk.dtype == np.uint8 \
            else torch.from_numpy(chunk).float().to(device)
        if precision is not None:
            with precision.autocast():
                reconstruction = model(x)[0]
        else:
            reconstruction = model(x)[0]
        reconstruction = reconstruction.float().clamp(0, 1)
        squared = (reconstruction - x).pow(2)
        mse[start:start + len(part)] = squared.flatten(1).mean(1).double().cpu().numpy()
        mse_inner[start:start + len(part)] = squared[:, :, inner].flatten(1).mean(1).double().cpu().numpy()
        if ssim:
            ssim_values[start:start + len(part)] = ssim_torch(x, reconstruction).cpu().numpy()
    result = {"mse_per_pixel": mse, "mse_per_pixel_inner": mse_inner}
    if ssim:
        result["ssim"] = ssim_values
    return result


# ----------------------------------------------------------------------------- rankings
def rank_normalise(scores: np.ndarray) -> np.ndarray:
    """Scores -> ranks scaled to [0, 1] (0 = lowest, 1 = highest; ties share their mean rank).

    Puts scores of different units (isolation-forest path length, LOF ratio, MSE) on one scale
    so they can be averaged into one anomaly ranking.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) <= 1:
        return np.zeros(len(scores))
    return (rankdata(scores, method="average") - 1) / (len(scores) - 1)


def top_k_scores(scores: np.ndarray, is_positive: np.ndarray, k: int) -> dict:
    """Precision and recall of the k highest scores against boolean ground truth.

    Also the threshold-free average precision and ROC AUC (sklearn), and the expectation for
    a random ranking: precision k_true/N, recall k/N.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    is_positive = np.asarray(is_positive, dtype=bool)
    n, n_positive = len(scores), int(is_positive.sum())
    k = int(min(k, n))
    # stable sort of -score: ties keep the input order, so the result is deterministic
    top = np.argsort(-scores, kind="stable")[:k]
    hits = int(is_positive[top].sum())
    both_classes = 0 < n_positive < n
    return {
        "k": k, "n_images": n, "n_positive": n_positive, "hits": hits,
        "precision_at_k": hits / k if k else float("nan"),
        "recall_at_k": hits / n_positive if n_positive else float("nan"),
        "random_precision": n_positive / n if n else float("nan"),
        "random_recall": k / n if n else float("nan"),
        "average_precision": float(average_precision_score(is_positive, scores)) if both_classes else float("nan"),
        "roc_auc": float(roc_auc_score(is_positive, scores)) if both_classes else float("nan"),
    }


__all__ = ["mse_per_image", "ssim_per_image", "ssim_torch", "reconstruction_metrics", "rank_normalise", "top_k_scores"]
