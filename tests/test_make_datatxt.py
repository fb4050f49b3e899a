"""make_datatxt.py keeps good cutouts and reports bad ones with the reason; the loader names files."""
import csv
import json

import numpy as np
import pytest
from conftest import make_cutouts
from PIL import Image

import make_datatxt
from VAE_model.imageio import ImageError, load_image, read_cutout, write_fits_cutout


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "images"
    good = make_cutouts(folder, 4, 64)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "good_png.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "good_jpg.jpg")
    (folder / "corrupt.fits").write_bytes(b"this is not a FITS file at all" * 10)
    truncated = good[0].read_bytes()
    (folder / "truncated.fits").write_bytes(truncated[: len(truncated) // 2])
    (folder / "corrupt_png.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    write_fits_cutout(folder / "two_bands.fits", np.ones((2, 64, 64), np.float32), {})
    write_fits_cutout(folder / "too_small.fits", np.ones((3, 32, 32), np.float32), {})
    sky = rng.normal(0, 0.01, (3, 64, 64)).astype(np.float32)
    nan_image = sky.copy()
    nan_image[1, 10, 10] = np.nan                      # one bad pixel: filled and counted
    write_fits_cutout(folder / "nan_pixel.fits", nan_image, {})
    inf_image = sky.copy()
    inf_image[0, :20, :] = np.inf                      # 31% of band g: rejected
    write_fits_cutout(folder / "inf_rows.fits", inf_image, {})
    half_zero = sky.copy()
    half_zero[:2, :, :32] = 0.0                        # no coverage over half of g and r
    write_fits_cutout(folder / "half_zero.fits", half_zero, {})
    write_fits_cutout(folder / "blank.fits", np.zeros((3, 64, 64), np.float32), {})
    return folder


def test_bad_files_are_reported_and_good_ones_kept(mixed_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert make_datatxt.main(["--images", str(mixed_folder), "--run", str(run), "--image-size", "64", "--workers", "1"]) == 0
    kept = {p.split("/")[-1] for p in (run / "train.txt").read_text().split()}
    assert kept == {"good_png.png", "good_jpg.jpg", "nan_pixel.fits"} | {f"J{i:06d}+300000.0.fits" for i in range(4)}
    with open(run / "rejected_images.csv") as handle:
        reasons = {row["path"].split("/")[-1]: row["reason"] for row in csv.DictReader(handle)}
    assert set(reasons) == {"corrupt.fits", "truncated.fits", "corrupt_png.png", "two_bands.fits", "too_small.fits",
                            "inf_rows.fits", "half_zero.fits", "blank.fits"}
    assert "unreadable" in reasons["corrupt.fits"]
    assert "truncated" in reasons["truncated.fits"]
    assert "bands" in reasons["two_bands.fits"]
    assert "masked fraction 0.312 in band g" in reasons["inf_rows.fits"]
    assert "masked fraction 0.500" in reasons["half_zero.fits"] and "0.2" in reasons["half_zero.fits"]
    assert "blank" in reasons["blank.fits"]
    assert "at least 64 px" in reasons["too_small.fits"]
    assert all("\n" not in reason for reason in reasons.values())
    assert "7 images accepted, 8 rejected" in capsys.readouterr().out
    with open(run / "images.csv") as handle:
        rows = {row["path"].split("/")[-1]: row for row in csv.DictReader(handle)}
    assert set(rows) == kept
    assert float(rows["nan_pixel.fits"]["masked_fraction"]) == pytest.approx(1 / 64 ** 2, rel=1e-5)
    assert rows["J000001+300000.0.fits"]["name"] == "J000001+300000.0"
    assert rows["J000001+300000.0.fits"]["position_source"] == "cards"
    assert float(rows["J000001+300000.0.fits"]["ra"]) == pytest.approx(180.01)
    assert rows["good_png.png"]["band_source"] == "raster"


def test_max_masked_fraction_flag_moves_the_limit(mixed_folder, tmp_path):
    run = tmp_path / "run"
    make_datatxt.main(["--images", str(mixed_folder), "--run", str(run), "--image-size", "64", "--workers", "1",
                       "--max-masked-fraction", "0.6", "--quiet"])
    kept = {p.split("/")[-1] for p in (run / "train.txt").read_text().split()}
    assert {"half_zero.fits", "inf_rows.fits"} <= kept
    image = load_image(mixed_folder / "half_zero.fits", 64, max_masked_fraction=0.6)
    assert np.all(image[0, :, :32] == 0) and np.isfinite(image).all()


def test_symlinks_keep_their_own_name(tmp_path):
    store = tmp_path / "store"
    targets = make_cutouts(store, 3, 64)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, target in enumerate(targets):
        (folder / f"J10000{i}.00+300000.0.fits").symlink_to(target)
    run = tmp_path / "run"
    assert make_datatxt.main(["--images", str(folder), "--run", str(run), "--image-size", "64", "--workers", "1",
                              "--quiet"]) == 0
    kept = (run / "train.txt").read_text().split()
    assert kept == [str(folder / f"J10000{i}.00+300000.0.fits") for i in range(3)]


def test_pixel_scale_is_reported_warned_and_resampled(tmp_path, capsys):
    folder = tmp_path / "images"
    make_cutouts(folder, 2, 64)                               # PIXSCALE 0.262, no WCS
    fine = np.random.default_rng(2).normal(0, 0.01, (3, 128, 128)).astype(np.float32)
    fine[:, 60:68, 60:68] += 1.0
    write_fits_cutout(folder / "fine.fits", fine, {"PIXSCALE": 0.131})
    run = tmp_path / "run"
    assert make_datatxt.main(["--images", str(folder), "--run", str(run), "--image-size", "64", "--workers", "1",
                              "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: 1 of 3 images are not at the native 0.262" in out and "vary across the images" in out
    summary = json.loads((run / "datatxt_summary.json").read_text())
    assert summary["pixel_scale_arcsec"]["min"] == pytest.approx(0.131)
    assert summary["pixel_scale_arcsec"]["median"] == pytest.approx(0.262)
    assert len(summary["warnings"]) == 2

    run2 = tmp_path / "run2"
    assert make_datatxt.main(["--images", str(folder), "--run", str(run2), "--image-size", "64", "--workers", "1",
                              "--quiet", "--resample-to-native"]) == 0
    assert "WARNING" not in capsys.readouterr().out
    kept = (run2 / "train.txt").read_text().split()
    assert str(run2 / "resampled" / "fine.fits") in kept
    resampled, info = read_cutout(run2 / "resampled" / "fine.fits")
    assert resampled.shape == (3, 64, 64) and info.pixel_scale_arcsec == pytest.approx(0.262)
    with open(run2 / "images.csv") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert rows["fine"]["source_path"] == str(folder / "fine.fits")


def test_missing_folder_gives_one_line_error(tmp_path, capsys):
    assert make_datatxt.main(["--images", str(tmp_path / "nowhere"), "--run", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere" in err


def test_loader_error_names_the_file(mixed_folder):
    with pytest.raises(ImageError, match="truncated.fits: truncated FITS"):
        load_image(mixed_folder / "truncated.fits", 64)
    with pytest.raises(ImageError, match="inf_rows.fits: masked fraction 0.312"):
        load_image(mixed_folder / "inf_rows.fits", 64, max_masked_fraction=0.2)
    # without a limit the loader fills (the limit is make_datatxt's, applied when the list is made)
    assert np.all(load_image(mixed_folder / "inf_rows.fits", 64)[0, :20] == 0)


def test_large_cutouts_are_downsampled_to_the_requested_size(tmp_path):
    paths = make_cutouts(tmp_path, 1, 128)
    image = load_image(paths[0], 64)
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
