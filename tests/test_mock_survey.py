"""The mock survey: reproducible from the seed, Galaxy Zoo schema, two surveys of one sky, FITS layout."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from VAE_model import runfiles
from VAE_model.catalog import (
    GZ_QUESTIONS,
    count_column,
    cross_match,
    fraction_column,
    iau_name,
    read_catalog,
    total_votes_column,
)
from VAE_model.imageio import PIXEL_SCALE_ARCSEC, read_fits_header, read_raw
from VAE_model.mock import (
    BASS,
    BASS_MIN_DEC_DEG,
    DECALS,
    DEFECT_KINDS,
    MORPH_TYPES,
    SURVEYS,
    add_defect,
    build_mock_survey,
    mock_is_current,
    sky_positions,
)

N_GALAXIES, SIZE = 20, 32


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    """One tiny mock (defects forced to be common) shared by the read-only tests."""
    out = tmp_path_factory.mktemp("mock")
    summary = build_mock_survey(out, N_GALAXIES, SIZE, seed=7, workers=1, progress=False, defect_fraction=0.3)
    return out, summary


def _tables(folder):
    return {name: pd.read_parquet(folder / name) for name in (runfiles.MOCK_TRUTH, DECALS.catalog, BASS.catalog)}


def _images(folder):
    return {str(path.relative_to(folder)): read_raw(path) for path in sorted(folder.glob("*/*.fits"))}


def test_same_seed_gives_identical_files_for_any_worker_count_and_other_seed_differs(mock, tmp_path):
    first, _ = mock
    again = build_mock_survey(tmp_path / "again", N_GALAXIES, SIZE, seed=7, workers=2, progress=False, defect_fraction=0.3)
    assert again["workers"] == 2
    for name, table in _tables(first).items():
        pd.testing.assert_frame_equal(table, _tables(tmp_path / "again")[name])
    images, images_again = _images(first), _images(tmp_path / "again")
    assert images.keys() == images_again.keys()
    assert all(np.array_equal(images[key], images_again[key]) for key in images)

    build_mock_survey(tmp_path / "other", N_GALAXIES, SIZE, seed=8, workers=1, progress=False, defect_fraction=0.3)
    other = _tables(tmp_path / "other")[runfiles.MOCK_TRUTH]
    assert not np.allclose(other["ra"], _tables(first)[runfiles.MOCK_TRUTH]["ra"])
    assert _images(tmp_path / "other").keys() != images.keys()


def test_catalogs_have_the_galaxy_zoo_schema_with_consistent_votes(mock):
    folder, _ = mock
    for survey in SURVEYS:
        table = read_catalog(folder / survey.catalog)          # also checks unique iauname, finite ra/dec
        for question, answers in GZ_QUESTIONS.items():
            total = table[total_votes_column(question)].to_numpy()
            counts = table[[count_column(question, a) for a in answers]].to_numpy()
            fractions = table[[fraction_column(question, a) for a in answers]].to_numpy(dtype=float)
            assert np.array_equal(counts.sum(axis=1), total)
            asked = total > 0
            assert np.all((fractions[asked] >= 0) & (fractions[asked] <= 1))
            np.testing.assert_allclose(fractions[asked].sum(axis=1), 1.0, atol=1e-9)
            assert np.isnan(fractions[~asked]).all()             # as in the real catalog: no votes -> NaN
        first_question = table[total_votes_column("smooth-or-featured")]
        assert first_question.between(30, 45).all()
        # Decision tree: edge-on is asked of the featured votes, how-rounded of the smooth ones.
        featured = table[count_column("smooth-or-featured", "featured-or-disk")]
        assert (table[total_votes_column("disk-edge-on")] == featured).all()
        assert (table[total_votes_column("how-rounded")] == table[count_column("smooth-or-featured", "smooth")]).all()
        assert (table[total_votes_column("spiral-winding")] == table[count_column("has-spiral-arms", "yes")]).all()


def test_bass_catalog_pairs_with_decals_by_sky_cross_match_only(mock):
    folder, summary = mock
    truth, decals, bass = (_tables(folder)[name] for name in (runfiles.MOCK_TRUTH, DECALS.catalog, BASS.catalog))
    assert len(decals) == N_GALAXIES and len(bass) == summary["n_bass"] == truth["in_bass_footprint"].sum() > 0
    assert (bass["dec"] > BASS_MIN_DEC_DEG).all()
    assert ((truth["bass_iauname"] != "") == truth["in_bass_footprint"]).all()
    # Each survey names its galaxies from its own coordinates.
    for table in (decals, bass):
        assert all(name == iau_name(ra, dec) for name, ra, dec in table[["iauname", "ra", "dec"]].itertuples(index=False))
    index, sep_arcsec = cross_match(bass["ra"], bass["dec"], decals["ra"], decals["dec"], radius_arcsec=1.0)
    assert (index >= 0).all() and (sep_arcsec >= 0.09).all() and (sep_arcsec <= 0.31).all()
    matched = dict(zip(bass["iauname"], decals["iauname"].to_numpy()[index]))
    expected = dict(zip(truth["bass_iauname"], truth["decals_iauname"]))
    assert all(matched[name] == expected[name] for name in bass["iauname"])


def test_cutouts_are_three_band_fits_with_survey_headers(mock):
    folder, _ = mock
    truth = _tables(folder)[runfiles.MOCK_TRUTH].set_index("decals_iauname")
    for survey in SURVEYS:
        table = pd.read_parquet(folder / survey.catalog)
        assert len(list((folder / survey.image_dir).glob("*.fits"))) == len(table)
        for name, ra, dec in table[["iauname", "ra", "dec"]].itertuples(index=False):
            path = folder / survey.image_dir / f"{name}.fits"
            flux = read_raw(path)
            assert flux.shape == (3, SIZE, SIZE) and flux.dtype == np.float32 and np.isfinite(flux).all()
            header = read_fits_header(path)
            assert header["SURVEY"] == survey.name and header["BANDS"] == "g,r,z" and header["MOCK"] is True
            assert header["PIXSCALE"] == PIXEL_SCALE_ARCSEC and header["IAUNAME"] == name
            assert header["RA"] == pytest.approx(ra) and header["DEC"] == pytest.approx(dec)
            assert {"PSFFWG", "PSFFWR", "PSFFWZ"} <= header.keys()
        # the galaxy is at the centre: the central pixels are well above the sky noise in r
        centre = np.array([read_raw(folder / survey.image_dir / f"{n}.fits")[1, SIZE // 2 - 2:SIZE // 2 + 2,
                                                                             SIZE // 2 - 2:SIZE // 2 + 2].mean()
                           for n in table["iauname"]])
        assert np.median(centre) > 0.3
    assert (folder / runfiles.MOCK_EXAMPLES_PNG).stat().st_size > 0
    assert set(truth["morph_type"]) <= set(MORPH_TYPES)


def test_north_seeing_follows_the_surveys_band_by_band(mock):
    """BASS g, r see worse than DECaLS; MzLS z does not (published medians in VAE_model.mock.surveys)."""
    folder, _ = mock
    truth = _tables(folder)[runfiles.MOCK_TRUTH]
    inside = truth[truth["in_bass_footprint"]]
    for b, band in enumerate("grz"):
        decals_median = truth[f"psf_fwhm_decals_{band}"].median()
        assert abs(decals_median / DECALS.psf_fwhm_median_arcsec[b] - 1) < 0.15
        assert inside[f"noise_sigma_bass_{band}"].notna().all()
    for band in "gr":
        assert inside[f"psf_fwhm_bass_{band}"].mean() > inside[f"psf_fwhm_decals_{band}"].mean() + 0.15
        assert np.allclose(inside[f"pixel_arcsec_bass_{band}"], 0.454)
    assert inside["psf_fwhm_bass_z"].mean() < inside["psf_fwhm_decals_z"].mean() + 0.1
    assert np.allclose(inside["pixel_arcsec_bass_z"], PIXEL_SCALE_ARCSEC)
    assert truth.loc[~truth["in_bass_footprint"], "psf_fwhm_bass_r"].isna().all()


def test_defects_are_flagged_per_survey_image(mock):
    folder, summary = mock
    truth = _tables(folder)[runfiles.MOCK_TRUTH]
    flags = pd.concat([truth["defect_decals"], truth["defect_bass"]])
    assert summary["n_defect_decals"] + summary["n_defect_bass"] == (flags != "").sum() > 0
    assert set(flags) <= set(DEFECT_KINDS) | {""}
    assert (truth.loc[~truth["in_bass_footprint"], "defect_bass"] == "").all()


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_each_defect_kind_damages_the_image(kind):
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 0.005, (3, 48, 48)).astype(np.float32)
    damaged = clean.copy()
    assert add_defect(damaged, kind, np.random.default_rng(1), np.array([1.3, 1.2, 1.1])) == kind
    assert np.isfinite(damaged).all() and np.abs(damaged - clean).max() > 0.004


def test_mock_is_current_only_for_the_same_settings(mock):
    folder, _ = mock
    assert mock_is_current(folder, N_GALAXIES, SIZE, 7, defect_fraction=0.3)
    assert not mock_is_current(folder, N_GALAXIES, SIZE, 7)                 # default defect fraction differs
    assert not mock_is_current(folder, N_GALAXIES + 1, SIZE, 7, defect_fraction=0.3)
    assert not mock_is_current(folder, N_GALAXIES, SIZE * 2, 7, defect_fraction=0.3)
    assert not mock_is_current(folder, N_GALAXIES, SIZE, 8, defect_fraction=0.3)
    assert not mock_is_current(folder / "nowhere", N_GALAXIES, SIZE, 7, defect_fraction=0.3)
    assert not mock_is_current(folder, N_GALAXIES, SIZE, 7, defect_fraction=0.3, gap=0.0)     # another gap
    assert not mock_is_current(folder, N_GALAXIES, SIZE, 7, defect_fraction=0.3, north_fraction=0.5)


def test_sky_positions_are_separated_and_inside_the_patch():
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra, dec = sky_positions(3000, seed=0)
    assert ((ra >= 150) & (ra <= 200) & (dec >= 20) & (dec <= 45)).all()
    coords = SkyCoord(ra * u.deg, dec * u.deg)
    _, separation, _ = coords.match_to_catalog_sky(coords, nthneighbor=2)
    assert separation.to(u.arcsec).value.min() > 10
