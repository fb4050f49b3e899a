"""Inputs that used to go wrong without a word (issue 18, cases 2-7, 10, 12-14 and --image-size):
each is now refused with a one-line reason, listed as rejected/skipped, or warned about."""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from conftest import blob_image, make_cutouts
from PIL import Image

import make_datatxt
from analysis import decals_2_1
from VAE_model.catalog import iauname_from_paths
from VAE_model.data import image_name
from VAE_model.imageio import ImageError, image_stem, inspect_image, read_cutout, write_fits_cutout

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"
WILLETTK = REAL / "decals_fits_willettk"
needs_real = pytest.mark.skipif(not WILLETTK.is_dir(), reason=f"real cutouts not present ({REAL}; see its README)")


def _run(folder, run, *extra, size=64):
    return make_datatxt.main(["--images", str(folder), "--run", str(run), "--image-size", str(size), "--workers", "1",
                              "--quiet", *extra])


def _reasons(run) -> dict[str, str]:
    with open(Path(run) / "rejected_images.csv", newline="") as handle:
        return {row["path"]: row["reason"] for row in csv.DictReader(handle)}


def _listed(run) -> list[str]:
    return (Path(run) / "train.txt").read_text().splitlines()


# ----------------------------------------------------------------------------- case 2: scale after resizing
def test_a_larger_cutout_block_averaged_off_the_native_scale_is_warned(tmp_path, capsys):
    folder = tmp_path / "images"
    make_cutouts(folder, 3, 64)                                             # PIXSCALE 0.262
    write_fits_cutout(folder / "big.fits", blob_image(np.random.default_rng(5), 128), {})   # PIXSCALE 0.262 too
    assert _run(folder, tmp_path / "run") == 0
    out = capsys.readouterr().out
    assert "not at the native" not in out                                  # every header says 0.262
    assert "WARNING: 1 of 4 images are resized from 128-128 px to --image-size 64" in out and "0.5240" in out
    with open(tmp_path / "run" / "images.csv") as handle:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert float(rows["big.fits"]["pixel_scale_after_resize_arcsec"]) == pytest.approx(0.524)
    assert float(rows["J000000+300000.0.fits"]["pixel_scale_after_resize_arcsec"]) == pytest.approx(0.262)


# ----------------------------------------------------------------------------- case 3: links
def test_linked_sub_folders_are_searched_loops_guarded_and_dangling_links_rejected(tmp_path):
    store = tmp_path / "store"
    targets = make_cutouts(store, 2, 64)
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "dr8").symlink_to(store, target_is_directory=True)
    (folder / "dr8_again").symlink_to(store, target_is_directory=True)     # the same store twice: searched once
    (store / "loop").symlink_to(folder, target_is_directory=True)          # a loop back up
    (folder / "J999999+300000.0.fits").symlink_to(tmp_path / "deleted.fits")
    assert _run(folder, tmp_path / "run") == 0
    assert _listed(tmp_path / "run") == [str(folder / "dr8" / t.name) for t in targets]   # link names kept
    reasons = _reasons(tmp_path / "run")
    assert "dangling symbolic link" in reasons[str(folder / "J999999+300000.0.fits")]
    assert "already searched" in reasons[str(folder / "dr8_again")]
    assert "already searched" in reasons[str(folder / "dr8" / "loop")]


# ----------------------------------------------------------------------------- case 4: one name, two files
def test_the_same_name_in_two_sub_folders_is_refused_naming_both(tmp_path, capsys):
    folder = tmp_path / "images"
    (first,) = make_cutouts(folder / "dr5", 1, 64)
    (second,) = make_cutouts(folder / "dr8", 1, 64, seed=3)
    (folder / "other").mkdir()
    write_fits_cutout(folder / "other" / "J2.fits", blob_image(np.random.default_rng(7), 64), {})
    assert _run(folder, tmp_path / "run") == 0
    assert _listed(tmp_path / "run") == [str(folder / "other" / "J2.fits")]
    reasons = _reasons(tmp_path / "run")
    assert str(second) in reasons[str(first)] and str(first) in reasons[str(second)]
    assert "\n" not in reasons[str(first)]
    assert "share their galaxy name" in capsys.readouterr().out


