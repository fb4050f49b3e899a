"""Build the embedded default data: a mock DECaLS / BASS+MzLS galaxy survey rendered with GalSim.

Real Legacy Survey cutouts cannot be downloaded here, so the project renders its own sky:
the same galaxies seen by two surveys with different seeing, depth, pixels, filters and
artefacts, plus Galaxy Zoo DECaLS style vote catalogs drawn from the ground truth with volunteer
noise. Every science step can then be checked against the truth (``truth.parquet``), which
training never reads.

Surveys (both delivered on the Legacy Survey grid, 0.262 arcsec/pixel, bands g, r, z, nanomaggies
with AB zero point 22.5 mag; the numbers and their sources are in ``VAE_model.mock.surveys``):
  * DECaLS-like: Moffat PSF (beta 3.5) with per-band seeing around the DECaLS medians.
  * BASS+MzLS-like (the north, only Dec > 32 deg): per-band seeing and depth around the BASS /
    MzLS medians, BASS g, r drawn on 0.454" pixels and resampled (correlated noise), filter
    colour terms, per-galaxy calibration scatter, pass-count depth variations, and north
    artefacts (a band missing or partly missing, saturated stars with bleed trails, badly
    calibrated images, sky residuals), each flagged in the truth table (artefact_bass_<kind>).
    Catalog positions are offset by 0.1-0.3 arcsec (x gap), so pairing needs a sky cross-match.
  * ``gap`` scales every north/south difference: 0 identical surveys (up to noise), 1 realistic,
    2 harsher. DECaLS images do not depend on ``gap``: one mock can be rendered at several gaps
    and the DECaLS side stays bit-identical.
  * ``north_fraction`` of the galaxies lie in the north (Dec 32-45 deg, imaged by both surveys),
    the rest at Dec 20-32 deg (DECaLS only).

Morphologies (``morph_type``, equal fractions): smooth_round, smooth_inbetween, smooth_cigar,
edge_on, spiral, barred_spiral, merger, irregular; parameter columns in the truth table.
About 4% of survey images (both surveys) carry a defect (satellite trail, saturated star,
missing band region, bad column / hot pixels), flagged per survey in the truth table.

READS   nothing: everything follows from ``seed`` (galaxy i uses SeedSequence(seed, spawn_key=(i,)),
        so the output is bit-identical for any number of worker processes).
WRITES  into ``out_dir`` (default ``data/mock``), names from ``runfiles.MOCK_*``:
        decals/<iauname>.fits, bass_mzls/<iauname>.fits  cutouts (3, S, S) float32, g, r, z
        gz_decals.parquet, gz_bass_mzls.parquet          Galaxy Zoo DECaLS style vote catalogs
        truth.parquet                                    ground truth, one row per galaxy
        mock_meta.json                                   settings + summary (``mock_is_current``)
        examples_by_class.png                            examples per class, both surveys
RUN     through ``make_datatxt.py`` (``--mock-gap``), or from Python:
        ``build_mock_survey("data/mock", n_galaxies=2400, image_size=64, gap=1.0)``
"""
from __future__ import annotations

import json
import math
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd

from .. import runfiles
from ..catalog import iau_name
from ..imageio import BANDS, PIXEL_SCALE_ARCSEC, write_fits_cutout
from .effects import add_defect, add_north_artefact, draw_survey_image
from .plots import save_examples_png
from .scene import build_scene, draw_galaxy_params
from .surveys import (BASS, BASS_MIN_DEC_DEG, BASS_OFFSET_ARCSEC, DEC_RANGE_DEG, DECALS, DECALS_NOISE_SIGMA_NMGY,
                      DEFAULT_DEFECT_FRACTION, DEFAULT_GAP, DEFAULT_NORTH_FRACTION, DEFECT_KINDS,
                      MIN_SEPARATION_ARCSEC, MOCK_VERSION, NORTH_ARTEFACT_KINDS, NORTH_ARTEFACT_RATES,
                      NORTH_CALIBRATION_SCATTER_MAG, NORTH_DEPTH_SCATTER_MAG, NORTH_PASS_FRACTIONS,
                      PSF_FWHM_LIMITS_ARCSEC, RA_RANGE_DEG, SURVEYS, blend, check_gap, draw_psf_fwhm,
                      north_colour_dmag, north_noise_factor)
