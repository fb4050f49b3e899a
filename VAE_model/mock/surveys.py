"""Survey constants of the mock: footprints, pixel grids, PSF and depth per survey and band, artefacts.

The south is DECaLS (DECam on the Blanco 4 m); the north is BASS (g, r: 90Prime on the Bok 2.3 m)
plus MzLS (z: Mosaic-3 on the Mayall 4 m). Both are delivered on the Legacy Surveys brick grid,
0.262 arcsec/pixel, in nanomaggies (AB zero point 22.5).

Numbers used, with their sources (medians; the mock draws around them):

  PSF FWHM (arcsec)       g      r      z
    DECaLS                1.29   1.18   1.11   Dey et al. 2019, AJ 157, 168 (DECaLS delivered image
                                               quality; recalled from the paper, not re-checked here)
    BASS g, r / MzLS z    1.60   1.42   1.04   BASS DR2 page, median single-epoch seeing
                                               (batc.bao.ac.cn/BASS, "datarelease:dr2")
  5 sigma depth (AB)
    DECaLS                24.0   23.4   22.5   DESI requirement for an r_half = 0.45" galaxy, met by
                                               2 of 3 passes (legacysurvey.org/decamls); taken
                                               +0.35 mag deeper for point sources (assumed)
    BASS / MzLS           24.2   23.6   23.0   median point-source depths of BASS DR3 (Zou et al.
                                               2019, ApJS 245, 4, arXiv:1908.07099); 20-80% spread
                                               < 0.3 mag (same paper) -> depth scatter sd 0.18 mag
  north pass coverage     1: 15%, 2: 30%, 3: 54% (g); 15/24/61% (r); 7/24/69% (z) of the area,
                          from the DR6 coverage table (legacysurvey.org/dr6/description: g >= 1/2/3
                          passes 4380/3708/2376 deg2, r 4374/3719/2649, z 5231/4853/3622); the
                          mock's DECaLS is a full-depth coadd
  pixels                  BASS 0.454"/px (BASS DR2 page: 5400 x 5400 px blocks of 0.681 deg),
                          resampled to 0.262"/px, so its noise is correlated; MzLS z is not
                          resampled (Mosaic-3 pixels are close to the brick grid; assumed equal)

Per-pixel noise follows from depth: at fixed point-source depth m5 and PSF FWHM F the sky noise
per unit area scales as 10**(-0.4 m5) / F (noise-equivalent area ~ F**2), so
    sigma_north / sigma_DECaLS = 10**(-0.4 (m5_N - m5_S)) * F_S / F_N * sqrt(3 / n_pass).

Assumed, not found in the sources above (plausible values, marked as such in the code):
  * colour terms of the north filters against DECam: dm = m_north - m_DECam =
    +0.06 (g-r) in g, -0.04 (g-r) in r, +0.05 (r-z) in z (a few hundredths of a magnitude, the size
    of published north/south galaxy transformations, e.g. Toptun et al. 2023, PASP 135, 084102);
  * per-galaxy calibration scatter 0.02 mag per band; Moffat beta 2.8 for the north PSF (broader
    wings) instead of 3.5; north artefact rates per image at gap 1 (``NORTH_ARTEFACT_RATES``).

The gap knob (``gap``, float >= 0) scales every north/south difference: multiplicative factors
f become f**gap, offsets and magnitudes gap * value, rates min(1, gap * rate). gap = 0 renders
the north exactly like DECaLS (same PSF, same pixels, no colour terms or artefacts: the two images
differ only by noise and by the ordinary defects both surveys share); gap = 1 is the realistic
north above; gap = 2 doubles every difference (harsher).

READS / WRITES nothing (constants and small helpers used by the other ``VAE_model.mock`` modules).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import runfiles
from ..imageio import PIXEL_SCALE_ARCSEC

MOCK_VERSION = 2                       # bump when the rendering changes, so old mocks are rebuilt
MORPH_TYPES = ("smooth_round", "smooth_inbetween", "smooth_cigar", "edge_on",
               "spiral", "barred_spiral", "merger", "irregular")
DEFECT_KINDS = ("satellite_trail", "saturated_star", "missing_band", "bad_pixels")
DEFAULT_DEFECT_FRACTION = 0.04         # per survey image, both surveys
ZERO_POINT_MAG = 22.5                  # nanomaggies: m = 22.5 - 2.5 log10(flux)
PSF_MOFFAT_BETA = 3.5                  # ground-based seeing wings (Legacy Survey PSF models)
REFERENCE_IMAGE_SIZE = 64              # galaxy magnitudes r 15-18 refer to this stamp size

# Sky patch and footprints. BASS (g, r) + MzLS (z) cover the north galactic cap at Dec > 32 deg.
RA_RANGE_DEG = (150.0, 200.0)
DEC_RANGE_DEG = (20.0, 45.0)
BASS_MIN_DEC_DEG = 32.0
DEFAULT_NORTH_FRACTION = 0.75          # share of the mock's galaxies placed in the north (imaged by both)
BASS_OFFSET_ARCSEC = (0.1, 0.3)        # astrometric difference between the survey catalogs (x gap)
MIN_SEPARATION_ARCSEC = 10.0           # IAU names (0.15"/0.1" precision) stay unique

DEFAULT_GAP = 1.0
MAX_GAP = 3.0


@dataclass(frozen=True)
class SurveySpec:
    key: str                                        # 'decals' / 'bass' in truth column names
    name: str                                       # FITS SURVEY card
    image_dir: str
    catalog: str
    psf_fwhm_median_arcsec: tuple[float, float, float]   # g, r, z
    depth_5sigma_mag: tuple[float, float, float]         # g, r, z point-source depth of the full survey
    native_pixel_arcsec: tuple[float, float, float]      # g, r, z pixel scale before resampling
    psf_moffat_beta: float


DECALS = SurveySpec("decals", "DECaLS", runfiles.MOCK_DECALS_IMAGES, runfiles.MOCK_DECALS_CATALOG,
                    (1.29, 1.18, 1.11), (24.35, 23.75, 22.85), (PIXEL_SCALE_ARCSEC,) * 3, PSF_MOFFAT_BETA)
BASS = SurveySpec("bass", "BASS+MzLS", runfiles.MOCK_BASS_IMAGES, runfiles.MOCK_BASS_CATALOG,
                  (1.60, 1.42, 1.04), (24.2, 23.6, 23.0), (0.454, 0.454, PIXEL_SCALE_ARCSEC),
                  2.8)                               # beta: assumed
SURVEYS = (DECALS, BASS)

# DECaLS sky noise per 0.262" pixel (nanomaggies), typical; x U(0.85, 1.2) per galaxy and band.
DECALS_NOISE_SIGMA_NMGY = (0.0035, 0.005, 0.009)
# Seeing scatter (natural log of FWHM): a night/position term shared by the bands plus a band term.
PSF_LOG_SCATTER_COMMON = {"decals": 0.12, "bass": 0.15}     # assumed
PSF_LOG_SCATTER_BAND = 0.06                                 # assumed
PSF_FWHM_LIMITS_ARCSEC = (0.7, 3.5)
NORTH_DEPTH_SCATTER_MAG = 0.18                              # BASS DR3: 20-80% depth spread < 0.3 mag
NORTH_PASS_FRACTIONS = ((0.153, 0.304, 0.543), (0.150, 0.245, 0.606), (0.072, 0.235, 0.692))  # DR6, g r z
# Colour terms m_north - m_DECam = slope * colour, colour = g-r for g and r, r-z for z (assumed).
NORTH_COLOUR_TERMS = (("g-r", 0.06), ("g-r", -0.04), ("r-z", 0.05))
NORTH_CALIBRATION_SCATTER_MAG = 0.02                        # assumed
# North-only artefacts, rate per north image at gap 1 (assumed), each flagged in the truth table
# (column artefact_bass_<kind>): a band missing or partly missing (no exposure / CCD gap), a
# saturated star with its bleed trail, a badly calibrated (much fainter) image, sky residuals.
NORTH_ARTEFACT_RATES = {"missing_band": 0.04, "saturated_star": 0.03, "calibration_offset": 0.03,
                        "sky_residual": 0.05}
NORTH_ARTEFACT_KINDS = tuple(NORTH_ARTEFACT_RATES)


def check_gap(gap: float) -> float:
    """The gap as a float in [0, MAX_GAP], or ValueError naming the allowed range."""
    gap = float(gap)
    if not 0.0 <= gap <= MAX_GAP:
        raise ValueError(f"gap must lie in [0, {MAX_GAP}] (0 identical surveys, 1 realistic north), got {gap}")
    return gap


def draw_psf_fwhm(rng, survey: SurveySpec) -> np.ndarray:
    """Per-band PSF FWHM (arcsec) of one image: log-normal around the survey's band medians."""
    common = rng.normal(0.0, PSF_LOG_SCATTER_COMMON[survey.key])
    band = rng.normal(0.0, PSF_LOG_SCATTER_BAND, 3)
    return np.clip(np.array(survey.psf_fwhm_median_arcsec) * np.exp(common + band), *PSF_FWHM_LIMITS_ARCSEC)


def blend(south, north, gap: float) -> np.ndarray:
    """Geometric interpolation south -> north: south * (north / south)**gap (gap 0: south, 1: north)."""
    south, north = np.asarray(south, float), np.asarray(north, float)
    return south * (north / south) ** gap


def north_noise_factor(n_pass: np.ndarray, depth_offset_mag: np.ndarray) -> np.ndarray:
    """sigma_north / sigma_DECaLS per band at gap 1 (see the module docstring)."""
    m5 = np.array(BASS.depth_5sigma_mag) + depth_offset_mag
    factor = 10 ** (-0.4 * (m5 - np.array(DECALS.depth_5sigma_mag)))
    factor *= np.array(DECALS.psf_fwhm_median_arcsec) / np.array(BASS.psf_fwhm_median_arcsec)
    return factor * np.sqrt(3.0 / np.asarray(n_pass, float))


def north_colour_dmag(g_r: float, r_z: float) -> np.ndarray:
    """m_north - m_DECam per band at gap 1 from the galaxy's integrated colours (assumed terms)."""
    colours = {"g-r": g_r, "r-z": r_z}
    return np.array([slope * colours[name] for name, slope in NORTH_COLOUR_TERMS])