def test_name_matching_refuses_a_name_listed_twice():
    paths = ["/a/dr5/J1.fits", "/a/dr8/J1.fits", "/a/J2.fits"]
    with pytest.raises(decals_2_1.MatchError, match="/a/dr5/J1.fits and /a/dr8/J1.fits"):
        decals_2_1.match_by_name(["J1", "J2"], paths)
    assert list(decals_2_1.match_by_name(["J2", "J3"], paths[1:])) == [1, -1]


def test_a_name_match_whose_wcs_is_elsewhere_on_the_sky_is_warned(tmp_path):
    import pandas as pd

    images = make_cutouts(tmp_path, 2, 64)                                  # RA 180.00, 180.01; Dec 30
    catalog = pd.DataFrame({"iauname": [image_stem(p) for p in images], "ra": [180.0, 186.01], "dec": [30.0, 30.0]})
    index, method = decals_2_1.match_catalog(catalog, [str(p) for p in images], "auto", progress=False)
    assert method == "name" and list(index["image_index"]) == [0, 1]
    assert index["sep_arcsec"][0] < 0.01 and index["sep_arcsec"][1] == pytest.approx(5.19 * 3600, rel=0.01)
    (line,) = index.attrs["warnings"]
    assert line.startswith("WARNING: 1 of 2 name matches") and str(images[1]) in line


# ----------------------------------------------------------------------------- case 5: FITS and renders
def _render(path, size=64, seed=0):
    rgb = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def test_fits_come_first_and_their_renders_are_skipped_even_when_the_fits_is_rejected(tmp_path, capsys):
    folder = tmp_path / "images"
    (good,) = make_cutouts(folder, 1, 64)
    stem = image_stem(good)
    _render(folder / f"{stem}.png")
    _render(folder / f"{stem}.jpeg")
    holes = blob_image(np.random.default_rng(1), 64)
    holes[:, :, :40] = 0.0                                                  # 62% no coverage: rejected
    write_fits_cutout(folder / "J2.fits", holes, {})
    _render(folder / "J2.png")
    _render(folder / "J3.jpg")                                              # renders alone: PNG before JPEG
    (folder / "sub").mkdir()
    _render(folder / "sub" / "J3.png")
    assert _run(folder, tmp_path / "run") == 0
    assert _listed(tmp_path / "run") == [str(good), str(folder / "sub" / "J3.png")]   # PNG before JPEG
    reasons = _reasons(tmp_path / "run")
    for render in (f"{stem}.png", f"{stem}.jpeg", "J2.png", "J3.jpg"):
        assert reasons[str(folder / render)].startswith("skipped:"), render
    assert "masked fraction" in reasons[str(folder / "J2.fits")]
    assert "2 images accepted, 1 rejected, 4 skipped" in capsys.readouterr().out


@needs_real
def test_real_renders_beside_their_fits_are_skipped(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("example_a.fits", "example_a.jpeg", "example_bad_pix.fits", "example_bad_pix.jpeg"):
        (folder / name).symlink_to(WILLETTK / name)
    assert _run(folder, tmp_path / "run", size=128) == 0
    assert _listed(tmp_path / "run") == [str(folder / "example_a.fits")]
    reasons = _reasons(tmp_path / "run")
    assert reasons[str(folder / "example_bad_pix.jpeg")].startswith("skipped:")
    assert "masked fraction" in reasons[str(folder / "example_bad_pix.fits")]


# ----------------------------------------------------------------------------- case 6: greyscale rasters
def test_greyscale_rasters_are_refused_not_trained_as_g_equal_r_equal_z(tmp_path):
    grey = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")                                   # mode L
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "grey_rgb.jpg")      # grey saved as RGB
    with pytest.raises(ImageError, match=r"grey.png: greyscale image \(mode L\)"):
        read_cutout(tmp_path / "grey.png")
    with pytest.raises(ImageError, match="grey_rgb.jpg: greyscale picture saved as RGB"):
        read_cutout(tmp_path / "grey_rgb.jpg")
    _render(tmp_path / "colour.png")
    assert read_cutout(tmp_path / "colour.png")[1].band_source == "raster"


