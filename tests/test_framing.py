"""make_datatxt --frame: the one loader crops each cutout to its galaxy before resizing, the crop box
travels with the run (images.csv, the records, the decode-once cache), and bad framing input is one line."""
import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_error_line

import make_datatxt
from VAE_model import provenance, readers, runfiles
from VAE_model.data import image_cache, read_image_list
from VAE_model.framing import CropBox, Framing, FramingError, frame_box, light_moments
from VAE_model.stage import Stage
from VAE_model.imageio import image_stem, load_image, write_fits_cutout

REAL_SDSS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "sdss_spirals_morphml"


def small_galaxy(size: int = 256, sigma: float = 6.0, centre=(150.0, 110.0), axis_ratio: float = 1.0,
                 seed: int = 0) -> np.ndarray:
    """(3, size, size) nanomaggies: one Gaussian galaxy of ``sigma`` px (major axis along x) off-centre
    at (x, y) = ``centre`` in a large frame of sky noise."""
    y, x = np.mgrid[:size, :size].astype(float)
    profile = np.exp(-0.5 * (((x - centre[0]) / sigma) ** 2 + ((y - centre[1]) / (sigma * axis_ratio)) ** 2))
    noise = np.random.default_rng(seed).normal(0, 0.005, (3, size, size))
    return (np.array([1.0, 2.0, 3.0])[:, None, None] * profile[None] + noise).astype(np.float32)


def write(folder: Path, name: str, flux: np.ndarray, cards=None) -> Path:
    path = folder / f"{name}.fits"
    write_fits_cutout(path, flux, cards or {})
    return path


def run_datatxt(images, run, *flags) -> int:
    return make_datatxt.main(["--images", str(images), "--run", str(run), "--image-size", "64", "--workers", "1",
                              "--quiet", *flags])


def image_rows(run) -> dict:
    with open(Path(run) / runfiles.IMAGES_CSV) as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def test_moments_frame_a_small_galaxy_so_it_fills_the_crop(tmp_path):
    """A sigma = 6 px galaxy off-centre in a 256 px frame: before framing its light radius is 2% of the
    side; framed it sits at the crop's centre with a light radius of 1/k of the side."""
    path = write(tmp_path, "J000000+000000.0", small_galaxy())
    whole = load_image(path, 64)
    framing = Framing("moments")
    framed = load_image(path, 64, frame=framing)
    before, after = light_moments(whole), light_moments(framed)
    assert before.radius / 64 < 0.04
    assert after.radius / 64 == pytest.approx(1 / framing.k, rel=0.15)
    assert (after.x, after.y) == pytest.approx((31.5, 31.5), abs=0.6)
    # the box itself: centred on the galaxy (native px, FITS orientation), side k x its light radius
    box, source, radius = frame_box(load_image(path, None), framing)
    assert source == "moments" and (box.x, box.y) == pytest.approx((150, 110), abs=0.6)
    # (the radius is measured on the stretched image the network sees: the asinh stretch lifts the wings)
    assert box.side == pytest.approx(framing.k * radius, abs=1) and 6.0 < radius < 12.0


def test_an_edge_on_galaxy_is_framed_along_its_major_axis():
    flux = small_galaxy(sigma=10.0, centre=(127.5, 127.5), axis_ratio=0.25)
    from VAE_model.imageio import asinh_stretch

    moments = light_moments(asinh_stretch(flux))
    assert moments.radius > 2.5 * moments.minor      # the light radius is the major axis' sigma
    box, _, _ = frame_box(asinh_stretch(flux), Framing("moments"))
    assert box.side >= 6 * moments.radius - 1