from .votes import draw_votes, vote_probabilities


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------

def build_mock_survey(out_dir, n_galaxies: int, image_size: int = 64, seed: int = 0, workers: int | None = None,
                      progress: bool = True, defect_fraction: float = DEFAULT_DEFECT_FRACTION,
                      gap: float = DEFAULT_GAP, north_fraction: float = DEFAULT_NORTH_FRACTION) -> dict:
    """Render the mock survey into ``out_dir``; return (and save as MOCK_META) a summary dict.

    Old cutouts in the image folders are removed first, and MOCK_META is written last, so an
    interrupted build is never mistaken for a current one.
    """
    from tqdm import tqdm

    if n_galaxies < 1 or image_size < 16:
        raise ValueError(f"need n_galaxies >= 1 and image_size >= 16, got {n_galaxies}, {image_size}")
    gap = check_gap(gap)
    if not 0.0 <= north_fraction <= 1.0:
        raise ValueError(f"north_fraction must lie in [0, 1], got {north_fraction}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / runfiles.MOCK_META).unlink(missing_ok=True)
    for survey in SURVEYS:
        folder = out_dir / survey.image_dir
        folder.mkdir(exist_ok=True)
        for old in list(folder.glob("*.fits")) + list(folder.glob(".*.tmp")):   # tmp: files.atomic_write
            old.unlink()

    start = time.perf_counter()
    ra, dec = sky_positions(n_galaxies, seed, north_fraction)
    tasks = [(i, float(ra[i]), float(dec[i]), image_size, seed, defect_fraction, gap, str(out_dir))
             for i in range(n_galaxies)]
    workers = max(1, min(workers or os.cpu_count() or 1, n_galaxies))
    bar = tqdm(total=n_galaxies, desc="mock survey", unit="gal", disable=not progress)
    results = []
    if workers == 1:
        for task in tasks:
            results.append(render_galaxy(task))
            bar.update()
    else:
        from ..cli_args import ignore_interrupts

        with Pool(workers, initializer=ignore_interrupts) as pool:   # Ctrl-C: the parent alone stops
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
        "defect_fraction": float(defect_fraction), "gap": gap, "north_fraction": float(north_fraction),
        "n_bass": int(len(bass)),
        "n_defect_decals": int((truth["defect_decals"] != "").sum()),
        "n_defect_bass": int((truth["defect_bass"] != "").sum()),
        "n_artefact_bass": {kind: int(truth[f"artefact_bass_{kind}"].sum()) for kind in NORTH_ARTEFACT_KINDS},
        "morph_type_counts": {k: int(v) for k, v in truth["morph_type"].value_counts().sort_index().items()},
        "workers": int(workers), "seconds": round(seconds, 2), "seconds_render": round(seconds_render, 2),
        "galaxies_per_s": round(n_galaxies / seconds, 2),
        "pixel_scale_arcsec": PIXEL_SCALE_ARCSEC, "bands": list(BANDS),
        "surveys": {s.name: {"psf_fwhm_median_arcsec": list(s.psf_fwhm_median_arcsec),
                             "depth_5sigma_mag": list(s.depth_5sigma_mag),
                             "native_pixel_arcsec": list(s.native_pixel_arcsec),
                             "psf_moffat_beta": s.psf_moffat_beta} for s in SURVEYS},
        "north_artefact_rates_at_gap_1": dict(NORTH_ARTEFACT_RATES),
    }
    (out_dir / runfiles.MOCK_META).write_text(json.dumps(summary, indent=2) + "\n")
    if progress:
        print(f"mock survey: {n_galaxies} galaxies ({len(bass)} also in BASS+MzLS, gap {gap:g}) at {image_size} px, "
              f"{workers} workers: {seconds:.1f} s = {summary['galaxies_per_s']:.1f} galaxies/s -> {out_dir}")
    return summary