# ----------------------------------------------------------------------------- case 7: flux units
def test_bunit_is_read_converted_or_refused_and_saturation_warned(tmp_path, capsys):
    folder = tmp_path / "images"
    flux = blob_image(np.random.default_rng(2), 64)
    write_fits_cutout(folder / "adu.fits", flux * 50 + 1000, {"BUNIT": "ADU"})          # counts with a pedestal
    write_fits_cutout(folder / "maggy.fits", flux * 1e-9, {"BUNIT": "maggy"})
    write_fits_cutout(folder / "jansky.fits", flux * 3.631e-6, {"BUNIT": "Jy"})
    write_fits_cutout(folder / "plain.fits", flux, {"BUNIT": "nanomaggy"})
    with fits.open(folder / "plain.fits", mode="update") as hdul:                      # the cutout service: no BUNIT
        del hdul[0].header["BUNIT"]
    write_fits_cutout(folder / "pedestal.fits", flux + 1000, {})                        # no BUNIT, but a pedestal
    plain, info = read_cutout(folder / "plain.fits")
    assert info.unit_source == "assumed"
    for name in ("maggy.fits", "jansky.fits"):
        converted, info = read_cutout(folder / name)
        assert info.unit_source == "BUNIT" and np.allclose(converted, plain, rtol=1e-5, atol=1e-7), name
    assert _run(folder, tmp_path / "run") == 0
    reasons = _reasons(tmp_path / "run")
    assert reasons[str(folder / "adu.fits")].startswith("BUNIT 'ADU' is not a flux in nanomaggies")
    assert len(_listed(tmp_path / "run")) == 4
    out = capsys.readouterr().out
    assert "WARNING: 1 of 4 images have more than 5% of their pixels at the ceiling" in out and "pedestal.fits" in out


# ----------------------------------------------------------------------------- case 10: the API's inputs
@pytest.fixture(scope="module")
def untrained_vae():
    from VAE_model.models import VAE, VAEConfig

    return VAE(VAEConfig(latent_dim=3, image_size=64)).eval()


def test_encode_takes_a_file_a_path_a_folder_or_a_list_and_refuses_a_missing_path(untrained_vae, tmp_path):
    from VAE_model.api import EncodeInputError, encode

    paths = make_cutouts(tmp_path / "images", 3, 64)
    one = encode(untrained_vae, str(paths[0]), progress=False)
    assert list(one["path"]) == [str(paths[0])] and one.attrs["skipped"] == []
    assert list(encode(untrained_vae, paths[1], progress=False)["path"]) == [str(paths[1])]          # a Path
    mixed = encode(untrained_vae, [tmp_path / "images", str(paths[0])], progress=False)
    assert len(mixed) == 4
    with pytest.raises(EncodeInputError, match=r"imagse: no such file or folder$"):
        encode(untrained_vae, str(tmp_path / "imagse"), progress=False)
    with pytest.raises(EncodeInputError, match=r"no such file or folder \(and 1 more\)"):
        encode(untrained_vae, [paths[0], "x.fits", "y.fits"], progress=False)


# ----------------------------------------------------------------------------- case 12: one name function
@pytest.mark.parametrize("name", ["J1.fits", "J1.fits.fz", "J1.fits.gz", "J1.fit", "J1.FITS.FZ", "J1.png",
                                  "J1.jpeg", "J1.jpg", "J1.fz", "J1.fit.gz"])
def test_one_galaxy_name_for_every_image_suffix(name):
    assert image_stem(f"/d/{name}") == image_name(f"/d/{name}") == "J1"


def test_catalog_names_from_paths_use_the_same_rule():
    import pandas as pd

    table = pd.DataFrame({"fits_loc": ["/x/J1.fits.fz", "/x/J2.fit"]})
    iauname_from_paths(table)
    assert list(table["iauname"]) == ["J1", "J2"]


def test_resampling_a_tile_compressed_cutout_keeps_the_galaxy_name(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    header = fits.Header({"BANDS": "grz", "PIXSCALE": 0.131})
    data = blob_image(np.random.default_rng(4), 128)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header, quantize_level=64)]) \
        .writeto(folder / "J1.fits.fz")
    assert _run(folder, tmp_path / "run", "--resample-to-native") == 0
    assert _listed(tmp_path / "run") == [str(tmp_path / "run" / "resampled" / "J1.fits")]
    with open(tmp_path / "run" / "images.csv") as handle:
        assert [row["name"] for row in csv.DictReader(handle)] == ["J1"]


