"""What a survey does to the sky: PSF, resampling, sky noise, image defects, north artefacts.

READS / WRITES nothing (operates on arrays).
"""
from __future__ import annotations

import numpy as np

from ..imageio import BANDS, PIXEL_SCALE_ARCSEC
from .scene import band_factors
from .surveys import DEFECT_KINDS, NORTH_ARTEFACT_KINDS, PSF_MOFFAT_BETA, ZERO_POINT_MAG


def draw_survey_image(scene_bands, shift_arcsec, psf_fwhm, noise_sigma, image_size: int, rng,
                      flux_scale=(1.0, 1.0, 1.0), native_pixel_arcsec=(PIXEL_SCALE_ARCSEC,) * 3,
                      moffat_beta: float = PSF_MOFFAT_BETA) -> np.ndarray:
    """Convolve the scene with a Moffat PSF per band, draw it, add sky noise; (3, S, S) nanomaggies
    on the 0.262"/px grid.

    ``noise_sigma`` is the sky noise per 0.262" pixel area. A band whose native pixels differ
    (BASS 0.454") is drawn and given its noise on its own grid, then resampled onto the brick grid
    (``resample_to_brick_grid``), as the Legacy Surveys coadds are: its noise becomes correlated
    over ~native/0.262 pixels and its per-pixel sigma drops while the depth per area stays.
    The Gaussian sky noise comes from numpy (galsim's GaussianDeviate is ~50x slower per value).
    """
    import galsim

    flux = np.empty((len(BANDS), image_size, image_size), dtype=np.float32)
    for b in range(len(BANDS)):
        psf = galsim.Moffat(beta=float(moffat_beta), fwhm=float(psf_fwhm[b]))
        scene = scene_bands[b].shift(*shift_arcsec) * float(flux_scale[b])
        native = float(native_pixel_arcsec[b])
        if np.isclose(native, PIXEL_SCALE_ARCSEC):
            image = galsim.Convolve(scene, psf).drawImage(nx=image_size, ny=image_size, scale=PIXEL_SCALE_ARCSEC)
            flux[b] = image.array + rng.normal(0.0, float(noise_sigma[b]), (image_size, image_size))
            continue
        n_native = int(np.ceil(image_size * PIXEL_SCALE_ARCSEC / native)) + 6
        image = galsim.Convolve(scene, psf).drawImage(nx=n_native, ny=n_native, scale=native).array
        # same noise per unit area: sigma per native pixel = sigma per 0.262" pixel x (native / 0.262)
        image = image + rng.normal(0.0, float(noise_sigma[b]) * native / PIXEL_SCALE_ARCSEC, image.shape)
        flux[b] = resample_to_brick_grid(image, native, image_size)
    return flux


def resample_to_brick_grid(native: np.ndarray, native_pixel_arcsec: float, image_size: int) -> np.ndarray:
    """Resample a centred (N, N) image of native pixels (flux per pixel) onto an (S, S) 0.262"/px
    grid with the same centre: cubic-spline interpolation of the surface brightness, times the
    pixel-area ratio so that flux is kept."""
    from scipy.ndimage import map_coordinates

    n = native.shape[0]
    offsets = (np.arange(image_size) - (image_size - 1) / 2) * PIXEL_SCALE_ARCSEC / native_pixel_arcsec
    coordinates = offsets + (n - 1) / 2
    yy, xx = np.meshgrid(coordinates, coordinates, indexing="ij")
    values = map_coordinates(np.asarray(native, np.float64), [yy, xx], order=3, mode="nearest")
    return (values * (PIXEL_SCALE_ARCSEC / native_pixel_arcsec) ** 2).astype(np.float32)


def add_north_artefact(flux: np.ndarray, kind: str, rng, psf_fwhm, noise_sigma) -> dict:
    """Damage a (3, S, S) north cutout in place with one north artefact; return its details.

    missing_band        a band without an exposure (whole) or cut by a CCD gap / edge (part), zero there
    saturated_star      a bright star off-centre with diffraction spikes, flat core and bleed trail
    calibration_offset  a badly calibrated image: one band, or all, 0.3-0.8 mag too faint
    sky_residual        over- or under-subtracted sky: a tilted plane of 1-4 sigma in 1-3 bands
    """
    n_bands, size, _ = flux.shape
    if kind in ("missing_band", "saturated_star"):
        add_defect(flux, kind, rng, psf_fwhm)
        return {}
    if kind == "calibration_offset":
        bands = np.arange(n_bands) if rng.uniform() < 0.4 else np.array([int(rng.integers(n_bands))])
        dmag = np.zeros(n_bands)
        dmag[bands] = rng.uniform(0.3, 0.8, len(bands))
        flux *= (10 ** (-0.4 * dmag))[:, None, None].astype(np.float32)
        return {"calibration_outlier_dmag": [float(v) for v in dmag]}
    if kind == "sky_residual":
        y, x = (np.mgrid[:size, :size] - (size - 1) / 2) / size
        bands = rng.choice(n_bands, size=int(rng.integers(1, n_bands + 1)), replace=False)
        for b in bands:
            level = rng.uniform(1.0, 4.0) * float(noise_sigma[b]) * rng.choice([-1.0, 1.0])
            gx, gy = rng.normal(0.0, 1.0, 2)
            flux[b] += (level * (1.0 + gx * x + gy * y)).astype(np.float32)
        return {}
    raise ValueError(f"unknown north artefact kind {kind!r}; expected one of {NORTH_ARTEFACT_KINDS}")