def test_center_crop_has_exact_geometry(tmp_path):
    """--frame center --frame-fraction 0.5 of a 128 px cutout keeps rows/columns 32..95 exactly."""
    flux = np.random.default_rng(3).uniform(0.0, 5.0, (3, 128, 128)).astype(np.float32)
    path = write(tmp_path, "J000001+000000.0", flux)
    framed = load_image(path, None, frame=Framing("center", fraction=0.5))
    assert framed.shape == (3, 64, 64)
    np.testing.assert_array_equal(framed, load_image(path, None)[:, 32:96, 32:96])
    box, source, _ = frame_box(load_image(path, None), Framing("center", fraction=0.5))
    assert (box.x, box.y, box.side, source) == (63.5, 63.5, 64, "center")
    # the recorded box gives the same pixels as the rule
    np.testing.assert_array_equal(load_image(path, 64, frame=box), load_image(path, 64, frame=Framing("center", fraction=0.5)))


def test_catalog_radius_in_arcsec_with_a_known_pixel_scale_gives_the_box(tmp_path, capsys):
    """A 3 arcsec radius at 0.2 arcsec/px (the FITS PIXSCALE) is 15 px: side = factor x 15 px, centred on
    the galaxy; a galaxy without a catalog value is framed by its moments and counted."""
    images = tmp_path / "images"
    images.mkdir()
    write(images, "J000002+000000.0", small_galaxy(centre=(120.0, 140.0)), {"PIXSCALE": 0.2})
    write(images, "J000003+000000.0", small_galaxy(seed=1), {"PIXSCALE": 0.2})
    catalog = tmp_path / "radii.csv"
    pd.DataFrame({"iauname": ["J000002+000000.0", "J000003+000000.0"], "petroR50_r": [3.0, None]}).to_csv(catalog, index=False)
    run = tmp_path / "run"
    assert run_datatxt(images, run, "--frame", "catalog", "--frame-catalog", str(catalog),
                       "--frame-radius-column", "petroR50_r", "--frame-radius-factor", "4") == 0
    rows = image_rows(run)
    with_radius, without = rows["J000002+000000.0"], rows["J000003+000000.0"]
    assert with_radius["frame_source"] == "catalog" and float(with_radius["catalog_radius_arcsec"]) == 3.0
    assert float(with_radius["crop_side_px"]) == 4 * 3.0 / 0.2
    assert float(with_radius["crop_x_px"]) == pytest.approx(120, abs=0.6)
    assert float(with_radius["crop_y_px"]) == pytest.approx(140, abs=0.6)
    assert without["frame_source"] == "moments_fallback"
    summary = json.loads((run / runfiles.DATATXT_SUMMARY).read_text())
    assert summary["framing"]["n_no_catalog_radius"] == 1
    assert summary["framing"]["radius_column"] == "petroR50_r"
    assert "1 of 2 images have no petroR50_r value" in capsys.readouterr().out
    # the framing is in the provenance records of make_datatxt's outputs
    assert provenance.read_record(run, runfiles.TRAIN_TXT)["settings"]["framing"]["mode"] == "catalog"


@pytest.mark.parametrize("flags, expected", [
    (["--frame", "center", "--frame-fraction", "0"], "--frame-fraction 0.0: must lie in (0, 1]"),
    (["--frame", "center", "--frame-fraction", "1.5"], "--frame-fraction 1.5: must lie in (0, 1]"),
    (["--frame", "catalog", "--frame-catalog", "{catalog}", "--frame-radius-column", "petroR90_r"],
     "{catalog}: missing columns petroR90_r"),
    (["--frame", "catalog", "--frame-catalog", "{catalog}", "--frame-radius-column", "petroR50_r"],
     "{catalog}: column petroR50_r is not numeric (1 values such as 'big')"),
    (["--frame", "catalog", "--frame-radius-column", "petroR50_r"], "--frame catalog needs --frame-catalog FILE"),
])
def test_bad_framing_input_is_one_line_naming_the_file_and_column(tmp_path, capsys, flags, expected):
    images = tmp_path / "images"
    images.mkdir()
    write(images, "J000004+000000.0", small_galaxy(size=64, sigma=4, centre=(30, 30)))
    catalog = tmp_path / "radii.csv"
    pd.DataFrame({"iauname": ["J000004+000000.0", "J1"], "petroR50_r": ["2.5", "big"]}).to_csv(catalog, index=False)
    flags = [f.format(catalog=catalog) for f in flags]
    assert run_datatxt(images, tmp_path / "run", *flags) == 1
    line = one_error_line(capsys)
    assert expected.format(catalog=catalog) in line
    assert not (tmp_path / "run" / runfiles.TRAIN_TXT).exists()


