"""Classical non-parametric galaxy morphology: C, A, S, Gini, M20 and ellipticity (numpy/scipy).

The baseline the latent features are compared with. Definitions follow statmorph
(Rodriguez-Gomez et al. 2019, MNRAS 483, 4140) in simplified form, about 100 times faster;
``statmorph`` is a test dependency only (tests/test_morphology_statmorph.py checks that both agree
on GalSim Sersic profiles within stated tolerances). A user who has it may compute the same six
columns with it and pass them to ``VAE_model.classify`` instead (the names match statmorph's).

Per image (one band, background-subtracted, by default the r-band flux):
  segmentation  Gaussian-smoothed image (sigma 1 px) above 1.5 sigma of the sky noise (the
                statmorph example threshold), connected component at (or nearest to) the
                stamp centre, holes filled; < 5 pixels means "no detection": all six are NaN.
  sky           median and noise (84th - 50th percentile, robust also when the negative
                noise was clipped by a display stretch) of a frame of width S/8 at the border.
  r_P           circular Petrosian radius, eta = 0.2: mean surface brightness in the annulus
                0.8-1.25 r over the mean inside r (statmorph's convention), about the centroid.
  concentration C = 5 log10(r80 / r20), radii of circles holding 20% and 80% of the flux
                inside 1.5 r_P (Conselice 2003), about the asymmetry centre.
  asymmetry     A = (sum |I - I_180| - N_ap A_sky) / sum |I| in a circle of 1.5 r_P, minimised
                over centres on a half-pixel grid +-1 px around the centroid (Conselice et al.
                2000); A_sky = mean |B - B_180| per pixel of sky boxes in the stamp corners.
  smoothness    S = (sum (I - I_box) - N_ap S_sky) / sum I in the annulus 0.25-1.5 r_P, boxcar
                width 0.25 r_P (rounded to an odd number of pixels, at least 3) (Conselice 2003).
  gini          Gini coefficient of |I| (Lotz et al. 2004, eq. 6) over the "Gini segmap" of Lotz et
                al. (2004) as statmorph makes it: the image smoothed by a Gaussian of sigma 0.2 r_P(ell)
                at least its mean on the ellipse at the elliptical Petrosian radius r_P(ell) (ellipse of
                the second-moment shape, 1 px wide), the 8-connected region at the centroid.
  m20           log10 of the second moment of the brightest pixels holding 20% of the flux over
                the total second moment, about the centroid, over the same pixels (Lotz et al. 2004,
                eq. 7-8).
  ellipticity   1 - b/a from the flux-weighted second moments inside the segmentation.

Simplifications against statmorph: pixel-centre (not exact) apertures, circular (not elliptical)
apertures for C, A and S, sky asymmetry from corner boxes, no PSF or noise-map handling, no flags; at
small stamps (64 px, PSF FWHM ~5 px) C and S are resolution-limited, so compare them between
galaxies of one survey, not with published values.

Input: the flux itself (analysis/decals_5.py reads the r band of each FITS with
``imageio.read_raw``, negative sky noise included, at the file's own resolution). For PNG/JPG
cutouts ``band_images_from_cache`` gives the stretched channel; for a FITS-based cache it can undo
the fixed asinh stretch, but the stretch clipped the negative sky to 0, which biases A, S and Gini
at low S/N, so the FITS files are preferred.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .imageio import BANDS, inverse_asinh_stretch

FEATURE_NAMES = ("concentration", "asymmetry", "smoothness", "gini", "m20", "ellipticity")
SEGMENT_SMOOTH_PX = 1.0       # Gaussian sigma of the detection image
SEGMENT_NSIGMA = 1.5          # detection threshold in sky sigma (statmorph documentation example)
MIN_PIXELS = 5                # smallest detection (photutils npixels of the statmorph example)
PETROSIAN_ETA = 0.2
PETRO_EXTENT = 1.5            # apertures of C and A: 1.5 r_P (statmorph petro_extent_cas)
PETRO_FRACTION_S = 0.25       # smoothing width and inner radius of S: 0.25 r_P
PETRO_FRACTION_GINI = 0.2     # Gaussian smoothing of the Gini segmap: 0.2 r_P (statmorph petro_fraction_gini)
ASYM_SEARCH_PX = 1.0          # centre search half-width for the asymmetry minimum
FRAME_FRACTION = 1 / 8        # width of the sky frame / corner boxes relative to the stamp side


def band_images_from_cache(cache: np.ndarray, indices, band: str = "r", to_flux: bool = True) -> np.ndarray:
    """(N, S, S) float32 images of one band from a uint8 image cache (N_all, 3, S, S).

    ``to_flux``: undo the asinh stretch (for caches built from FITS flux); otherwise the
    stretched intensity in [0, 1] is returned (PNG/JPG cutouts have no flux to recover).
    """
    plane = np.asarray(cache[np.asarray(indices), BANDS.index(band)], dtype=np.float32) / 255.0
    return inverse_asinh_stretch(plane) if to_flux else plane


# ----------------------------------------------------------------------------- helpers
def _sky(image: np.ndarray, width: int) -> tuple[float, float]:
    frame = np.concatenate([image[:width].ravel(), image[-width:].ravel(),
                            image[width:-width, :width].ravel(), image[width:-width, -width:].ravel()])
    p50, p84 = np.percentile(frame, [50.0, 84.13])
    return float(p50), float(p84 - p50)


def _segment(image: np.ndarray, sigma: float) -> np.ndarray | None:
    smoothed = ndimage.gaussian_filter(image, SEGMENT_SMOOTH_PX)
    labels, n = ndimage.label(smoothed > SEGMENT_NSIGMA * sigma)
    if n == 0:
        return None
    size = image.shape[0]
    sizes = np.bincount(labels.ravel())
    centre_label = labels[size // 2, size // 2]
    if centre_label == 0 or sizes[centre_label] < MIN_PIXELS:
        y, x = np.nonzero(labels)
        distance = np.hypot(y - (size - 1) / 2, x - (size - 1) / 2)
        big = sizes[labels[y, x]] >= MIN_PIXELS
        if not big.any():
            return None
        centre_label = labels[y[big], x[big]][np.argmin(distance[big])]
    return ndimage.binary_fill_holes(labels == centre_label)


def _corner_boxes(image: np.ndarray, mask: np.ndarray, width: int) -> list[np.ndarray]:
    """Sky boxes in the four corners that do not touch the (dilated) galaxy mask."""
    grown = ndimage.binary_dilation(mask, iterations=2)
    boxes = []
    for ys in (slice(0, width), slice(-width, None)):
        for xs in (slice(0, width), slice(-width, None)):
            if not grown[ys, xs].any():
                boxes.append(image[ys, xs])
    return boxes


def _cumulative_profile(image: np.ndarray, xc: float, yc: float, yy: np.ndarray, xx: np.ndarray):
    radius = np.hypot(xx - xc, yy - yc).ravel()
    order = np.argsort(radius, kind="stable")
    return radius[order], np.cumsum(image.ravel()[order])


def _enclosed(r_sorted, cumflux, radii) -> tuple[np.ndarray, np.ndarray]:
    n = np.searchsorted(r_sorted, radii, side="right")
    flux = np.where(n > 0, cumflux[np.maximum(n - 1, 0)], 0.0)
    return flux, n


def _petrosian_radius(r_sorted, cumflux, r_max: float) -> float:
    radii = np.arange(1.0, r_max, 0.5)
    f_out, n_out = _enclosed(r_sorted, cumflux, 1.25 * radii)
    f_in, n_in = _enclosed(r_sorted, cumflux, 0.8 * radii)
    f_r, n_r = _enclosed(r_sorted, cumflux, radii)
    annulus = (f_out - f_in) / np.maximum(n_out - n_in, 1)
    interior = f_r / np.maximum(n_r, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(interior > 0, annulus / interior, np.inf)
    # pixel-centre apertures: an annulus with too few pixel centres (small r) says nothing
    eta[(n_out - n_in) < 4] = np.inf
    below = np.nonzero(eta < PETROSIAN_ETA)[0]
    if len(below) == 0:
        return float(radii[-1])
    i = below[0]
    if i == 0 or not np.isfinite(eta[i - 1]):
        return float(radii[i])
    # linear interpolation of eta between the bracketing radii
    t = (eta[i - 1] - PETROSIAN_ETA) / (eta[i - 1] - eta[i])
    return float(radii[i - 1] + t * (radii[i] - radii[i - 1]))


def _asymmetry(image, mask_radius, xc, yc, yy, xx, sky_asymmetry) -> tuple[float, float, float]:
    """Minimum background-corrected asymmetry over centres on a half-pixel grid; (A, x, y)."""
    size = image.shape[0]
    steps = np.arange(-ASYM_SEARCH_PX, ASYM_SEARCH_PX + 0.25, 0.5)
    best = (np.inf, xc, yc)
    x0, y0 = np.round(2 * xc) / 2, np.round(2 * yc) / 2
    inside = np.hypot(xx - x0, yy - y0) <= mask_radius + ASYM_SEARCH_PX * 1.5
    ys, xs = yy[inside].astype(int), xx[inside].astype(int)
    for dy in steps:
        for dx in steps:
            cx, cy = x0 + dx, y0 + dy
            ry, rx = (2 * cy - ys).astype(int), (2 * cx - xs).astype(int)
            use = (np.hypot(xs - cx, ys - cy) <= mask_radius) & (ry >= 0) & (ry < size) & (rx >= 0) & (rx < size)
            if use.sum() < MIN_PIXELS:
                continue
            values = image[ys[use], xs[use]]
            total = np.abs(values).sum()
            if total <= 0:
                continue
            a = (np.abs(values - image[ry[use], rx[use]]).sum() - use.sum() * sky_asymmetry) / total
            if a < best[0]:
                best = (float(a), float(cx), float(cy))
    return best if np.isfinite(best[0]) else (np.nan, xc, yc)


def _second_moments(image: np.ndarray, mask: np.ndarray, yy, xx):
    weights = np.where(mask, np.clip(image, 0, None), 0.0)
    total = weights.sum()
    if total <= 0:
        return None
    xc, yc = (weights * xx).sum() / total, (weights * yy).sum() / total
    return weights, total, xc, yc


def _gini_segmap(image, r_petro_ellip, r_ellip, xc, yc, fallback) -> np.ndarray:
    """Lotz et al. (2004) galaxy pixels: smoothed (Gaussian, sigma = 0.2 r_P) surface brightness at
    least its mean on the ellipse at the elliptical Petrosian radius (1 px wide); the 8-connected
    region at the centroid (statmorph ``_segmap_gini``). Falls back to the detection mask when that
    region is empty or covers the whole stamp."""
    smooth = ndimage.gaussian_filter(image, PETRO_FRACTION_GINI * r_petro_ellip, mode="constant", cval=0.0)
    annulus = np.abs(r_ellip - r_petro_ellip) <= 0.5
    if not annulus.any():
        return fallback
    above = smooth >= smooth[annulus].mean()
    labels, n = ndimage.label(above, structure=np.ones((3, 3), bool))
    centre = labels[int(round(yc)), int(round(xc))]
    if n == 0 or centre == 0 or above.all():
        return fallback
    region = labels == centre
    return region if region.sum() >= MIN_PIXELS else fallback


def _gini_m20(image, mask, xc, yc, yy, xx) -> tuple[float, float]:
    """Gini of |I| and M20 about the centroid over the pixels of ``mask`` (NaN when undefined)."""
    gini = m20 = np.nan
    values = np.sort(np.abs(image[mask]))
    n = len(values)
    if n > 1 and values.sum() > 0:
        gini = float(np.sum((2 * np.arange(1, n + 1) - n - 1) * values) / (values.mean() * n * (n - 1)))
    flux = np.clip(image[mask], 0, None)
    moment = flux * ((xx[mask] - xc) ** 2 + (yy[mask] - yc) ** 2)
    m_total = moment.sum()
    order = np.argsort(flux)[::-1]
    cumulative = np.cumsum(flux[order])
    if len(cumulative) and cumulative[-1] > 0:
        bright = order[: int(np.searchsorted(cumulative, 0.2 * cumulative[-1])) + 1]
        m_bright = moment[bright].sum()
        if m_total > 0 and m_bright > 0:
            m20 = float(np.log10(m_bright / m_total))
    return gini, m20


def morphology_one(image: np.ndarray) -> np.ndarray:
    """The six ``FEATURE_NAMES`` of one (S, S) image (sky is estimated and subtracted here).

    Returns NaN for all six when nothing is detected (blank or noise-only image).
    """
    image = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    out = np.full(len(FEATURE_NAMES), np.nan)
    size = image.shape[0]
    if image.ndim != 2 or image.shape[1] != size or size < 8:
        raise ValueError(f"expected a square image of at least 8 px, got shape {image.shape}")
    width = max(2, int(round(size * FRAME_FRACTION)))
    sky, sigma = _sky(image, width)
    image = image - sky
    peak = np.abs(image).max()
    if peak == 0:
        return out
    sigma = max(sigma, 1e-6 * peak)      # noise-free synthetic images
    mask = _segment(image, sigma)
    if mask is None:
        return out
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    moments = _second_moments(image, mask, yy, xx)
    if moments is None:
        return out
    weights, total, xc, yc = moments

    # ellipticity from the flux-weighted second moments
    dx, dy = xx - xc, yy - yc
    cov = np.array([[(weights * dx * dx).sum(), (weights * dx * dy).sum()],
                    [(weights * dx * dy).sum(), (weights * dy * dy).sum()]]) / total
    (low, high), axes = np.linalg.eigh(cov)
    out[5] = 1.0 - np.sqrt(max(low, 0.0) / high) if high > 0 else np.nan
    axis_ratio = float(np.sqrt(max(low, 0.0) / high)) if high > 0 else 1.0
    major = axes[:, 1]                                   # (x, y) of the major axis
    # elliptical "radius" (semi-major axis of the ellipse of that shape through each pixel)
    along, across = dx * major[0] + dy * major[1], -dx * major[1] + dy * major[0]
    r_ellip = np.hypot(along, across / max(axis_ratio, 0.05))

    # Petrosian radius about the centroid, then the asymmetry centre
    r_sorted, cumflux = _cumulative_profile(image, xc, yc, yy, xx)
    r_petro = _petrosian_radius(r_sorted, cumflux, r_max=size / 2 * np.sqrt(2))

    # Gini and M20 (Lotz et al. 2004, eq. 6-8) over the "Gini segmap": pixels of the image smoothed
    # by a Gaussian of sigma 0.2 r_P brighter than its mean at r_P, elliptical apertures of the shape
    # of the second moments (statmorph's rpetro_ellip and segmap_gini)
    order = np.argsort(r_ellip.ravel(), kind="stable")
    r_petro_ellip = _petrosian_radius(r_ellip.ravel()[order], np.cumsum(image.ravel()[order]),
                                      r_max=size / 2 * np.sqrt(2))
    gini_mask = _gini_segmap(image, r_petro_ellip, r_ellip, xc, yc, mask)
    out[3], out[4] = _gini_m20(image, gini_mask, xc, yc, yy, xx)
    boxes = _corner_boxes(image, mask, width)
    sky_asymmetry = np.mean([np.abs(b - b[::-1, ::-1]).mean() for b in boxes]) if boxes else 2 * sigma / np.sqrt(np.pi)
    aperture = PETRO_EXTENT * r_petro
    a, ax, ay = _asymmetry(image, aperture, xc, yc, yy, xx, sky_asymmetry)
    out[1] = a

    # concentration about the asymmetry centre (Conselice 2003)
    r_sorted, cumflux = _cumulative_profile(image, ax, ay, yy, xx)
    inside = r_sorted <= aperture
    if inside.sum() >= MIN_PIXELS:
        radii = np.concatenate([[0.0], r_sorted[inside]])
        enclosed = np.maximum.accumulate(np.concatenate([[0.0], cumflux[inside]]))
        total_ap = enclosed[-1]
        if total_ap > 0:
            r20, r80 = np.interp([0.2 * total_ap, 0.8 * total_ap], enclosed, radii)
            if r20 > 0:
                out[0] = 5.0 * np.log10(r80 / r20)

    # smoothness (Conselice 2003): residual from a boxcar-smoothed image in 0.25-1.5 r_P
    box = max(3, 2 * int(round(PETRO_FRACTION_S * r_petro / 2)) + 1)
    smooth = ndimage.uniform_filter(image, size=box, mode="nearest")
    radius = np.hypot(xx - ax, yy - ay)
    annulus = (radius >= PETRO_FRACTION_S * r_petro) & (radius <= aperture)
    sky_smoothness = (np.mean([(b - ndimage.uniform_filter(b, size=min(box, b.shape[0]), mode="nearest")).mean()
                               for b in boxes]) if boxes else 0.0)
    flux_annulus = image[annulus].sum()
    if annulus.sum() >= MIN_PIXELS and flux_annulus > 0:
        out[2] = ((image - smooth)[annulus].sum() - annulus.sum() * sky_smoothness) / flux_annulus
    return out


def morphology_features(images: np.ndarray, progress: bool = False) -> tuple[np.ndarray, list[str]]:
    """(N, 6) float64 features (columns ``FEATURE_NAMES``) of (N, S, S) one-band images.

    Rows are NaN where nothing was detected; the classifiers impute the training-fold median.
    """
    from tqdm import tqdm

    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected (N, S, S) images, got shape {images.shape}")
    features = np.full((len(images), len(FEATURE_NAMES)), np.nan)
    with np.errstate(all="ignore"):
        for i in tqdm(range(len(images)), desc="morphology", unit="galaxy", disable=not progress, leave=False):
            features[i] = morphology_one(images[i])
    return features, list(FEATURE_NAMES)
