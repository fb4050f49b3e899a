"""The embedded default data: a mock DECaLS / BASS+MzLS galaxy survey rendered with GalSim.

Real Legacy Survey cutouts cannot be downloaded here, so the project renders its own sky:
the same galaxies seen by two surveys with different seeing, depth and colour response, plus
Galaxy Zoo DECaLS style vote catalogs drawn from the ground truth with volunteer noise.
Every science step can then be checked against the truth (``truth.parquet``), which training
never reads.

Surveys (both on the Legacy Survey grid, 0.262 arcsec/pixel, bands g, r, z, nanomaggies with
AB zero point 22.5 mag):
  * DECaLS-like: Moffat PSF (beta 3.5), FWHM 1.1-1.5 arcsec per galaxy and band; sky noise
    ~0.003-0.01 nmgy/pixel.
  * BASS+MzLS-like: FWHM 1.5-2.1 arcsec, 0.5 mag shallower (noise x 10**0.2), per-band flux
    response 0.93-1.05 relative to DECaLS; only Dec > 32 deg; catalog positions offset by
    0.1-0.3 arcsec, so pairing the surveys needs a sky cross-match (``catalog.cross_match``).

Morphologies (``morph_type``, equal fractions): smooth_round, smooth_inbetween, smooth_cigar,
edge_on, spiral, barred_spiral, merger, irregular; parameter columns in the truth table.
About 4% of survey images carry a defect (satellite trail, saturated star, missing band
region, bad column / hot pixels), flagged per survey in the truth table.

READS   nothing: everything follows from ``seed`` (galaxy i uses SeedSequence(seed, spawn_key=(i,)),
        so the output is bit-identical for any number of worker processes).
WRITES  into ``out_dir`` (default ``data/mock``), names from ``runfiles.MOCK_*``:
        decals/<iauname>.fits, bass_mzls/<iauname>.fits  cutouts (3, S, S) float32, g, r, z
        gz_decals.parquet, gz_bass_mzls.parquet          Galaxy Zoo DECaLS style vote catalogs
        truth.parquet                                    ground truth, one row per galaxy
        mock_meta.json                                   settings + summary (``mock_is_current``)
        examples_by_class.png                            examples per class, both surveys
RUN     through ``make_datatxt.py``, or from Python:
        ``build_mock_survey("data/mock", n_galaxies=1500, image_size=64)``
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd

from . import runfiles
from .catalog import GZ_QUESTIONS, count_column, fraction_column, iau_name, total_votes_column
from .imageio import BANDS, PIXEL_SCALE_ARCSEC, asinh_stretch, read_raw, write_fits_cutout

MOCK_VERSION = 1                       # bump when the rendering changes, so old mocks are rebuilt
MORPH_TYPES = ("smooth_round", "smooth_inbetween", "smooth_cigar", "edge_on",
               "spiral", "barred_spiral", "merger", "irregular")
DEFECT_KINDS = ("satellite_trail", "saturated_star", "missing_band", "bad_pixels")
DEFAULT_DEFECT_FRACTION = 0.04         # per survey image
ZERO_POINT_MAG = 22.5                  # nanomaggies: m = 22.5 - 2.5 log10(flux)
PSF_MOFFAT_BETA = 3.5                  # ground-based seeing wings (Legacy Survey PSF models)
REFERENCE_IMAGE_SIZE = 64              # galaxy magnitudes r 15-18 refer to this stamp size

# Sky patch and footprints. BASS (g, r) + MzLS (z) cover the north galactic cap at Dec > 32 deg.
RA_RANGE_DEG = (150.0, 200.0)
DEC_RANGE_DEG = (20.0, 45.0)
BASS_MIN_DEC_DEG = 32.0
BASS_OFFSET_ARCSEC = (0.1, 0.3)        # astrometric difference between the survey catalogs
MIN_SEPARATION_ARCSEC = 10.0           # IAU names (0.15"/0.1" precision) stay unique

# Sersic profiles are cut at one of these multiples of the half-light radius: the smallest that
# puts the (visible) cut beyond the stamp corner for the main galaxy, 4.5 for small components.
# Keeps GalSim FFTs small; GalSim builds one lookup table per (n, cut), so n and the cut are quantised.
SERSIC_TRUNCATION_HLR = (4.5, 6.0, 8.0, 11.0)
STAMP_CORNER = 0.72                    # stamp half-diagonal (0.707) in stamp widths, plus a little
BACKGROUND_GRID_MIN = 6                # from this many background galaxies on, draw them as one grid per band
BACKGROUND_PATCH_PX = 24               # half-size of a background galaxy's patch: > 6 x the largest r_half (0.9")
ELLIPTICAL_SERSIC_N = (2.5, 3.0, 4.0, 5.0)
BULGE_SERSIC_N = (1.5, 2.0, 2.5, 3.0, 4.0)
PITCH_ANGLE_DEG = {"tight": (11.0, 15.0), "medium": (18.0, 24.0), "loose": (28.0, 40.0)}
BULGE_FRACTION = {"none": (0.0, 0.0), "small": (0.05, 0.12), "moderate": (0.15, 0.3), "large": (0.35, 0.6)}
BAR_FRACTION = {"none": (0.0, 0.0), "weak": (0.08, 0.14), "strong": (0.22, 0.32)}
# (g - r, r - z) colours in AB mag, mean and spread: red old populations, blue star formation.
COLOUR_RED = ((0.78, 0.05), (0.45, 0.04))
COLOUR_DISK = ((0.55, 0.07), (0.35, 0.05))
COLOUR_BLUE = ((0.30, 0.08), (0.20, 0.06))


@dataclass(frozen=True)
class SurveySpec:
    key: str                                        # 'decals' / 'bass' in truth column names
    name: str                                       # FITS SURVEY card
    image_dir: str
    catalog: str
    psf_fwhm_arcsec: tuple[float, float]            # range over galaxies and bands
    noise_sigma_nmgy: tuple[float, float, float]    # g, r, z sky noise per pixel (typical)
    flux_scale: tuple[float, float, float]          # g, r, z response relative to DECaLS


DECALS = SurveySpec("decals", "DECaLS", runfiles.MOCK_DECALS_IMAGES, runfiles.MOCK_DECALS_CATALOG,
                    (1.1, 1.5), (0.0035, 0.005, 0.009), (1.0, 1.0, 1.0))
# 0.5 mag shallower: noise sigma x 10**(0.5 / 2.5); different filters give a slightly different colour response.
BASS = SurveySpec("bass", "BASS+MzLS", runfiles.MOCK_BASS_IMAGES, runfiles.MOCK_BASS_CATALOG,
                  (1.5, 2.1), tuple(round(s * 10 ** 0.2, 5) for s in (0.0035, 0.005, 0.009)), (1.05, 0.97, 0.93))
SURVEYS = (DECALS, BASS)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------

def build_mock_survey(out_dir, n_galaxies: int, image_size: int = 64, seed: int = 0, workers: int | None = None,
                      progress: bool = True, defect_fraction: float = DEFAULT_DEFECT_FRACTION) -> dict:
    """Render the mock survey into ``out_dir``; return (and save as MOCK_META) a summary dict.

    Old cutouts in the image folders are removed first, and MOCK_META is written last, so an
    interrupted build is never mistaken for a current one.
    """
    from tqdm import tqdm

    if n_galaxies < 1 or image_size < 16:
        raise ValueError(f"need n_galaxies >= 1 and image_size >= 16, got {n_galaxies}, {image_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / runfiles.MOCK_META).unlink(missing_ok=True)
    for survey in SURVEYS:
        folder = out_dir / survey.image_dir
        folder.mkdir(exist_ok=True)
        for old in list(folder.glob("*.fits")) + list(folder.glob("*.fits.tmp")):
            old.unlink()

    start = time.perf_counter()
    ra, dec = sky_positions(n_galaxies, seed)
    tasks = [(i, float(ra[i]), float(dec[i]), image_size, seed, defect_fraction, str(out_dir)) for i in range(n_galaxies)]
    workers = max(1, min(workers or os.cpu_count() or 1, n_galaxies))
    bar = tqdm(total=n_galaxies, desc="mock survey", unit="gal", disable=not progress)
    results = []
    if workers == 1:
        for task in tasks:
            results.append(render_galaxy(task))
            bar.update()
    else:
        with Pool(workers) as pool:
            for result in pool.imap(render_galaxy, tasks, chunksize=max(1, min(16, n_galaxies // (8 * workers)))):
                results.append(result)
                bar.update()
    bar.close()
    seconds_render = time.perf_counter() - start

    truth = pd.DataFrame([r[0] for r in results])
    decals = pd.DataFrame([r[1] for r in results])
    bass = pd.DataFrame([r[2] for r in results if r[2] is not None], columns=decals.columns)
    for name, table in (("DECaLS", decals), ("BASS+MzLS", bass)):
        if table["iauname"].duplicated().any():
            raise RuntimeError(f"mock {name} catalog has duplicate iauname values; raise MIN_SEPARATION_ARCSEC")
    truth.to_parquet(out_dir / runfiles.MOCK_TRUTH, index=False)
    decals.to_parquet(out_dir / DECALS.catalog, index=False)
    bass.to_parquet(out_dir / BASS.catalog, index=False)
    save_examples_png(out_dir, truth, out_dir / runfiles.MOCK_EXAMPLES_PNG)

    seconds = time.perf_counter() - start
    summary = {
        "n_galaxies": int(n_galaxies), "image_size": int(image_size), "seed": int(seed), "version": MOCK_VERSION,
        "defect_fraction": float(defect_fraction), "n_bass": int(len(bass)),
        "n_defect_decals": int((truth["defect_decals"] != "").sum()),
        "n_defect_bass": int((truth["defect_bass"] != "").sum()),
        "morph_type_counts": {k: int(v) for k, v in truth["morph_type"].value_counts().sort_index().items()},
        "workers": int(workers), "seconds": round(seconds, 2), "seconds_render": round(seconds_render, 2),
        "galaxies_per_s": round(n_galaxies / seconds, 2),
        "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC, "bands": list(BANDS),
        "surveys": {s.name: {"psf_fwhm_arcsec": list(s.psf_fwhm_arcsec), "noise_sigma_nmgy": list(s.noise_sigma_nmgy),
                             "flux_scale": list(s.flux_scale)} for s in SURVEYS},
    }
    (out_dir / runfiles.MOCK_META).write_text(json.dumps(summary, indent=2) + "\n")
    if progress:
        print(f"mock survey: {n_galaxies} galaxies ({len(bass)} also in BASS+MzLS) at {image_size} px, "
              f"{workers} workers: {seconds:.1f} s = {summary['galaxies_per_s']:.1f} galaxies/s -> {out_dir}")
    return summary


def mock_is_current(out_dir, n_galaxies, image_size, seed, defect_fraction: float = DEFAULT_DEFECT_FRACTION) -> bool:
    """True if ``out_dir`` holds a complete mock built with these settings and this MOCK_VERSION."""
    out_dir = Path(out_dir)
    meta_path = out_dir / runfiles.MOCK_META
    if not meta_path.exists():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    wanted = {"n_galaxies": int(n_galaxies), "image_size": int(image_size), "seed": int(seed), "version": MOCK_VERSION}
    if any(meta.get(key) != value for key, value in wanted.items()):
        return False
    if not math.isclose(float(meta.get("defect_fraction", -1.0)), float(defect_fraction)):
        return False
    needed = [runfiles.MOCK_TRUTH, DECALS.catalog, BASS.catalog]
    return all((out_dir / name).exists() for name in needed)


# ---------------------------------------------------------------------------------------------
# sky positions, per-galaxy random streams
# ---------------------------------------------------------------------------------------------

def sky_positions(n_galaxies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (deg) uniform on the sky patch, every pair at least MIN_SEPARATION_ARCSEC apart."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    sin_lo, sin_hi = np.sin(np.radians(DEC_RANGE_DEG))
    ra = rng.uniform(*RA_RANGE_DEG, n_galaxies)
    dec = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, n_galaxies)))
    chord = 2 * np.sin(np.radians(MIN_SEPARATION_ARCSEC / 3600) / 2)
    for _ in range(100):
        xyz = np.stack([np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                        np.cos(np.radians(dec)) * np.sin(np.radians(ra)), np.sin(np.radians(dec))], axis=1)
        pairs = cKDTree(xyz).query_pairs(chord, output_type="ndarray")
        if len(pairs) == 0:
            return ra, dec
        redo = np.unique(pairs.max(axis=1))
        ra[redo] = rng.uniform(*RA_RANGE_DEG, len(redo))
        dec[redo] = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, len(redo))))
    raise RuntimeError(f"cannot place {n_galaxies} galaxies {MIN_SEPARATION_ARCSEC} arcsec apart in the sky patch")


def galaxy_streams(seed: int, galaxy_id: int) -> dict:
    """Independent random streams of one galaxy, derived from (seed, galaxy_id) only."""
    names = ("params", "scene", "knots", "decals_image", "bass_image", "decals_votes", "bass_votes")
    children = np.random.SeedSequence(seed, spawn_key=(galaxy_id,)).spawn(len(names))
    return dict(zip(names, children))


def _galsim_deviate(seed_sequence):
    import galsim

    # galsim treats seed 0 as "seed from the clock": keep it in 1..2**31-1.
    return galsim.BaseDeviate(int(seed_sequence.generate_state(1)[0]) % (2 ** 31 - 2) + 1)


# ---------------------------------------------------------------------------------------------
# one galaxy: parameters, scene, two survey images, two catalog rows
# ---------------------------------------------------------------------------------------------

def render_galaxy(task) -> tuple[dict, dict, dict | None]:
    """Worker: draw one galaxy, write its cutouts; return (truth row, DECaLS row, BASS row or None)."""
    galaxy_id, ra, dec, image_size, seed, defect_fraction, out_dir = task
    streams = galaxy_streams(seed, galaxy_id)
    rng = np.random.default_rng(streams["params"])
    params = draw_galaxy_params(rng, image_size)

    # BASS catalog position: truth + a small astrometric offset (east, north) in arcsec.
    offset = rng.uniform(*BASS_OFFSET_ARCSEC)
    direction = rng.uniform(0, 2 * np.pi)
    east, north = offset * np.cos(direction), offset * np.sin(direction)
    bass_ra = (ra + east / 3600 / np.cos(np.radians(dec))) % 360
    bass_dec = dec + north / 3600
    in_bass = dec > BASS_MIN_DEC_DEG and bass_dec > BASS_MIN_DEC_DEG

    psf = {s.key: _draw_psf_fwhm(rng, s) for s in SURVEYS}
    noise = {s.key: np.array(s.noise_sigma_nmgy) * rng.uniform(0.85, 1.2, 3) for s in SURVEYS}
    defect = {s.key: (str(rng.choice(DEFECT_KINDS)) if rng.uniform() < defect_fraction else "") for s in SURVEYS}

    scene_bands, scene_info = build_scene(params, rng=np.random.default_rng(streams["scene"]),
                                          deviate=_galsim_deviate(streams["knots"]), image_size=image_size)
    params.update(scene_info)

    names = {"decals": iau_name(ra, dec), "bass": iau_name(bass_ra, bass_dec) if in_bass else ""}
    # Cutouts are centred on each survey's own catalog position; x grows to the west (east left),
    # y to the north, so the galaxy sits at (+east, -north) arcsec in the BASS stamp.
    placements = {"decals": (ra, dec, (0.0, 0.0)), "bass": (bass_ra, bass_dec, (east, -north))}
    rows = {}
    for survey in SURVEYS:
        key = survey.key
        if key == "bass" and not in_bass:
            defect[key] = ""
            rows[key] = None
            continue
        s_ra, s_dec, shift = placements[key]
        image_rng = np.random.default_rng(streams[f"{key}_image"])
        flux = draw_survey_image(scene_bands, survey, shift, psf[key], noise[key], image_size, image_rng)
        if defect[key]:
            defect[key] = add_defect(flux, defect[key], image_rng, psf[key])
        cards = {"SURVEY": (survey.name, "mock survey (GalSim)"), "RA": (float(s_ra), "deg, J2000"),
                 "DEC": (float(s_dec), "deg, J2000"), "IAUNAME": names[key]}
        for band, fwhm in zip(BANDS, psf[key]):
            cards[f"PSFFW{band.upper()}"] = (round(float(fwhm), 4), f"PSF FWHM {band}, arcsec")
        cards["MOCK"] = (True, "rendered by VAE_model/mock_survey.py")
        write_fits_cutout(Path(out_dir) / survey.image_dir / f"{names[key]}.fits", flux, cards)
        vote_rng = np.random.default_rng(streams[f"{key}_votes"])
        votes = draw_votes(vote_rng, vote_probabilities(params, psf[key], defect[key], image_size, vote_rng))
        rows[key] = {"iauname": names[key], "ra": float(s_ra), "dec": float(s_dec), **votes}

    truth = {"galaxy_id": int(galaxy_id), "decals_iauname": names["decals"], "bass_iauname": names["bass"],
             "ra": float(ra), "dec": float(dec), "in_bass_footprint": bool(in_bass),
             "bass_ra": float(bass_ra) if in_bass else np.nan, "bass_dec": float(bass_dec) if in_bass else np.nan,
             "bass_offset_arcsec": float(offset) if in_bass else np.nan}
    truth.update(params)
    for survey in SURVEYS:
        have = survey.key == "decals" or in_bass
        for b, band in enumerate(BANDS):
            truth[f"psf_fwhm_{survey.key}_{band}"] = float(psf[survey.key][b]) if have else np.nan
        for b, band in enumerate(BANDS):
            truth[f"noise_sigma_{survey.key}_{band}"] = float(noise[survey.key][b]) if have else np.nan
    truth["defect_decals"], truth["defect_bass"] = defect["decals"], defect["bass"]
    return truth, rows["decals"], rows["bass"]


def _draw_psf_fwhm(rng, survey: SurveySpec) -> np.ndarray:
    """Per-band FWHM (arcsec): seeing of the night, worse in g than z (FWHM ~ wavelength**-0.2)."""
    lo, hi = survey.psf_fwhm_arcsec
    seeing_r = rng.uniform(lo, hi)
    return np.clip(seeing_r * np.array([1.06, 1.0, 0.94]) * rng.uniform(0.97, 1.03, 3), lo, hi)


def _colour(rng, kind) -> tuple[float, float]:
    (gr_mean, gr_sd), (rz_mean, rz_sd) = kind
    return float(rng.normal(gr_mean, gr_sd)), float(rng.normal(rz_mean, rz_sd))


def band_factors(g_r: float, r_z: float) -> np.ndarray:
    """Flux in g, r, z relative to r for AB colours g-r and r-z."""
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_z)])


def draw_galaxy_params(rng, image_size: int) -> dict:
    """Morphology and its parameters (flat truth columns) for one galaxy.

    Sizes scale with the stamp (half-light radius ~0.07-0.22 of the stamp width), and
    magnitudes with it too (r 15-18 at 64 px, brighter by 5 log10(S/64) for larger stamps), so
    surface brightness, hence the look of the stretched cutout, does not depend on image_size.
    """
    width = image_size * PIXEL_SCALE_ARCSEC
    morph = str(rng.choice(MORPH_TYPES))
    p = {"morph_type": morph,
         "mag_r": float(rng.uniform(15.0, 18.0) - 5 * np.log10(image_size / REFERENCE_IMAGE_SIZE)),
         "position_angle_deg": float(rng.uniform(0, 180)),
         "r_half_arcsec": np.nan, "sersic_n": np.nan, "axis_ratio": np.nan, "inclination_deg": np.nan,
         "bulge_size": "", "bulge_fraction": 0.0, "bar": "none", "bar_fraction": 0.0,
         "n_arms": 0, "winding": "", "pitch_angle_deg": np.nan, "arm_strength": 0.0,
         "has_dust_lane": False, "scale_height_ratio": np.nan, "dust_depth": 0.0,
         "merger_stage": "none", "merger_primary": "", "secondary_flux_ratio": np.nan,
         "secondary_separation_arcsec": np.nan, "n_knots": 0}
    if morph.startswith("smooth"):
        q_range = {"smooth_round": (0.8, 1.0), "smooth_inbetween": (0.5, 0.75), "smooth_cigar": (0.22, 0.4)}[morph]
        p.update(r_half_arcsec=float(rng.uniform(0.07, 0.14) * width), sersic_n=float(rng.choice(ELLIPTICAL_SERSIC_N)),
                 axis_ratio=float(rng.uniform(*q_range)))
    elif morph == "edge_on":
        bulge = str(rng.choice(["none", "small", "moderate"], p=[0.4, 0.35, 0.25]))
        dusty = bool(rng.uniform() < 0.6)
        p.update(r_half_arcsec=float(rng.uniform(0.13, 0.2) * width), inclination_deg=float(rng.uniform(84, 90)),
                 bulge_size=bulge, bulge_fraction=float(rng.uniform(*BULGE_FRACTION[bulge])),
                 sersic_n=float(rng.choice(BULGE_SERSIC_N)), has_dust_lane=dusty,
                 # dusty disks are the thicker ones: the lane must be wider than the seeing to show
                 scale_height_ratio=float(rng.uniform(0.12, 0.2) if dusty else rng.uniform(0.07, 0.14)),
                 dust_depth=float(rng.uniform(0.7, 0.95)) if dusty else 0.0)
        p["axis_ratio"] = float(np.hypot(np.cos(np.radians(p["inclination_deg"])), p["scale_height_ratio"] * 1.5))
    elif morph in ("spiral", "barred_spiral"):
        bulge = str(rng.choice(["none", "small", "moderate", "large"], p=[0.2, 0.3, 0.3, 0.2]))
        winding = str(rng.choice(list(PITCH_ANGLE_DEG)))
        bar = str(rng.choice(["weak", "strong"], p=[0.45, 0.55])) if morph == "barred_spiral" else "none"
        inclination = float(np.degrees(np.arccos(rng.uniform(np.cos(np.radians(65)), 1.0))))
        p.update(r_half_arcsec=float(rng.uniform(0.15, 0.23) * width), inclination_deg=inclination,
                 axis_ratio=float(np.cos(np.radians(inclination))),
                 bulge_size=bulge, bulge_fraction=float(rng.uniform(*BULGE_FRACTION[bulge])),
                 sersic_n=float(rng.choice(BULGE_SERSIC_N)), bar=bar, bar_fraction=float(rng.uniform(*BAR_FRACTION[bar])),
                 n_arms=int(rng.choice([2, 3, 4], p=[0.6, 0.25, 0.15])), winding=winding,
                 pitch_angle_deg=float(rng.uniform(*PITCH_ANGLE_DEG[winding])), arm_strength=float(rng.uniform(0.7, 0.95)))
    elif morph == "merger":
        stage = str(rng.choice(["merger", "major_disturbance"], p=[0.7, 0.3]))
        p.update(merger_stage=stage, merger_primary=str(rng.choice(["disk", "elliptical"], p=[0.6, 0.4])),
                 r_half_arcsec=float(rng.uniform(0.08, 0.13) * width),
                 sersic_n=float(rng.choice(BULGE_SERSIC_N + ELLIPTICAL_SERSIC_N[:3])),
                 axis_ratio=float(rng.uniform(0.45, 0.95)))
        if stage == "merger":
            p.update(secondary_flux_ratio=float(rng.uniform(0.35, 1.0)),
                     secondary_separation_arcsec=float(rng.uniform(1.3, 2.6) * p["r_half_arcsec"]))
    else:  # irregular
        p.update(r_half_arcsec=float(rng.uniform(0.1, 0.17) * width), n_knots=int(rng.integers(12, 41)),
                 axis_ratio=float(rng.uniform(0.4, 0.9)))
    return p


def _sersic(n: float, half_light_radius: float, min_truncation_arcsec: float = 0.0):
    """Unit-flux Sersic profile, truncated at a quantised multiple of r_half >= min_truncation_arcsec."""
    import galsim

    if n == 0.5:
        return galsim.Gaussian(half_light_radius=half_light_radius)
    if n == 1.0:
        return galsim.Exponential(half_light_radius=half_light_radius)
    multiple = next((k for k in SERSIC_TRUNCATION_HLR if k * half_light_radius >= min_truncation_arcsec),
                    SERSIC_TRUNCATION_HLR[-1])
    return galsim.Sersic(n, half_light_radius=half_light_radius, trunc=multiple * half_light_radius)


def _to_sky(obj, inclination_deg: float, position_angle_deg: float):
    """Disk-plane profile -> sky: compress by cos(i) along y, rotate by the position angle; flux kept."""
    import galsim

    flux = obj.flux
    cos_i = max(np.cos(np.radians(inclination_deg)), 0.05)
    return obj.transform(1.0, 0.0, 0.0, cos_i).rotate(position_angle_deg * galsim.degrees).withFlux(flux)


def _grid(size_px: int, supersample: int):
    """Sky coordinates (arcsec, x west, y north) of a square grid centred like a GalSim image."""
    n = size_px * supersample
    step = PIXEL_SCALE_ARCSEC / supersample
    axis = (np.arange(n) - (n - 1) / 2) * step
    return np.meshgrid(axis, axis)  # x, y with y along rows, as galsim Image.array


def _interpolated(grid: np.ndarray, supersample: int):
    """Block-average a supersampled grid to the pixel scale and wrap it as a unit-flux GalSim profile."""
    import galsim

    n = grid.shape[0] // supersample
    pixels = grid.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return galsim.InterpolatedImage(galsim.Image(np.ascontiguousarray(pixels, dtype=np.float64), scale=PIXEL_SCALE_ARCSEC),
                                    flux=1.0, x_interpolant="quintic")


def spiral_arm_grid(p: dict, scale_radius: float, inner_radius: float, bar_angle_rad: float, chirality: int,
                    sharpness: int, size_px: int, supersample: int = 2) -> tuple[np.ndarray, float]:
    """Arm light of a disk: an exponential disk times a logarithmic-spiral modulation (sky grid).

    I(r, theta) = exp(-r/h) * A(r) * s(phase) / <s>, phase = m (theta - theta0 - ln(r/r0) / tan(pitch)),
    s = ((1 + cos phase) / 2)**k, A(r) = 1 - exp(-(r/r_in)**2) keeps the arms out of the bulge/bar.
    Returns the grid and its flux relative to the unit-central-brightness exponential disk.
    """
    x, y = _grid(size_px, supersample)
    pa = np.radians(p["position_angle_deg"])
    cos_i = max(np.cos(np.radians(p["inclination_deg"])), 0.05)
    u = x * np.cos(pa) + y * np.sin(pa)
    v = (-x * np.sin(pa) + y * np.cos(pa)) / cos_i
    r = np.hypot(u, v) + 1e-6
    theta = np.arctan2(v, u)
    winding = np.log(r / inner_radius) / np.tan(np.radians(p["pitch_angle_deg"]))
    phase = p["n_arms"] * (theta - bar_angle_rad - chirality * winding)
    mean_s = math.comb(2 * sharpness, sharpness) / 4 ** sharpness   # <((1+cos)/2)^k> over a period
    modulation = ((1 + np.cos(phase)) / 2) ** sharpness / mean_s
    grid = np.exp(-r / scale_radius) * (1 - np.exp(-(r / inner_radius) ** 2)) * modulation
    pixel_area = (PIXEL_SCALE_ARCSEC / supersample) ** 2
    # The sky-projected exponential disk of unit central brightness holds 2 pi h^2 cos(i).
    relative_flux = grid.sum() * pixel_area / (2 * np.pi * scale_radius ** 2 * cos_i)
    return grid, float(relative_flux)


def tidal_tail_grid(tails: list[tuple], size_px: int) -> np.ndarray:
    """Curved tidal tails as Gaussian beads along arcs (sky grid at the pixel scale).

    Each tail: (x0, y0, r_start, r_end, phi0, dphi, width0, width1), lengths in arcsec, angles in
    radians; the surface brightness fades as exp(-1.5 t) along the tail.
    """
    x, y = _grid(size_px, 1)
    grid = np.zeros_like(x)
    for x0, y0, r0, r1, phi0, dphi, w0, w1 in tails:
        for t in np.linspace(0, 1, 48):
            radius, phi, width = r0 + (r1 - r0) * t, phi0 + dphi * t, w0 + (w1 - w0) * t
            cx, cy = x0 + radius * np.cos(phi), y0 + radius * np.sin(phi)
            grid += np.exp(-1.5 * t) * np.exp(-0.5 * ((x - cx) ** 2 + (y - cy) ** 2) / width ** 2)
    return grid


def build_scene(p: dict, rng, deviate, image_size: int):
    """The sky around one galaxy before the PSF: one GalSim profile per band (nanomaggies, arcsec).

    Components are (unit-flux profile, flux in g, r, z); the galaxy sits at (0, 0). Companions,
    background galaxies and stars share the stamp as in real cutouts. Also updates ``p`` with the
    integrated colours and returns a dict of scene counts for the truth table.
    """
    import galsim

    width = image_size * PIXEL_SCALE_ARCSEC
    grid_px = image_size + 8                   # margin for the BASS astrometric shift
    flux_total = 10 ** ((ZERO_POINT_MAG - p["mag_r"]) / 2.5)
    pa = p["position_angle_deg"]
    morph = p["morph_type"]
    galaxy: list[tuple] = []                   # (unit-flux profile, flux in g, r, z)

    def add(profile, fraction, colour):
        galaxy.append((profile, fraction * flux_total * band_factors(*colour)))

    if morph.startswith("smooth"):
        profile = _sersic(p["sersic_n"], p["r_half_arcsec"], STAMP_CORNER * width)
        profile = profile.shear(q=p["axis_ratio"], beta=pa * galsim.degrees)
        add(profile, 1.0, _colour(rng, COLOUR_RED))

    elif morph == "edge_on":
        r_half = p["r_half_arcsec"]
        h = r_half / 1.678                     # exponential scale length from the half-light radius
        incl = p["inclination_deg"] * galsim.degrees
        hz = p["scale_height_ratio"]
        disk = galsim.InclinedExponential(incl, scale_radius=h, scale_h_over_r=hz).rotate(pa * galsim.degrees)
        disk_colour = _colour(rng, COLOUR_DISK)
        disk_fraction = 1.0 - p["bulge_fraction"]
        parts = [(disk, disk_fraction * flux_total * band_factors(*disk_colour))]
        if p["bulge_fraction"] > 0:
            bulge = _sersic(p["sersic_n"], r_half * rng.uniform(0.15, 0.25))
            bulge = bulge.shear(q=rng.uniform(0.7, 0.95), beta=pa * galsim.degrees)
            parts.append((bulge, p["bulge_fraction"] * flux_total * band_factors(*_colour(rng, COLOUR_RED))))
        if not p["has_dust_lane"]:
            galaxy.extend(parts)
        else:
            # Dust lane: the mid-plane dust absorbs a fraction `depth` of the light behind it
            # (disk and bulge), more in g and less in z (reddening). The light is drawn on a
            # supersampled grid, multiplied by 1 - depth * lane(v) and handed back as one
            # interpolated profile per band. The lane sits a little off the mid-plane, on the near side.
            supersample = 2
            n_grid = grid_px * supersample
            drawn = [profile.drawImage(nx=n_grid, ny=n_grid, scale=PIXEL_SCALE_ARCSEC / supersample, method="no_pixel").array
                     for profile, _ in parts]
            x, y = _grid(grid_px, supersample)
            v = -x * np.sin(np.radians(pa)) + y * np.cos(np.radians(pa))      # along the minor axis
            lane_sigma = 0.7 * hz * h
            lane = np.exp(-0.5 * ((v - 0.5 * lane_sigma * rng.choice([-1, 1])) / lane_sigma) ** 2)
            depth = np.minimum(p["dust_depth"] * np.array([1.2, 1.0, 0.65]), 0.95)
            for b in range(len(BANDS)):
                light = sum(image * band_flux[b] for image, (_, band_flux) in zip(drawn, parts)) * (1 - depth[b] * lane)
                band_flux = np.zeros(len(BANDS))
                band_flux[b] = light.sum()
                galaxy.append((_interpolated(light, supersample), band_flux))

    elif morph in ("spiral", "barred_spiral"):
        r_half = p["r_half_arcsec"]
        h = r_half / 1.678
        bar_angle = rng.uniform(0, np.pi)
        bulge_r_half = r_half * {"none": 0.15, "small": 0.13, "moderate": 0.2, "large": 0.28}[p["bulge_size"]]
        bar_length = r_half * rng.uniform(0.8, 1.2) if p["bar"] != "none" else 0.0
        inner = max(bar_length, 1.6 * bulge_r_half, 0.5 * h)
        chirality, sharpness = int(rng.choice([-1, 1])), int(rng.choice([3, 4]))
        arms, arm_rel_flux = spiral_arm_grid(p, h, inner, bar_angle, chirality, sharpness, grid_px)
        w = p["arm_strength"]
        # Disk light = (1 - w) smooth exponential + w * arms; the arms carry the young blue stars.
        disk_flux = 1.0 - p["bulge_fraction"] - p["bar_fraction"]
        smooth_share = (1 - w) / ((1 - w) + w * arm_rel_flux)
        smooth = _to_sky(galsim.Exponential(scale_radius=h), p["inclination_deg"], pa)
        add(smooth, disk_flux * smooth_share, _colour(rng, COLOUR_DISK))
        add(_interpolated(arms, 2), disk_flux * (1 - smooth_share), _colour(rng, COLOUR_BLUE))
        if p["bulge_fraction"] > 0:
            bulge = _sersic(p["sersic_n"], bulge_r_half)
            bulge = bulge.shear(q=rng.uniform(0.8, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians)
            add(_to_sky(bulge, p["inclination_deg"] * 0.5, pa), p["bulge_fraction"], _colour(rng, COLOUR_RED))
        if p["bar"] != "none":
            # A bar is a flat elongated Sersic n = 0.5 (Gaussian) component in the disk plane.
            q_bar = rng.uniform(0.15, 0.25)
            bar = galsim.Gaussian(half_light_radius=bar_length * 0.6 * np.sqrt(q_bar))
            bar = bar.shear(q=q_bar, beta=bar_angle * galsim.radians)
            add(_to_sky(bar, p["inclination_deg"], pa), p["bar_fraction"], (0.7, 0.42))

    elif morph == "merger":
        r_half = p["r_half_arcsec"]
        tails = []
        primary_disk = p["merger_primary"] == "disk"
        tail_fraction = rng.uniform(0.18, 0.32)
        body = 1.0 - tail_fraction

        def nucleus(x0, y0, r_h, fraction, disky):
            q = rng.uniform(0.5, 0.95)
            beta = rng.uniform(0, np.pi) * galsim.radians
            # Each body keeps a compact core, so the two nuclei stay distinct in the cutout.
            if disky:
                disk = galsim.Exponential(half_light_radius=r_h).shear(q=q, beta=beta).shift(x0, y0)
                add(disk, 0.55 * fraction, _colour(rng, COLOUR_DISK))
                add(_sersic(2.5, 0.2 * r_h).shift(x0, y0), 0.45 * fraction, _colour(rng, COLOUR_RED))
            else:
                add(_sersic(p["sersic_n"], 0.6 * r_h, STAMP_CORNER * width).shear(q=q, beta=beta).shift(x0, y0), fraction,
                    _colour(rng, COLOUR_RED))
            # Tidal distortion: an offset, sheared, fainter copy makes the body lopsided.
            angle = rng.uniform(0, 2 * np.pi)
            g1, g2 = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4)
            lopsided = galsim.Exponential(half_light_radius=1.3 * r_h).shear(g1=g1, g2=g2)
            lopsided = lopsided.shift(x0 + 0.5 * r_h * np.cos(angle), y0 + 0.5 * r_h * np.sin(angle))
            add(lopsided, 0.2 * fraction, _colour(rng, COLOUR_DISK))

        sense = rng.choice([-1, 1])
        if p["merger_stage"] == "merger":
            ratio, sep = p["secondary_flux_ratio"], p["secondary_separation_arcsec"]
            angle = rng.uniform(0, 2 * np.pi)
            x2, y2 = sep * np.cos(angle), sep * np.sin(angle)
            share1 = body / (1 + ratio) / 1.2
            nucleus(0.0, 0.0, r_half, share1, primary_disk)
            nucleus(x2, y2, r_half * np.sqrt(ratio) * rng.uniform(0.8, 1.1), share1 * ratio, rng.uniform() < 0.5)
            # Two tails, flung out from each nucleus on opposite sides (Toomre & Toomre 1972).
            for x0, y0, phi0 in ((0.0, 0.0, angle + np.pi), (x2, y2, angle)):
                tails.append((x0, y0, 0.5 * r_half, rng.uniform(2.8, 4.5) * r_half, phi0 + rng.uniform(-0.4, 0.4),
                              sense * rng.uniform(1.0, 2.0), 0.2 * r_half, 0.5 * r_half))
        else:
            nucleus(0.0, 0.0, r_half, body / 1.2, primary_disk)
            phi0 = rng.uniform(0, 2 * np.pi)
            for k in range(int(rng.integers(1, 3))):
                tails.append((0.0, 0.0, 0.6 * r_half, rng.uniform(2.6, 4.2) * r_half, phi0 + k * np.pi,
                              sense * rng.uniform(1.0, 1.8), 0.2 * r_half, 0.5 * r_half))
        add(_interpolated(tidal_tail_grid(tails, grid_px), 1), tail_fraction, _colour(rng, COLOUR_BLUE))

    else:  # irregular: clumps of star formation (RandomKnots) on a lopsided diffuse body
        r_half = p["r_half_arcsec"]
        knot_fraction = rng.uniform(0.45, 0.7)
        # A few giant star-forming clumps plus many small ones, each set lopsided in its own way.
        n_bright = max(3, p["n_knots"] // 4)
        knot_size = rng.uniform(0.15, 0.3) * width / (REFERENCE_IMAGE_SIZE * PIXEL_SCALE_ARCSEC)
        for n_set, share, size in ((n_bright, 0.5, 1.5 * knot_size), (p["n_knots"] - n_bright, 0.5, knot_size)):
            knots = galsim.RandomKnots(n_set, half_light_radius=r_half * rng.uniform(0.7, 1.1), flux=1.0, rng=deviate)
            knots = galsim.Convolve(knots, galsim.Gaussian(sigma=size)).shear(q=p["axis_ratio"], beta=pa * galsim.degrees)
            add(knots.shift(*(rng.uniform(-0.3, 0.3, 2) * r_half)), share * knot_fraction, _colour(rng, COLOUR_BLUE))
        diffuse = galsim.Exponential(half_light_radius=1.2 * r_half).shear(q=p["axis_ratio"], beta=pa * galsim.degrees)
        diffuse = diffuse.shift(*(rng.uniform(-0.25, 0.25, 2) * r_half))
        add(diffuse, 1 - knot_fraction, _colour(rng, COLOUR_DISK))

    # Integrated colour of the galaxy itself.
    fluxes = sum(band_flux for _, band_flux in galaxy)
    p["g_r"] = float(-2.5 * np.log10(fluxes[0] / fluxes[1]))
    p["r_z"] = float(2.5 * np.log10(fluxes[2] / fluxes[1]))

    # Neighbours: a companion sometimes, faint background galaxies and stars (density per area).
    area = (image_size / REFERENCE_IMAGE_SIZE) ** 2
    field: list[tuple] = []
    has_companion = bool(rng.uniform() < 0.2)
    if has_companion:
        distance, angle = rng.uniform(0.28, 0.42) * width, rng.uniform(0, 2 * np.pi)
        profile = _sersic(float(rng.choice([1.0, 2.5, 4.0])), rng.uniform(0.2, 0.45) * p["r_half_arcsec"])
        profile = profile.shear(q=rng.uniform(0.4, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians)
        field.append((profile.shift(distance * np.cos(angle), distance * np.sin(angle)),
                      10 ** ((ZERO_POINT_MAG - p["mag_r"] - rng.uniform(1.5, 3.0)) / 2.5)
                      * band_factors(*_colour(rng, COLOUR_DISK))))
    n_background = min(int(rng.poisson(1.2 * area)), 30)    # ~15 000 per deg2 at r 20-23.5
    background = []
    for _ in range(n_background):
        x0, y0 = rng.uniform(-0.5, 0.5, 2) * width
        profile = _sersic(float(rng.choice([1.0, 4.0])), rng.uniform(0.25, 0.9))
        profile = profile.shear(q=rng.uniform(0.3, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians).shift(x0, y0)
        background.append((profile, 10 ** ((ZERO_POINT_MAG - rng.uniform(20.0, 23.5)) / 2.5)
                           * band_factors(rng.uniform(0.4, 1.6), rng.uniform(0.3, 1.0))))
    if len(background) >= BACKGROUND_GRID_MIN:
        field.extend(_background_grid(background, grid_px))
    else:
        field.extend(background)
    n_stars = min(int(rng.poisson(0.2 * area)), 10)
    for _ in range(n_stars):
        x0, y0 = rng.uniform(-0.55, 0.55, 2) * width
        g_r = rng.uniform(0.3, 1.4)
        field.append((galsim.DeltaFunction().shift(x0, y0),
                      10 ** ((ZERO_POINT_MAG - rng.uniform(16.5, 22.0)) / 2.5) * band_factors(g_r, 0.55 * g_r - 0.05)))

    components = galaxy + field
    bands = []
    for b in range(len(BANDS)):
        bands.append(galsim.Sum([profile * float(band_flux[b]) for profile, band_flux in components if band_flux[b] != 0]))
    info = {"has_companion": has_companion, "n_background_galaxies": n_background, "n_stars": n_stars}
    return bands, info


def _background_grid(sources: list[tuple], grid_px: int) -> list[tuple]:
    """Many small background galaxies -> one interpolated profile per band (speed only).

    Each source is drawn without PSF in real space on a small patch of the grid, so the survey
    draws convolve three profiles instead of dozens of components.
    """
    import galsim

    out = []
    for b in range(len(BANDS)):
        image = galsim.Image(grid_px, grid_px, scale=PIXEL_SCALE_ARCSEC)
        for profile, band_flux in sources:
            cx = image.true_center.x + profile.centroid.x / PIXEL_SCALE_ARCSEC
            cy = image.true_center.y + profile.centroid.y / PIXEL_SCALE_ARCSEC
            radius = BACKGROUND_PATCH_PX
            bounds = galsim.BoundsI(int(cx) - radius, int(cx) + radius, int(cy) - radius, int(cy) + radius) & image.bounds
            if bounds.isDefined():
                (profile * float(band_flux[b])).drawImage(image=image[bounds], add_to_image=True, method="no_pixel",
                                                          center=image.true_center)
        flux = np.zeros(len(BANDS))
        flux[b] = image.array.sum()
        if flux[b] > 0:
            out.append((_interpolated(image.array, 1), flux))
    return out


def draw_survey_image(scene_bands, survey: SurveySpec, shift_arcsec, psf_fwhm, noise_sigma, image_size: int,
                      rng) -> np.ndarray:
    """Convolve the scene with the survey PSF per band, draw it at the pixel scale, add sky noise.

    The Gaussian sky noise comes from numpy (galsim's GaussianDeviate is ~50x slower per value).
    """
    import galsim

    flux = np.empty((len(BANDS), image_size, image_size), dtype=np.float32)
    for b in range(len(BANDS)):
        psf = galsim.Moffat(beta=PSF_MOFFAT_BETA, fwhm=float(psf_fwhm[b]))
        scene = scene_bands[b].shift(*shift_arcsec) * survey.flux_scale[b]
        image = galsim.Convolve(scene, psf).drawImage(nx=image_size, ny=image_size, scale=PIXEL_SCALE_ARCSEC)
        flux[b] = image.array + rng.normal(0.0, float(noise_sigma[b]), (image_size, image_size))
    return flux


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


# ---------------------------------------------------------------------------------------------
# Galaxy Zoo DECaLS style votes
# ---------------------------------------------------------------------------------------------

def _peaked(n_answers: int, true_index: int, p_true: float, spill: float = 0.7) -> np.ndarray:
    """Probability vector: p_true on the true answer, `spill` of the rest on its neighbours."""
    p = np.full(n_answers, 0.0)
    neighbours = [i for i in (true_index - 1, true_index + 1) if 0 <= i < n_answers]
    others = [i for i in range(n_answers) if i != true_index and i not in neighbours]
    rest = 1.0 - p_true
    p[true_index] = p_true
    if not others:
        spill = 1.0
    for i in neighbours:
        p[i] = rest * spill / len(neighbours)
    for i in others:
        p[i] = rest * (1 - spill) / len(others)
    return p


def vote_probabilities(p: dict, psf_fwhm, defect: str, image_size: int, rng) -> dict[str, np.ndarray]:
    """The probability that a volunteer picks each answer, per question, for one survey image.

    Volunteers see the image, not the truth, so the probabilities follow what is visible:
      * clarity falls with r_half / PSF FWHM and with magnitude: clear cases put ~0.8-0.9 on the
        true answer, small or faint ones less, and BASS+MzLS (worse seeing) less than DECaLS;
      * the PSF makes small galaxies look rounder (how-rounded uses the apparent axis ratio);
      * faint, tightly wound or inclined arms get 'smooth' and 'no arms' votes;
      * volunteer habits: some smooth ellipticals (more so cigar-shaped ones) are read as
        lenticular disks, clumpy irregulars as mergers or spirals now and then, and damaged
        cutouts get 'artifact' votes only sometimes.
    ``rng`` draws these per-image perceptions, so the two surveys' votes differ even for clear cases.
    """
    morph = p["morph_type"]
    fwhm = float(np.mean(psf_fwhm))
    mag_rel = p["mag_r"] + 5 * np.log10(image_size / REFERENCE_IMAGE_SIZE)      # 15-18 at any stamp size
    clarity = (0.35 + 0.65 * np.clip((p["r_half_arcsec"] / fwhm - 0.8) / 1.6, 0, 1)) \
        * (1 - 0.25 * np.clip((mag_rel - 15) / 3, 0, 1))
    c = float(np.clip(0.55 + 0.37 * clarity + rng.normal(0, 0.04), 0.45, 0.93))
    smooth = morph.startswith("smooth")
    spiral = morph in ("spiral", "barred_spiral")
    read_as_disk = smooth and rng.uniform() < (0.12 if morph == "smooth_cigar" else 0.06)
    looks_merging = morph == "irregular" and rng.uniform() < 0.2
    arm_visibility = 0.0
    if spiral:
        arm_visibility = clarity * p["arm_strength"] * (0.75 if p["winding"] == "tight" else 1.0) \
            * (1 - 0.4 * max(0.0, (p["inclination_deg"] - 45) / 20))
    arms_seen = 0.3 + 0.7 * min(arm_visibility / 0.7, 1.0)
    probs: dict[str, np.ndarray] = {}

    if smooth:
        featured = 0.65 if read_as_disk else 1 - c
    elif morph == "edge_on":
        featured = c
    elif spiral:
        featured = min(arms_seen, 0.93)
    elif morph == "irregular":
        featured = 0.55 + 0.35 * clarity
    else:  # merger: a pair of ellipticals is often called smooth
        featured = 0.5 + 0.35 * clarity if p["merger_primary"] == "disk" else 0.4 + 0.25 * clarity
    sof = np.array([1 - featured, featured]) * 0.99
    artifact = draw_artifact_share(rng, defect) if defect else 0.01
    probs["smooth-or-featured"] = np.append(sof / sof.sum() * (1 - artifact), artifact)

    if morph == "edge_on":
        edge_yes = c
    elif read_as_disk:
        edge_yes = 0.75 if morph == "smooth_cigar" else 0.1
    elif morph == "smooth_cigar":
        edge_yes = 0.45
    elif spiral:
        edge_yes = 0.04 + 0.35 * max(0.0, (p["inclination_deg"] - 45) / 20)
    else:
        edge_yes = 0.06
    probs["disk-edge-on"] = np.array([edge_yes, 1 - edge_yes])

    arms_yes = {"merger": 0.3, "irregular": 0.45 if rng.uniform() < 0.2 else 0.2, "edge_on": 0.3}.get(morph, 0.1)
    if spiral:
        arms_yes = min(arms_seen, 0.95)
    probs["has-spiral-arms"] = np.array([arms_yes, 1 - arms_yes])

    if p["bar"] == "strong":
        probs["bar"] = np.array([c, 0.75 * (1 - c), 0.25 * (1 - c)])
    elif p["bar"] == "weak":                          # weak bars are the least agreed-on answer
        weak = c - 0.2
        probs["bar"] = np.array([0.3 * (1 - weak), weak, 0.7 * (1 - weak)])
    else:
        no = c if spiral else 0.85
        probs["bar"] = np.array([0.2 * (1 - no), 0.8 * (1 - no), no])

    bulge_index = {"none": 4, "small": 3, "moderate": 2, "large": 1}
    if p["bulge_size"] in bulge_index:
        index = 0 if p["bulge_size"] == "large" and p["bulge_fraction"] > 0.5 else bulge_index[p["bulge_size"]]
        probs["bulge-size"] = _peaked(5, index, c - 0.12)
    else:
        probs["bulge-size"] = _peaked(5, 1 if smooth else 2, 0.5)

    # Apparent axis ratio: the PSF adds in quadrature to both axes (s ~ a third of the FWHM).
    q, r_half, s = p["axis_ratio"], p["r_half_arcsec"], fwhm / 3
    q_seen = np.sqrt((q ** 2 * r_half ** 2 + s ** 2) / (r_half ** 2 + s ** 2))
    p_round, p_cigar = 1 / (1 + np.exp(-(q_seen - 0.75) / 0.04)), 1 / (1 + np.exp(-(0.45 - q_seen) / 0.04))
    rounded = np.array([p_round, max(1 - p_round - p_cigar, 0.0), p_cigar])
    probs["how-rounded"] = 0.88 * rounded / rounded.sum() + 0.04

    if p["winding"]:
        probs["spiral-winding"] = _peaked(3, ("tight", "medium", "loose").index(p["winding"]), c - 0.12)
    else:
        probs["spiral-winding"] = np.array([0.3, 0.4, 0.3])

    stage = p["merger_stage"]
    if stage == "merger":
        probs["merging"] = _peaked(4, 3, c - 0.05)
    elif stage == "major_disturbance":
        probs["merging"] = _peaked(4, 2, c - 0.15)
    elif looks_merging:
        probs["merging"] = np.array([0.25, 0.15, 0.15, 0.45])
    elif morph == "irregular":
        probs["merging"] = np.array([0.55, 0.25, 0.15, 0.05])
    elif p["has_companion"]:
        probs["merging"] = np.array([0.6, 0.25, 0.08, 0.07])
    else:
        probs["merging"] = np.array([c + 0.03, 0.85 * (0.97 - c), 0.1 * (0.97 - c), 0.05 * (0.97 - c)])
    return {question: np.clip(v, 1e-3, None) / np.clip(v, 1e-3, None).sum() for question, v in probs.items()}


def draw_artifact_share(rng, defect: str) -> float:
    """Share of 'artifact' votes a damaged cutout gets (0 for a clean one)."""
    if not defect:
        return 0.0
    if defect == "missing_band":
        return float(rng.uniform(0.45, 0.85))
    # Volunteers flag a trail or a bright star only sometimes; a galaxy behind it still gets votes.
    return float(rng.uniform(0.35, 0.8) if rng.uniform() < 0.6 else rng.uniform(0.03, 0.2))


def draw_votes(rng, probs: dict[str, np.ndarray], concentration: float = 25.0) -> dict:
    """Volunteer votes down the decision tree: counts ~ Multinomial(total, Dirichlet(p)).

    Each question is asked only of the volunteers whose earlier answers lead to it (Walmsley
    et al. 2022, Fig. 4), so e.g. disk-edge-on total-votes = featured-or-disk count.
    Fractions are NaN where a question received no votes, as in the real catalog.
    """
    counts: dict[str, np.ndarray] = {}

    def ask(question, total):
        p = rng.dirichlet(probs[question] * concentration)
        counts[question] = rng.multinomial(int(total), p) if total > 0 else np.zeros(len(p), dtype=np.int64)
        return counts[question]

    smooth, featured, _ = ask("smooth-or-featured", rng.integers(30, 46))
    ask("how-rounded", smooth)
    _, not_edge_on = ask("disk-edge-on", featured)
    spiral_yes, _ = ask("has-spiral-arms", not_edge_on)
    ask("bar", not_edge_on)
    ask("bulge-size", not_edge_on)
    ask("spiral-winding", spiral_yes)
    ask("merging", smooth + featured)

    row = {}
    for question, answers in GZ_QUESTIONS.items():
        total = int(counts[question].sum())
        for answer, count in zip(answers, counts[question]):
            row[count_column(question, answer)] = int(count)
        for answer, count in zip(answers, counts[question]):
            row[fraction_column(question, answer)] = count / total if total else np.nan
        row[total_votes_column(question)] = total
    return row


# ---------------------------------------------------------------------------------------------
# examples figure
# ---------------------------------------------------------------------------------------------

# Display-only band weights (between equal weights and the Legacy Survey viewer's g, r, z scales
# 6.0, 3.4, 2.2), so old populations look yellow-red and star formation blue; the network input is not weighted.
DISPLAY_BAND_WEIGHTS = (1.4, 1.0, 0.75)


def rgb_composite(flux: np.ndarray) -> np.ndarray:
    """(3, H, W) g, r, z nanomaggies -> (H, W, 3) display RGB with z->R, r->G, g->B (asinh stretch)."""
    stretched = asinh_stretch(np.asarray(flux) * np.array(DISPLAY_BAND_WEIGHTS, dtype=np.float32)[:, None, None])
    return np.stack([stretched[2], stretched[1], stretched[0]], axis=-1)


def save_examples_png(out_dir, truth: pd.DataFrame, path, per_class: int = 4) -> None:
    """A mosaic: one row per morph_type plus a row of defective images; DECaLS | BASS+MzLS pairs.

    Tiles are drawn north up, east left, as in the Legacy Survey viewer.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    rows = []
    clean = truth[(truth["defect_decals"] == "") & (truth["defect_bass"] == "")]
    for morph in MORPH_TYPES:
        group = clean[clean["morph_type"] == morph].sort_values("in_bass_footprint", ascending=False, kind="stable")
        rows.append((morph, group.head(per_class)))
    # Defects: one of each kind where possible, preferring damage in the BASS+MzLS image.
    picked = []
    for kind in DEFECT_KINDS:
        for column in ("defect_bass", "defect_decals"):
            hits = truth.index[(truth[column] == kind) & ~truth.index.isin(picked)]
            if len(hits):
                picked.append(hits[0])
                break
    rest = truth.index[((truth["defect_decals"] != "") | (truth["defect_bass"] != "")) & ~truth.index.isin(picked)]
    rows.append(("defects", truth.loc[(picked + list(rest))[:per_class]]))

    size = read_raw(out_dir / DECALS.image_dir / f"{truth['decals_iauname'].iloc[0]}.fits").shape[1]
    gap, pair_gap, header = max(1, size // 32), max(3, size // 8), max(6, size // 6)
    row_height = size + header
    column_x = [k * (2 * size + gap + pair_gap) + s * (size + gap) for k in range(per_class) for s in range(2)]
    mosaic = np.ones((len(rows) * row_height, column_x[-1] + size, 3), dtype=np.float32)
    captions = []                                   # (x, y, text) in mosaic pixels
    for r, (label, group) in enumerate(rows):
        top = r * row_height + header
        for k in range(min(per_class, len(group))):
            row = group.iloc[k]
            for s, survey in enumerate(SURVEYS):
                x = column_x[2 * k + s]
                name = row["decals_iauname"] if survey is DECALS else row["bass_iauname"]
                if name:
                    tile = np.flipud(rgb_composite(read_raw(out_dir / survey.image_dir / f"{name}.fits")))
                else:
                    tile = np.full((size, size, 3), 0.85, dtype=np.float32)
                    captions.append((x + size / 2, top + size / 2, "outside\nBASS"))
                mosaic[top:top + size, x:x + size] = tile
                caption = row[f"defect_{survey.key}"] or "(no defect)" if label == "defects" else \
                    (survey.name if r == 0 else "")
                if caption:
                    captions.append((x + size / 2, top - 1, caption))

    scale = 1.3 / size                              # inches per mosaic pixel: a tile is 1.3 inch wide
    left, pad, top = 0.75, 0.05, 0.3                # inches: row labels, border, title
    width, height = mosaic.shape[1] * scale, mosaic.shape[0] * scale
    fig = Figure(figsize=(left + width + pad, height + top + pad))
    FigureCanvasAgg(fig)
    fig_width, fig_height = fig.get_figwidth(), fig.get_figheight()
    ax = fig.add_axes((left / fig_width, pad / fig_height, width / fig_width, height / fig_height))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for x, y, text in captions:
        ax.text(x, y, text, ha="center", va="bottom" if "\n" not in text else "center", fontsize=6)
    for r, (label, _) in enumerate(rows):
        ax.text(-size * 0.05, r * row_height + header + size / 2, label.replace("_", "\n"), ha="right", va="center",
                fontsize=7)
    fig.suptitle("Mock survey examples: DECaLS | BASS+MzLS pairs (z, r, g -> R, G, B; asinh stretch)", fontsize=8,
                 y=1 - 0.05 / fig.get_figheight())
    fig.savefig(path, dpi=max(100, int(np.ceil(1 / scale))))
