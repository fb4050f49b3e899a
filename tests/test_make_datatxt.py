"""make_datatxt.py keeps good cutouts and reports bad ones with the reason; the loader names files."""
import csv

import numpy as np
import pytest
from PIL import Image

import make_datatxt
from conftest import make_cutouts
from VAE_model.imageio import ImageError, load_image, write_fits_cutout


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
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    write_fits_cutout(folder / "two_bands.fits", np.ones((2, 64, 64), np.float32), {})
    write_fits_cutout(folder / "too_small.fits", np.ones((3, 32, 32), np.float32), {})
    nan_image = np.ones((3, 64, 64), np.float32)
    nan_image[1, 10, 10] = np.nan
    write_fits_cutout(folder / "nan.fits", nan_image, {})
    inf_image = np.ones((3, 64, 64), np.float32)
    inf_image[0, 0, 0] = np.inf
    write_fits_cutout(folder / "inf.fits", inf_image, {})
    write_fits_cutout(folder / "blank.fits", np.zeros((3, 64, 64), np.float32), {})
    return folder


def test_bad_files_are_reported_and_good_ones_kept(mixed_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert make_datatxt.main(["--images", str(mixed_folder), "--run", str(run), "--image-size", "64", "--workers", "1"]) == 0
    kept = (run / "train.txt").read_text().split()
    assert len(kept) == 6
    assert all(p.endswith((".fits", ".png", ".jpg")) and "good" in p or "J0000" in p for p in kept)
    with open(run / "rejected_images.csv") as handle:
        reasons = {row["path"].split("/")[-1]: row["reason"] for row in csv.DictReader(handle)}
    assert set(reasons) == {"corrupt.fits", "truncated.fits", "corrupt.png", "two_bands.fits", "too_small.fits",
                            "nan.fits", "inf.fits", "blank.fits"}
    assert "unreadable" in reasons["corrupt.fits"]
    assert "bands" in reasons["two_bands.fits"]
    assert "non-finite" in reasons["nan.fits"] and "non-finite" in reasons["inf.fits"]
    assert "blank" in reasons["blank.fits"]
    assert "at least 64 px" in reasons["too_small.fits"]
    assert "6 images accepted, 8 rejected" in capsys.readouterr().out


def test_missing_folder_gives_one_line_error(tmp_path, capsys):
    assert make_datatxt.main(["--images", str(tmp_path / "nowhere"), "--run", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere" in err


def test_loader_error_names_the_file(mixed_folder):
    with pytest.raises(ImageError, match="nan.fits: 1 non-finite"):
        load_image(mixed_folder / "nan.fits", 64)


def test_large_cutouts_are_downsampled_to_the_requested_size(tmp_path):
    paths = make_cutouts(tmp_path, 1, 128)
    image = load_image(paths[0], 64)
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