def mock_is_current(out_dir, n_galaxies, image_size, seed, defect_fraction: float = DEFAULT_DEFECT_FRACTION,
                    gap: float = DEFAULT_GAP, north_fraction: float = DEFAULT_NORTH_FRACTION) -> bool:
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
    for key, value in (("defect_fraction", defect_fraction), ("gap", gap), ("north_fraction", north_fraction)):
        if not math.isclose(float(meta.get(key, -1.0)), float(value)):
            return False
    needed = [runfiles.MOCK_TRUTH, DECALS.catalog, BASS.catalog]
    return all((out_dir / name).exists() for name in needed)


# ---------------------------------------------------------------------------------------------
# sky positions, per-galaxy random streams
# ---------------------------------------------------------------------------------------------

def sky_positions(n_galaxies: int, seed: int, north_fraction: float = DEFAULT_NORTH_FRACTION
                  ) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (deg) on the sky patch, every pair at least MIN_SEPARATION_ARCSEC apart; a share
    ``north_fraction`` of them (uniform on the sphere) at Dec > BASS_MIN_DEC_DEG, the rest below."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    north = rng.uniform(size=n_galaxies) < north_fraction
    sin_lo, sin_mid, sin_hi = np.sin(np.radians([DEC_RANGE_DEG[0], BASS_MIN_DEC_DEG, DEC_RANGE_DEG[1]]))

    def draw(rows):
        ra_new = rng.uniform(*RA_RANGE_DEG, len(rows))
        u = rng.uniform(size=len(rows))
        sin_dec = np.where(north[rows], sin_mid + u * (sin_hi - sin_mid), sin_lo + u * (sin_mid - sin_lo))
        return ra_new, np.degrees(np.arcsin(sin_dec))

    everyone = np.arange(n_galaxies)
    ra, dec = draw(everyone)
    chord = 2 * np.sin(np.radians(MIN_SEPARATION_ARCSEC / 3600) / 2)
    for _ in range(100):
        xyz = np.stack([np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                        np.cos(np.radians(dec)) * np.sin(np.radians(ra)), np.sin(np.radians(dec))], axis=1)
        pairs = cKDTree(xyz).query_pairs(chord, output_type="ndarray")
        if len(pairs) == 0:
            return ra, dec
        redo = np.unique(pairs.max(axis=1))
        ra[redo], dec[redo] = draw(redo)
    raise RuntimeError(f"cannot place {n_galaxies} galaxies {MIN_SEPARATION_ARCSEC} arcsec apart in the sky patch")


def galaxy_streams(seed: int, galaxy_id: int) -> dict:
    """Independent random streams of one galaxy, derived from (seed, galaxy_id) only."""
    names = ("params", "scene", "knots", "decals_image", "bass_image", "decals_votes", "bass_votes", "north")
    children = np.random.SeedSequence(seed, spawn_key=(galaxy_id,)).spawn(len(names))
    return dict(zip(names, children))


def _galsim_deviate(seed_sequence):
    import galsim

    # galsim treats seed 0 as "seed from the clock": keep it in 1..2**31-1.
    return galsim.BaseDeviate(int(seed_sequence.generate_state(1)[0]) % (2 ** 31 - 2) + 1)


# ---------------------------------------------------------------------------------------------
# one galaxy: parameters, scene, two survey images, two catalog rows
# ---------------------------------------------------------------------------------------------