def test_the_cache_and_later_stages_see_the_framed_image_and_rebuild_when_the_framing_changes(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    paths = [write(images, f"J00001{i}+000000.0", small_galaxy(centre=(100.0 + 20 * i, 140.0), seed=i))
             for i in range(2)]
    run = tmp_path / "run"
    cache_dir = run / runfiles.CACHE_DIR
    assert run_datatxt(images, run) == 0                    # the default: no framing, no framing columns
    assert "crop_side_px" not in (run / runfiles.IMAGES_CSV).read_text().splitlines()[0]
    whole = np.array(image_cache(run / runfiles.TRAIN_TXT, 64, cache_dir, progress=False))
    meta_path = cache_dir / "train_64px" / "meta.json"
    assert "framing" not in json.loads(meta_path.read_text())
    assert readers.read_framing(run / runfiles.TRAIN_TXT, read_image_list(run / runfiles.TRAIN_TXT)) is None

    assert run_datatxt(images, run, "--frame", "moments") == 0
    framed = np.array(image_cache(run / runfiles.TRAIN_TXT, 64, cache_dir, progress=False))
    assert json.loads(meta_path.read_text())["framing"]["settings"] == {"mode": "moments", "k": 6.0}
    # the cache holds the framed image, pixel for pixel what the loader gives with the recorded box
    rows = image_rows(run)
    for i, path in enumerate(read_image_list(run / runfiles.TRAIN_TXT)):
        row = rows[image_stem(path)]
        box = CropBox(float(row["crop_x_px"]), float(row["crop_y_px"]), int(float(row["crop_side_px"])))
        expected = np.round(load_image(path, 64, frame=box) * 255).astype(np.uint8)
        np.testing.assert_array_equal(framed[i], expected)
    assert light_moments(framed[0] / 255.0).radius > 4 * light_moments(whole[0] / 255.0).radius
    # a stage that reads the cache records images.csv (the crop boxes) among its inputs
    with Stage(run, "analysis/some_stage.py") as stage:
        image_cache(run / runfiles.TRAIN_TXT, 64, cache_dir, progress=False)
        stage.output("made_from_cache.txt").write_text("features of the framed images")
    assert provenance.problem(run, "made_from_cache.txt", "analysis/some_stage.py") is None

    # another framing rebuilds the cache, and what was made from the old one is out of date
    assert run_datatxt(images, run, "--frame", "center", "--frame-fraction", "0.5") == 0
    assert "images.csv changed" in provenance.problem(run, "made_from_cache.txt", "analysis/some_stage.py")
    centred = np.array(image_cache(run / runfiles.TRAIN_TXT, 64, cache_dir, progress=False))
    assert json.loads(meta_path.read_text())["framing"]["settings"] == {"mode": "center", "fraction": 0.5}
    np.testing.assert_array_equal(centred[0], np.round(load_image(paths[0], 64, frame=Framing("center", 0.5)) * 255))


def test_a_list_in_a_run_sub_folder_is_framed_by_the_run_rule(tmp_path):
    """A transfer list (RUN/transfer/*.txt) holding an image images.csv does not know is framed by the
    run's rule, measured on that image, like the listed images."""
    from VAE_model.imagelist import write_image_list

    images, other = tmp_path / "images", tmp_path / "other"
    images.mkdir(), other.mkdir()
    write(images, "J000020+000000.0", small_galaxy())
    stranger = write(other, "J000021+000000.0", small_galaxy(centre=(90.0, 170.0), seed=4))
    run = tmp_path / "run"
    assert run_datatxt(images, run, "--frame", "moments") == 0
    list_path = run / "transfer" / "bass_pairs.txt"
    list_path.parent.mkdir()
    write_image_list([str(stranger)], list_path)
    cache = image_cache(list_path, 64, run / runfiles.CACHE_DIR, progress=False)
    expected = np.round(load_image(stranger, 64, frame=Framing("moments")) * 255).astype(np.uint8)
    np.testing.assert_array_equal(cache[0], expected)


@pytest.mark.skipif(not REAL_SDSS.is_dir(), reason=f"real SDSS JPEGs not present ({REAL_SDSS}): see "
                                                      "../shared/realdata/README.md; a fresh clone has none")
def test_moments_framing_of_real_sdss_jpegs_puts_the_light_radius_at_one_kth_of_the_side():
    """On 12 real SDSS spirals (120 px, 0.2"/px), the framed 64 px image's light radius is near 1/k of its
    side unless the galaxy already overfills the frame (the crop is clipped to the image)."""
    framing = Framing("moments")
    files = sorted(REAL_SDSS.glob("*.jpg"))[:12]
    for path in files:
        whole = load_image(path, None)
        box, source, radius = frame_box(whole, framing)
        assert source == "moments" and 8 <= box.side <= whole.shape[-1]
        after = light_moments(load_image(path, 64, frame=box)).radius / 64
        if framing.k * radius < whole.shape[-1] - 2:        # not clipped: the galaxy fills the crop as asked
            assert after == pytest.approx(1 / framing.k, rel=0.35)


def test_a_box_that_does_not_fit_the_file_is_refused_in_one_line(tmp_path):
    """A box recorded for a larger cutout (the file replaced by a smaller one) never crops silently."""
    from VAE_model.imageio import ImageError

    path = write(tmp_path, "J000030+000000.0", small_galaxy(size=64, sigma=4, centre=(30, 30)))
    with pytest.raises(ImageError, match=r"J000030\+000000\.0\.fits: crop box .* lies outside the 64x64 image"):
        load_image(path, 64, frame=CropBox(150.0, 110.0, 57))
    with pytest.raises(FramingError, match=r"--frame-fraction 0\.0: must lie in \(0, 1\]"):
        Framing("center", fraction=0.0)


def test_a_model_trained_on_framed_images_frames_the_files_it_encodes_later(tmp_path):
    import torch

    from VAE_model import api
    from VAE_model.config import VAEConfig
    from VAE_model.models import VAE

    images = tmp_path / "images"
    images.mkdir()
    path = write(images, "J000010+000000.0", small_galaxy(centre=(100.0, 140.0)))
    run = tmp_path / "run"
    assert run_datatxt(images, run, "--frame", "moments") == 0
    list_path = run / runfiles.TRAIN_TXT
    framing = readers.model_framing(list_path, read_image_list(list_path))
    assert Framing.from_json(framing) == Framing("moments")
    assert readers.model_framing(list_path, []) == framing
    torch.manual_seed(0)
    framed_model = VAE(VAEConfig(latent_dim=4, image_size=64, pose="none", framing=framing)).eval()
    whole_model = VAE(VAEConfig(latent_dim=4, image_size=64, pose="none")).eval()
    whole_model.load_state_dict(framed_model.state_dict())
    cache = np.array(image_cache(list_path, 64, run / runfiles.CACHE_DIR, progress=False))
    with torch.no_grad():
        expected = framed_model.encode(torch.from_numpy(cache).float() / 255)[0].numpy()
    framed = api.encode(framed_model, path, progress=False)
    whole = api.encode(whole_model, path, progress=False)
    mu = framed[[c for c in framed.columns if c.startswith("mu_")]].to_numpy()
    # the file is framed as the run framed it (moments, measured on the file: the same box)
    np.testing.assert_allclose(mu, expected, atol=1e-4)
    assert not np.allclose(whole[[c for c in whole.columns if c.startswith("mu_")]].to_numpy(), expected, atol=1e-3)
    # a checkpoint keeps the framing (VAEConfig round trip)
    assert VAEConfig.from_dict(framed_model.config.to_dict()).framing == framing
