"""Real Legacy Survey cutouts and their Galaxy Zoo renders are read unchanged (../shared/realdata).

The files are DECaLS cutout-service FITS (TAN WCS, no RA/DEC cards, big-endian float32, two
pixel scales, a half-empty cutout, truncated downloads) and the JPEG renders Galaxy Zoo DECaLS
made from the same FITS (willettk/decals). Skipped when the folder is absent (a user's clone).
"""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import make_datatxt
from VAE_model.imageio import describe_image, image_position, read_cutout

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"
WILLETTK = REAL / "decals_fits_willettk"
GZBCNN = REAL / "decals_fits_gzbcnn"
# JPEG renders of the FITS beside them (plt.imsave(origin='lower') of dr2_style_rgb, R=z G=r B=g).
# The .png files of example_a..e show other galaxies, and temp_small.png is stored south-up; not used.
RENDERS = ["example_a", "example_b", "example_bad_pix", "example_c", "example_e"]

pytestmark = pytest.mark.skipif(not WILLETTK.is_dir() or not GZBCNN.is_dir(),
                                reason=f"real survey files not present at {REAL} (only on the project's machines)")


def _readable_fits():
    return sorted(p for p in [*WILLETTK.glob("*.fits"), *GZBCNN.glob("*.fits")] if "incomplete" not in p.name)


def test_positions_come_from_the_wcs_and_agree_with_crval():
    from astropy.coordinates import SkyCoord

    for path in _readable_fits():
        header = fits.getheader(path)
        assert "RA" not in header and "CRVAL1" in header
        ra, dec, source = image_position(path)
        assert source == "wcs", path.name
        # CRPIX is the centre pixel in these cutouts, so the centre is CRVAL
        assert (ra, dec) == (pytest.approx(header["CRVAL1"], abs=1e-7), pytest.approx(header["CRVAL2"], abs=1e-7))
    a, small = image_position(WILLETTK / "example_a.fits"), image_position(WILLETTK / "temp_small.fits")
    separation = SkyCoord(a[0], a[1], unit="deg").separation(SkyCoord(small[0], small[1], unit="deg")).arcsec
    assert separation < 1.0


def test_pixel_scales_of_galaxy_zoo_and_native_cutouts():
    for name in ["example_a", "example_b", "example_c", "example_d", "example_e"]:
        _, info = read_cutout(WILLETTK / f"{name}.fits")
        assert 0.09 < info.pixel_scale_arcsec < 0.15 and info.scale_source == "wcs", name
    for path in [WILLETTK / "temp_small.fits", GZBCNN / "example_a.fits", GZBCNN / "example_b.fits"]:
        assert read_cutout(path)[1].pixel_scale_arcsec == pytest.approx(0.262, abs=1e-4), path.name


def test_big_endian_cubes_are_read_by_value_in_g_r_z():
    raw = fits.getdata(GZBCNN / "example_b.fits")
    assert raw.dtype.str == ">f4"
    array, info = read_cutout(GZBCNN / "example_b.fits")
    assert info.bands == "grz" and info.band_source == "cards" and array.dtype.isnative
    np.testing.assert_array_equal(array, raw.astype(np.float32))


def test_half_empty_and_truncated_cutouts_are_rejected_and_the_good_one_kept():
    info, reason = describe_image(WILLETTK / "example_bad_pix.fits", 128)
    assert info is None and "masked fraction 0.757 in band g" in reason
    info, reason = describe_image(WILLETTK / "example_d.fits", 128)       # the same galaxy in DR5
    assert reason is None and 0 < info.masked_fraction < 0.01
    for name in ["example_incomplete.fits", "example_incomplete_backup.fits"]:
        info, reason = describe_image(WILLETTK / name)
        assert info is None and reason.startswith("truncated FITS") and "\n" not in reason


def _corr(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("name", RENDERS)
def test_raster_renders_line_up_with_their_fits_in_colour_and_orientation(name):
    """Each loaded raster plane must match its FITS band (colour contrast: band minus the mean of
    the bands) better than the other bands, and the loaded orientation must match the FITS
    clearly better than the unflipped picture."""
    from scipy.ndimage import zoom

    raster, info = read_cutout(WILLETTK / f"{name}.jpeg")
    flux, _ = read_cutout(WILLETTK / f"{name}.fits")
    size = raster.shape[1]
    flux = np.where(np.isfinite(flux), flux, 0)
    sky = zoom(np.arcsinh(flux / 0.02), (1, size / flux.shape[1], size / flux.shape[2]), order=1)
    luminance, sky_luminance = raster.mean(axis=0), sky.mean(axis=0)
    aligned, unflipped = _corr(luminance, sky_luminance), _corr(luminance[::-1], sky_luminance)
    assert aligned > 0.95 and unflipped < aligned - 0.1, (aligned, unflipped)
    contrast, sky_contrast = raster - raster.mean(axis=0), sky - sky.mean(axis=0)
    matrix = np.array([[_corr(contrast[c], sky_contrast[b]) for b in range(3)] for c in range(3)])
    assert list(matrix.argmax(axis=1)) == [0, 1, 2], matrix.round(2)
    assert np.diag(matrix).min() > 0.5, matrix.round(2)


def test_make_datatxt_on_the_real_files(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in [*WILLETTK.glob("*.fits"), *GZBCNN.glob("*.fits")]:
        (folder / f"{path.parent.name.split('_')[-1]}_{path.name}").symlink_to(path)
    run = tmp_path / "run"
    assert make_datatxt.main(["--images", str(folder), "--run", str(run), "--image-size", "128", "--workers", "1",
                              "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: 5 of 8 images are not at the native 0.262" in out and "vary across the images" in out
    kept = (run / "train.txt").read_text().split()
    assert len(kept) == 8 and all(p.startswith(str(folder)) for p in kept)          # link names kept
    with open(run / "rejected_images.csv") as handle:
        reasons = {Path(row["path"]).name: row["reason"] for row in csv.DictReader(handle)}
    assert set(reasons) == {"willettk_example_bad_pix.fits", "willettk_example_incomplete.fits",
                            "willettk_example_incomplete_backup.fits"}
    summary = json.loads((run / "datatxt_summary.json").read_text())
    assert summary["position_source"] == {"wcs": 8} and summary["band_source"] == {"cards": 8}
    assert summary["pixel_scale_arcsec"]["min"] == pytest.approx(0.1, abs=1e-4)

    run2 = tmp_path / "run2"
    assert make_datatxt.main(["--images", str(folder), "--run", str(run2), "--image-size", "128", "--workers", "1",
                              "--quiet", "--resample-to-native"]) == 0
    out = capsys.readouterr().out
    assert "not at the native" not in out                       # every header scale is native now
    # but the native cutouts are 162-509 px: resized to 128 px they are not at 0.262 any more (issue 18)
    assert "WARNING: 8 of 8 images are resized from 162-509 px to --image-size 128" in out
    with open(run2 / "images.csv") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert float(rows["willettk_example_a"]["pixel_scale_arcsec"]) == pytest.approx(0.262, rel=0.01)
    # example_a resampled to 0.262"/px is the same image as temp_small, the native cutout of that galaxy
    resampled, _ = read_cutout(rows["willettk_example_a"]["path"])
    native, _ = read_cutout(WILLETTK / "temp_small.fits")
    n, start = resampled.shape[1], (native.shape[1] - resampled.shape[1]) // 2
    native = native[:, start:start + n, start:start + n]
    for band in range(3):
        assert _corr(resampled[band], native[band]) > 0.97
        assert resampled[band].sum() / native[band].sum() == pytest.approx(1.0, abs=0.03)