def draw_north_conditions(rng, psf_decals: np.ndarray, noise_decals: np.ndarray, gap: float) -> dict:
    """How the north sees one galaxy at this gap: PSF, noise, pixels, calibration, artefacts.

    Every random number is drawn whatever the gap (the gap only scales them), so the north of one
    galaxy at gap 0.5 and at gap 2 are the same conditions, milder or harsher."""
    offset = rng.uniform(*BASS_OFFSET_ARCSEC)
    direction = rng.uniform(0, 2 * np.pi)
    psf_real = draw_psf_fwhm(rng, BASS)
    n_pass = np.array([rng.choice([1, 2, 3], p=np.array(f) / np.sum(f)) for f in NORTH_PASS_FRACTIONS])
    depth_offset = rng.normal(0.0, NORTH_DEPTH_SCATTER_MAG, 3)
    calibration = rng.normal(0.0, NORTH_CALIBRATION_SCATTER_MAG, 3)
    artefact_draws = rng.uniform(size=len(NORTH_ARTEFACT_KINDS))
    return {
        "offset_arcsec": gap * offset, "direction_rad": direction,
        "psf_fwhm": np.clip(blend(psf_decals, psf_real, gap), *PSF_FWHM_LIMITS_ARCSEC),
        "noise_sigma": noise_decals * north_noise_factor(n_pass, depth_offset) ** gap,
        "n_pass": n_pass, "calibration_dmag": gap * calibration,
        "native_pixel_arcsec": blend(DECALS.native_pixel_arcsec, BASS.native_pixel_arcsec, gap),
        "moffat_beta": max(2.5, DECALS.psf_moffat_beta + gap * (BASS.psf_moffat_beta - DECALS.psf_moffat_beta)),
        "artefacts": [kind for kind, u in zip(NORTH_ARTEFACT_KINDS, artefact_draws)
                      if u < min(1.0, gap * NORTH_ARTEFACT_RATES[kind])],
    }