# ----------------------------------------------------------------------------- case 13: compressed files
def test_gzipped_fits_are_judged_on_the_decompressed_data(tmp_path):
    (plain,) = make_cutouts(tmp_path, 1, 64)
    raw = plain.read_bytes()
    (tmp_path / "whole.fits.gz").write_bytes(gzip.compress(raw))
    array, _ = read_cutout(tmp_path / "whole.fits.gz")
    assert np.array_equal(array, read_cutout(plain)[0])
    (tmp_path / "cut_stream.fits.gz").write_bytes(gzip.compress(raw)[:2000])
    (tmp_path / "cut_fits.fits.gz").write_bytes(gzip.compress(raw[:len(raw) // 2]))
    with pytest.raises(ImageError, match="cut_stream.fits.gz: truncated gzip stream"):
        read_cutout(tmp_path / "cut_stream.fits.gz")
    with pytest.raises(ImageError, match=r"cut_fits.fits.gz: truncated FITS \(\d+ bytes once gzip-decompressed"):
        read_cutout(tmp_path / "cut_fits.fits.gz")


def test_a_cut_tile_compressed_fits_is_called_truncated(tmp_path):
    whole = _rice(tmp_path / "whole.fits.fz", blob_image(np.random.default_rng(8), 64), 16)
    raw = whole.read_bytes()
    (tmp_path / "cut.fits.fz").write_bytes(raw[:len(raw) - 4000])
    assert read_cutout(whole)[0].shape == (3, 64, 64)
    with pytest.raises(ImageError, match=r"cut.fits.fz: truncated FITS \(\d+ bytes on disk"):
        read_cutout(tmp_path / "cut.fits.fz")


def _rice(path, data, quantize_level):
    header = fits.Header({"BANDS": "grz"})
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header, compression_type="RICE_1",
                                                       quantize_level=quantize_level)]).writeto(path)
    return path


def test_quantised_zero_sky_pixels_are_not_missing_coverage_but_blank_blocks_are(tmp_path):
    sky = np.random.default_rng(6).normal(0, 0.01, (3, 64, 64)).astype(np.float32)
    sky[:, 28:36, 28:36] += 2.0
    coarse = _rice(tmp_path / "coarse.fits.fz", sky, quantize_level=1)
    assert (read_cutout(coarse)[0] == 0).mean() > 0.2                        # a third of the sky comes back as 0.0
    _, info = inspect_image(coarse, 64)                                      # the default limit 0.2
    assert info.quantised and info.masked_fraction < 0.01
    half = sky.copy()
    half[:, :, :32] = 0.0
    with pytest.raises(ImageError, match=r"masked fraction 0\.5"):
        inspect_image(_rice(tmp_path / "half.fits.fz", half, quantize_level=1), 64)


@needs_real
def test_real_cutouts_gzipped_or_rice_compressed_read_like_the_originals(tmp_path):
    source = WILLETTK / "example_a.fits"
    (tmp_path / "a.fits.gz").write_bytes(gzip.compress(source.read_bytes()))
    _, gz_info = inspect_image(tmp_path / "a.fits.gz", 128)
    _, plain_info = inspect_image(source, 128)
    assert gz_info.masked_fraction == plain_info.masked_fraction
    with fits.open(source) as hdul:
        data, header = hdul[0].data.astype(np.float32), hdul[0].header
    for level in (1, 16):
        rice = tmp_path / f"a_q{level}.fits.fz"
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header, compression_type="RICE_1",
                                                           quantize_level=level)]).writeto(rice)
        _, info = inspect_image(rice, 128)
        assert info.quantised and info.masked_fraction < 0.02, (level, info.masked_fraction)   # 12% before


# ----------------------------------------------------------------------------- case 14 and --image-size
def test_a_file_name_with_a_line_break_is_rejected_and_the_list_stays_one_path_per_line(tmp_path):
    folder = tmp_path / "images"
    paths = make_cutouts(folder, 2, 64)
    broken = folder / "J1\nbroken.fits"
    paths[1].rename(broken)
    assert _run(folder, tmp_path / "run") == 0
    assert _listed(tmp_path / "run") == [str(paths[0])]
    assert "line break" in _reasons(tmp_path / "run")[str(broken)]


def test_an_image_size_the_vae_cannot_take_is_refused_by_make_datatxt(tmp_path, capsys):
    make_cutouts(tmp_path / "images", 1, 64)
    with pytest.raises(SystemExit):
        _run(tmp_path / "images", tmp_path / "run", size=32)
    assert "multiple of 64" in capsys.readouterr().err
    assert not (tmp_path / "run" / "train.txt").exists()
