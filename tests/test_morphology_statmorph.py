"""The fast hand-written morphology (VAE_model.morphology) agrees with statmorph on GalSim Sersic profiles.

statmorph (Rodriguez-Gomez et al. 2019) is a test dependency only. The tolerances are a little above
the largest differences measured on a grid of 12 PSF-convolved Sersic profiles (n = 1, 2, 4;
half-light radius 1.5 and 3 arcsec; axis ratio 1 and 0.5; 0.262"/px, high S/N), of which the four
extremes are rendered here; the simplifications that cause the differences are listed in
VAE_model/morphology.py (circular C/A/S apertures, pixel-centre apertures, another sky-asymmetry estimate).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from VAE_model.morphology import FEATURE_NAMES, morphology_one

statmorph = pytest.importorskip("statmorph")
galsim = pytest.importorskip("galsim")

TOLERANCE = {"concentration": 0.3, "asymmetry": 0.1, "smoothness": 0.06, "gini": 0.07, "m20": 0.15,
             "ellipticity": 0.03}
SIZE, PIXEL_ARCSEC, SKY_SIGMA = 96, 0.262, 0.005
# (Sersic n, half-light radius arcsec, axis ratio): the extremes of the measured grid
PROFILES = [(1.0, 3.0, 0.5), (4.0, 3.0, 1.0), (2.0, 1.5, 1.0), (4.0, 1.5, 0.5)]


def _render(n: float, hlr: float, q: float, rng) -> np.ndarray:
    galaxy = galsim.Sersic(n=n, half_light_radius=hlr, flux=100.0).shear(q=q, beta=30 * galsim.degrees)
    psf = galsim.Moffat(beta=3.5, fwhm=1.3)       # DECaLS-like seeing
    image = galsim.Convolve(galaxy, psf).drawImage(nx=SIZE, ny=SIZE, scale=PIXEL_ARCSEC).array
    return image.astype(np.float64) + rng.normal(0, SKY_SIGMA, (SIZE, SIZE))


def _statmorph(image: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    # the statmorph documentation's segmentation: smoothed image above 1.5 sigma, the central source
    segments, _ = ndimage.label(ndimage.gaussian_filter(image, 1.0) > 1.5 * SKY_SIGMA)
    segmap = (segments == segments[SIZE // 2, SIZE // 2]).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = statmorph.source_morphology(image, segmap, weightmap=np.full_like(image, SKY_SIGMA))[0]
    assert m.flag == 0
    return np.array([m.concentration, m.asymmetry, m.smoothness, m.gini, m.m20, m.ellipticity_asymmetry])


def test_hand_written_measures_agree_with_statmorph_on_sersic_profiles():
    rng = np.random.default_rng(0)
    ours, reference = [], []
    for n, hlr, q in PROFILES:
        image = _render(n, hlr, q, rng)
        ours.append(morphology_one(image))
        reference.append(_statmorph(image))
    ours, reference = np.array(ours), np.array(reference)
    for k, name in enumerate(FEATURE_NAMES):
        worst = np.abs(ours[:, k] - reference[:, k]).max()
        assert worst <= TOLERANCE[name], f"{name}: ours {ours[:, k]} vs statmorph {reference[:, k]}"
    # both order the profiles alike: de Vaucouleurs (n = 4) more concentrated than exponential (n = 1)
    assert ours[1, 0] > ours[0, 0] and reference[1, 0] > reference[0, 0]