def render_galaxy(task) -> tuple[dict, dict, dict | None]:
    """Worker: draw one galaxy, write its cutouts; return (truth row, DECaLS row, BASS row or None)."""
    galaxy_id, ra, dec, image_size, seed, defect_fraction, gap, out_dir = task
    streams = galaxy_streams(seed, galaxy_id)
    rng = np.random.default_rng(streams["params"])
    params = draw_galaxy_params(rng, image_size)
    psf_decals = draw_psf_fwhm(rng, DECALS)
    noise_decals = np.array(DECALS_NOISE_SIGMA_NMGY) * rng.uniform(0.85, 1.2, 3)
    defect = {s.key: (str(rng.choice(DEFECT_KINDS)) if rng.uniform() < defect_fraction else "") for s in SURVEYS}
    in_bass = dec > BASS_MIN_DEC_DEG
    north_rng = np.random.default_rng(streams["north"])
    north = draw_north_conditions(north_rng, psf_decals, noise_decals, gap)

    # BASS catalog position: truth + a small astrometric offset (east, north) in arcsec.
    east = north["offset_arcsec"] * np.cos(north["direction_rad"])
    north_shift = north["offset_arcsec"] * np.sin(north["direction_rad"])
    bass_ra = (ra + east / 3600 / np.cos(np.radians(dec))) % 360
    bass_dec = dec + north_shift / 3600

    scene_bands, scene_info = build_scene(params, rng=np.random.default_rng(streams["scene"]),
                                          deviate=_galsim_deviate(streams["knots"]), image_size=image_size)
    params.update(scene_info)
    colour_dmag = gap * north_colour_dmag(params["g_r"], params["r_z"])
    north_flux_scale = 10 ** (-0.4 * (colour_dmag + north["calibration_dmag"]))

    names = {"decals": iau_name(ra, dec), "bass": iau_name(bass_ra, bass_dec) if in_bass else ""}
    psf = {"decals": psf_decals, "bass": north["psf_fwhm"]}
    artefacts = north["artefacts"] if in_bass else []
    outlier_dmag = np.zeros(3)
    rows = {}
    for survey in SURVEYS:
        key = survey.key
        if key == "bass" and not in_bass:
            defect[key] = ""
            rows[key] = None
            continue
        image_rng = np.random.default_rng(streams[f"{key}_image"])
        if key == "decals":
            s_ra, s_dec = ra, dec
            flux = draw_survey_image(scene_bands, (0.0, 0.0), psf_decals, noise_decals, image_size, image_rng)
        else:
            # Cutouts are centred on each survey's own catalog position; x grows to the west (east
            # left), y to the north, so the galaxy sits at (+east, -north) arcsec in the BASS stamp.
            s_ra, s_dec = bass_ra, bass_dec
            flux = draw_survey_image(scene_bands, (east, -north_shift), north["psf_fwhm"], north["noise_sigma"],
                                     image_size, image_rng, flux_scale=north_flux_scale,
                                     native_pixel_arcsec=north["native_pixel_arcsec"], moffat_beta=north["moffat_beta"])
        if defect[key]:
            defect[key] = add_defect(flux, defect[key], image_rng, psf[key])
        if key == "bass":
            for kind in artefacts:
                details = add_north_artefact(flux, kind, north_rng, north["psf_fwhm"], north["noise_sigma"])
                outlier_dmag = np.asarray(details.get("calibration_outlier_dmag", outlier_dmag))
        cards = {"SURVEY": (survey.name, "mock survey (GalSim)"), "RA": (float(s_ra), "deg, J2000"),
                 "DEC": (float(s_dec), "deg, J2000"), "IAUNAME": names[key]}
        for band, fwhm in zip(BANDS, psf[key]):
            cards[f"PSFFW{band.upper()}"] = (round(float(fwhm), 4), f"PSF FWHM {band}, arcsec")
        cards["MOCK"] = (True, "rendered by VAE_model.mock")
        if key == "bass":
            cards["MOCKGAP"] = (float(gap), "north-south gap: 0 same, 1 realistic")
        write_fits_cutout(Path(out_dir) / survey.image_dir / f"{names[key]}.fits", flux, cards)
        vote_rng = np.random.default_rng(streams[f"{key}_votes"])
        seen_defect = defect[key] or next((k for k in artefacts if k in DEFECT_KINDS), "") if key == "bass" \
            else defect[key]
        votes = draw_votes(vote_rng, vote_probabilities(params, psf[key], seen_defect, image_size, vote_rng))
        rows[key] = {"iauname": names[key], "ra": float(s_ra), "dec": float(s_dec), **votes}

    truth = {"galaxy_id": int(galaxy_id), "decals_iauname": names["decals"], "bass_iauname": names["bass"],
             "ra": float(ra), "dec": float(dec), "in_bass_footprint": bool(in_bass), "gap": float(gap),
             "bass_ra": float(bass_ra) if in_bass else np.nan, "bass_dec": float(bass_dec) if in_bass else np.nan,
             "bass_offset_arcsec": float(north["offset_arcsec"]) if in_bass else np.nan}
    truth.update(params)
    noise = {"decals": noise_decals, "bass": north["noise_sigma"]}
    for survey in SURVEYS:
        have = survey.key == "decals" or in_bass
        for b, band in enumerate(BANDS):
            truth[f"psf_fwhm_{survey.key}_{band}"] = float(psf[survey.key][b]) if have else np.nan
        for b, band in enumerate(BANDS):
            # sky noise per 0.262" pixel area, before any resampling
            truth[f"noise_sigma_{survey.key}_{band}"] = float(noise[survey.key][b]) if have else np.nan
    north_columns = {"n_pass": north["n_pass"], "pixel_arcsec": north["native_pixel_arcsec"],
                     "colour_dmag": colour_dmag, "calibration_dmag": north["calibration_dmag"],
                     "calibration_outlier_dmag": outlier_dmag}
    for name, values in north_columns.items():
        for b, band in enumerate(BANDS):
            truth[f"{name}_bass_{band}"] = float(values[b]) if in_bass else np.nan
    truth["defect_decals"], truth["defect_bass"] = defect["decals"], defect["bass"]
    for kind in NORTH_ARTEFACT_KINDS:
        truth[f"artefact_bass_{kind}"] = kind in artefacts
    return truth, rows["decals"], rows["bass"]