# ---------------------------------------------------------------------------------------------
# image defects (per survey image)
# ---------------------------------------------------------------------------------------------

def add_defect(flux: np.ndarray, kind: str, rng, psf_fwhm) -> str:
    """Damage a (3, S, S) nanomaggy cutout in place the way real cutouts are damaged; return the kind."""
    n_bands, size, _ = flux.shape
    y, x = np.mgrid[:size, :size].astype(np.float64)
    fwhm_px = np.asarray(psf_fwhm) / PIXEL_SCALE_ARCSEC
    if kind == "satellite_trail":
        # A satellite crosses during one exposure: a PSF-wide straight streak in one or two bands.
        angle = rng.uniform(0, np.pi)
        x0, y0 = rng.uniform(0.2, 0.8, 2) * size
        distance = np.abs(-(x - x0) * np.sin(angle) + (y - y0) * np.cos(angle))
        amplitude = rng.uniform(0.1, 1.5)
        for b in rng.choice(n_bands, size=int(rng.choice([1, 2], p=[0.7, 0.3])), replace=False):
            sigma = fwhm_px[b] / 2.355
            flux[b] += (amplitude * np.exp(-0.5 * (distance / sigma) ** 2)).astype(np.float32)
    elif kind == "saturated_star":
        # A bright star (r ~ 9-11.5) off-centre: Moffat wings, diffraction spikes, a flat saturated
        # core and a bleed trail along the CCD columns.
        radius, angle = rng.uniform(0.2, 0.45) * size, rng.uniform(0, 2 * np.pi)
        xs, ys = (size - 1) / 2 + radius * np.cos(angle), (size - 1) / 2 + radius * np.sin(angle)
        g_r = rng.uniform(0.4, 1.2)
        star_flux = 10 ** ((ZERO_POINT_MAG - rng.uniform(9.0, 11.5)) / 2.5) * band_factors(g_r, 0.5 * g_r)
        saturation = rng.uniform(40.0, 90.0)
        bleed = int(rng.uniform(0.1, 0.3) * size)
        dx, dy = x - xs, y - ys
        for b in range(n_bands):
            alpha = fwhm_px[b] / (2 * np.sqrt(2 ** (1 / PSF_MOFFAT_BETA) - 1))
            moffat = (PSF_MOFFAT_BETA - 1) / (np.pi * alpha ** 2) \
                * (1 + (dx ** 2 + dy ** 2) / alpha ** 2) ** -PSF_MOFFAT_BETA
            spikes = sum(np.exp(-0.5 * (across / 0.7) ** 2) / (1 + np.abs(along) / 3.0)
                         for across, along in ((dx, dy), (dy, dx)))
            star = star_flux[b] * (moffat + 2e-3 * spikes)
            flux[b] = np.minimum(flux[b] + star, saturation).astype(np.float32)
            core = star > saturation
            if core.any():
                column = (np.abs(dx) <= 1) & (np.abs(dy) <= bleed)
                flux[b][column] = saturation
    elif kind == "missing_band":
        # A band missing over part of the cutout (CCD gap / no exposure), zero there; sometimes the whole band.
        b = int(rng.integers(n_bands))
        cut = int(round(size * (1.0 if rng.uniform() < 0.25 else rng.uniform(0.45, 0.8))))
        side = int(rng.integers(4))
        region = (slice(None, cut), slice(None)) if side == 0 else (slice(size - cut, None), slice(None)) if side == 1 \
            else (slice(None), slice(None, cut)) if side == 2 else (slice(None), slice(size - cut, None))
        flux[b][region] = 0.0
    elif kind == "bad_pixels":
        # A bad CCD column (hot or dead) in one band, plus scattered hot pixels / cosmic rays.
        b = int(rng.integers(n_bands))
        column = int(rng.integers(size))
        start = int(rng.integers(0, size // 2))
        flux[b, start:, column] = rng.uniform(3.0, 30.0) if rng.uniform() < 0.7 else 0.0
        n_hot = int(rng.integers(10, 40))
        flux[rng.integers(n_bands, size=n_hot), rng.integers(size, size=n_hot), rng.integers(size, size=n_hot)] = \
            rng.uniform(5.0, 100.0, n_hot).astype(np.float32)
    else:
        raise ValueError(f"unknown defect kind {kind!r}; expected one of {DEFECT_KINDS}")
    return kind
