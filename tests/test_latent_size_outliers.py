"""Latent-size study (analysis/decals_2_3.py), outlier screening (analysis/decals_4.py), metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import Galaxy_VAE_n
from analysis import decals_2_2, decals_2_3, decals_4
from VAE_model import readers, runfiles
from VAE_model.data import write_train_list
from VAE_model.imageio import write_fits_cutout
from VAE_model.latent_size import choose_latent_size, smallest_within_tolerance
from VAE_model.metrics import mse_per_image, rank_normalise, ssim_per_image, top_k_scores
from VAE_model.runtime import load_model

TRAIN = ["--image-size", "64", "--batch-size", "16", "--lr", "1e-3", "--latent-dim", "8", "--quiet"]


# ----------------------------------------------------------------------------- metrics
def test_identical_images_have_ssim_one_and_mse_zero():
    images = np.random.default_rng(0).uniform(0, 1, (3, 3, 32, 32)).astype(np.float32)
    assert np.allclose(ssim_per_image(images, images.copy()), 1.0)
    assert np.allclose(mse_per_image(images, images.copy()), 0.0)
    shifted = np.clip(images + 0.1, 0, 1)
    assert np.all(ssim_per_image(images, shifted) < 1.0)
    assert np.allclose(mse_per_image(images, shifted), ((shifted - images) ** 2).mean(axis=(1, 2, 3)))
    as_uint8 = np.round(images * 255).astype(np.uint8)   # cache slices are uint8 0..255
    assert np.allclose(mse_per_image(as_uint8, as_uint8.astype(np.float32) / 255), 0.0, atol=1e-12)


def test_rank_normalise_and_top_k():
    assert np.allclose(rank_normalise([10.0, 30.0, 20.0]), [0.0, 1.0, 0.5])
    result = top_k_scores([0.9, 0.1, 0.8, 0.2, 0.3], [True, False, False, False, True], k=2)
    assert result["hits"] == 1 and result["precision_at_k"] == 0.5 and result["recall_at_k"] == 0.5
    assert result["random_precision"] == pytest.approx(2 / 5)


# ----------------------------------------------------------------------------- the chosen-size rule
def test_chosen_size_is_smallest_within_tolerance_of_best_mse():
    sizes = [64, 4, 8, 16, 32]                       # any order
    mse = [0.0051, 0.0200, 0.0100, 0.0052, 0.0050]   # levels off from 16; best at 32
    assert smallest_within_tolerance(sizes, mse, 0.05) == 16
    assert smallest_within_tolerance(sizes, mse, 0.01) == 32
    assert smallest_within_tolerance(sizes, mse, 10.0) == 4   # everything within 1000%
    assert smallest_within_tolerance([4, 8, 16], [np.nan, 0.01, 0.0104], 0.05) == 8   # NaN ignored
    with pytest.raises(ValueError):
        smallest_within_tolerance([4, 8], [0.1], 0.05)


def test_chosen_size_weighs_reconstruction_and_downstream_accuracy():
    sizes = [4, 8, 16, 32, 64]
    mse = [0.0039, 0.0027, 0.0024, 0.0025, 0.0025]      # the demo's curve: flat from 16
    accuracy = [0.667, 0.690, 0.700, 0.715, 0.729]      # still rising to 64
    choice = choose_latent_size(sizes, mse, accuracy)
    assert (choice["mse_knee"], choice["rf_knee"], choice["chosen_latent_dim"]) == (16, 64, 64)
    # accuracy flat too: the MSE knee decides
    choice = choose_latent_size(sizes, mse, [0.60, 0.705, 0.71, 0.712, 0.708])
    assert (choice["mse_knee"], choice["rf_knee"], choice["chosen_latent_dim"]) == (16, 8, 16)
    # the smallest size passing BOTH tests, not simply the larger knee
    choice = choose_latent_size([8, 16, 32], [0.010, 0.0100, 0.020], [0.80, 0.70, 0.805])
    assert (choice["mse_knee"], choice["rf_knee"]) == (8, 8) and choice["chosen_latent_dim"] == 8
    # no size passes both: the larger knee, said so
    choice = choose_latent_size([8, 16, 32], [0.010, 0.020, 0.030], [0.60, 0.70, 0.80])
    assert choice["chosen_latent_dim"] == 32 and "no size passes both" in choice["note"]
    # accuracy not measured (all NaN or absent): the MSE test alone, said so in the rule
    for missing in (None, [np.nan] * 5):
        choice = choose_latent_size(sizes, mse, missing)
        assert choice["chosen_latent_dim"] == 16 and choice["rf_knee"] is None and "not measured" in choice["rule"]


# ----------------------------------------------------------------------------- decals_2_3
def test_latent_size_study_writes_one_row_per_size_and_reuses_models(tiny_run, capsys):
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", *TRAIN]) == 0
    argv = ["--run", str(tiny_run), "--latent-sizes", "8,2", "--epochs", "1", "--quiet"]
    assert decals_2_3.main(argv) == 0
    table = pd.read_csv(tiny_run / runfiles.LATENT_SIZE_CSV)
    assert list(table["latent_dim"]) == [2, 8]
    assert {"val_mse_per_pixel", "val_ssim", "rf_accuracy", "epochs", "seed"} <= set(table.columns)
    assert np.all(np.isfinite(table["val_mse_per_pixel"])) and np.all((table["val_ssim"] > -1) & (table["val_ssim"] <= 1))
    summary = json.loads((tiny_run / runfiles.LATENT_SIZE_JSON).read_text())
    assert summary["chosen_latent_dim"] in (2, 8)
    # no class index in this run: the MSE test alone
    assert summary["chosen_latent_dim"] == summary["mse_knee"] == \
        smallest_within_tolerance(table["latent_dim"], table["val_mse_per_pixel"], 0.05)
    assert summary["rf_knee"] is None and summary["arch"] == decals_2_3.TRAINING_DEFAULTS["arch"]
    assert (tiny_run / runfiles.LATENT_SIZE_PNG).exists()
    # the same validation galaxies, reconstructed by each model
    split = json.loads((tiny_run / runfiles.SPLIT_JSON).read_text())
    recon = np.load(tiny_run / runfiles.LATENT_SIZE_RECON_NPZ)
    n_show = min(8, len(split["val"]))
    assert recon["originals"].shape == (n_show, 3, 64, 64)
    assert recon["recon_2"].shape == recon["recon_8"].shape == recon["originals"].shape
    assert sorted(recon["image_index"]) == sorted(split["val"])[:n_show]
    # the latent-8 sub-run used the main run's split and settings: same validation MSE as the main run
    main_mse = pd.read_csv(tiny_run / runfiles.LOSS_CSV)["val_mse_per_pixel"].iloc[-1]
    sub_mse = pd.read_csv(tiny_run / runfiles.LATENT_SIZE_SUBRUN.format(latent_dim=8) / runfiles.LOSS_CSV)
    assert sub_mse["val_mse_per_pixel"].iloc[-1] == pytest.approx(main_mse, rel=1e-4)

    checkpoint = tiny_run / runfiles.LATENT_SIZE_SUBRUN.format(latent_dim=2) / runfiles.CHECKPOINT
    before = checkpoint.stat().st_mtime_ns
    capsys.readouterr()
    assert decals_2_3.main(argv) == 0
    assert checkpoint.stat().st_mtime_ns == before
    assert "reused" in capsys.readouterr().out
    assert list(pd.read_csv(tiny_run / runfiles.LATENT_SIZE_CSV)["status"]) == ["reused", "reused"]


def test_latent_size_study_runs_first_and_feeds_the_main_model(tiny_run, capsys):
    # --latent-dim auto before the study: one line naming the stage to run
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", *TRAIN[:-3], "--latent-dim", "auto", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "run analysis/decals_2_3.py" in err and len(err.strip().splitlines()) == 1
    # the study with no main run: the split Galaxy_VAE_n.py will make, and the main run's settings
    study = ["--run", str(tiny_run), "--latent-sizes", "2,3", "--epochs", "1", "--image-size", "64",
             "--batch-size", "16", "--lr", "1e-3", "--quiet"]
    assert decals_2_3.main(study) == 0
    summary = json.loads((tiny_run / runfiles.LATENT_SIZE_JSON).read_text())
    assert summary["split"]["seed"] == 0 and summary["chosen_latent_dim"] in (2, 3)
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", *TRAIN[:-3], "--latent-dim", "auto", "--quiet"]) == 0
    assert f"--latent-dim auto: {summary['chosen_latent_dim']}" in capsys.readouterr().out
    model = load_model(tiny_run / runfiles.BEST_CHECKPOINT)
    assert model.config.latent_dim == summary["chosen_latent_dim"]
    assert model.config.arch == summary["arch"]
    # the same split and the same training: the sweep's model of that size is the main model
    split = json.loads((tiny_run / runfiles.SPLIT_JSON).read_text())
    sub = tiny_run / runfiles.LATENT_SIZE_SUBRUN.format(latent_dim=summary["chosen_latent_dim"])
    assert json.loads((sub / runfiles.TRAIN_ARGS).read_text())["n_val"] == len(split["val"])
    main_mse = pd.read_csv(tiny_run / runfiles.LOSS_CSV)["val_mse_per_pixel"].iloc[-1]
    assert pd.read_csv(sub / runfiles.LOSS_CSV)["val_mse_per_pixel"].iloc[-1] == pytest.approx(main_mse, rel=1e-4)


# ----------------------------------------------------------------------------- decals_4
def smooth_blob(rng, size: int) -> np.ndarray:
    """A faint, fairly uniform elliptical galaxy (nanomaggies): the 'normal' population."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    angle, axis_ratio = rng.uniform(0, np.pi), rng.uniform(0.6, 1.0)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / axis_ratio
    profile = np.exp(-0.5 * (u ** 2 + v ** 2) / (0.07 * size) ** 2)
    colour = np.array([0.6, 1.0, 1.4]) * rng.uniform(0.8, 1.2)
    return (3.0 * colour[:, None, None] * profile[None] + rng.normal(0, 0.01, (3, size, size))).astype(np.float32)


def add_defect(image: np.ndarray, kind: str, rng) -> np.ndarray:
    size = image.shape[-1]
    y, x = np.mgrid[:size, :size]
    if kind == "satellite_trail":     # a bright streak across the cutout in one band
        angle = rng.uniform(0, np.pi)
        distance = np.abs(-(x - size / 2) * np.sin(angle) + (y - size / 2) * np.cos(angle))
        image[rng.integers(3)] += 30.0 * np.exp(-0.5 * (distance / 1.5) ** 2)
    elif kind == "calibration":       # one band 5x too bright (a bad zero point); a band missing over half
        image[rng.integers(3)] *= 5.0   # the cutout is no defect to find here: make_datatxt rejects it
    elif kind == "saturated_star":    # a bright star off-centre
        xs, ys = rng.uniform(8, 20, 2)
        image += 80.0 * np.exp(-0.5 * ((x - xs) ** 2 + (y - ys) ** 2) / 2.0 ** 2)
    elif kind == "bad_pixels":        # a hot CCD column
        image[rng.integers(3), :, rng.integers(5, size - 5)] = 30.0
    return image


def test_outlier_screening_finds_planted_defects_better_than_random(tmp_path, capsys):
    rng = np.random.default_rng(0)
    defects = {5: "satellite_trail", 17: "calibration", 26: "saturated_star", 38: "bad_pixels"}
    paths, truth = [], []
    for i in range(44):
        name = f"J{i:06d}+300000.0"
        image = smooth_blob(rng, 64)
        if i in defects:
            image = add_defect(image, defects[i], rng)
        paths.append(tmp_path / "images" / f"{name}.fits")
        write_fits_cutout(paths[-1], image, {"RA": 180.0, "DEC": 30.0})
        truth.append({"galaxy_id": i, "decals_iauname": name, "defect_decals": defects.get(i, "")})
    truth.append({"galaxy_id": 99, "decals_iauname": "J999999+300000.0", "defect_decals": "bad_pixels"})  # no image
    pd.DataFrame(truth).to_parquet(tmp_path / "truth.parquet")
    run = tmp_path / "run"
    run.mkdir()
    write_train_list(run, paths)
    # missing latents: one clear error naming the stage that writes them
    assert decals_4.main(["--run", str(run), "--quiet"]) == 1
    assert "decals_2_2.py" in capsys.readouterr().err

    assert Galaxy_VAE_n.main(["--run", str(run), "--epochs", "3", "--batch-size", "8", "--lr", "1e-3",
                              "--image-size", "64", "--latent-dim", "8", "--quiet"]) == 0
    assert decals_2_2.main(["--run", str(run), "--skip-classes", "--quiet"]) == 0
    assert decals_4.main(["--run", str(run), "--mock-dir", str(tmp_path), "--quiet"]) == 0
    scores = pd.read_csv(run / runfiles.OUTLIER_SCORES_CSV)
    assert list(scores.columns) == decals_4.SCORE_COLUMNS and "path" not in scores.columns   # no path per row
    with_paths = readers.read_outlier_scores(run, paths=True)      # the path of each row, from train.txt
    listed = (run / runfiles.TRAIN_TXT).read_text().split()
    assert list(with_paths["path"]) == [listed[i] for i in with_paths["image_index"]]
    assert [Path(p).stem for p in with_paths["path"]] == list(with_paths["name"].astype(str))
    assert len(scores) == 44 and list(scores["rank"]) == list(range(1, 45))
    assert scores["combined_score"].is_monotonic_decreasing
    assert (run / runfiles.OUTLIER_GALLERY_PNG).exists()
    result = json.loads((run / runfiles.DEFECT_SCORES_JSON).read_text())
    assert result["k"] == 4 and result["n_images"] == 44
    assert result["random_expectation"] == pytest.approx(4 / 44)
    assert set(result["methods"]) == {"iforest", "lof", "recon_mse", "combined"}
    assert result["methods"]["combined"]["precision_at_k"] > result["random_expectation"]
    assert len(pd.read_csv(run / runfiles.DEFECT_SCORES_CSV)) == 4

    # without a truth table: scores still written, defect scoring skipped with a note
    (run / runfiles.DEFECT_SCORES_JSON).unlink()
    assert decals_4.main(["--run", str(run), "--mock-dir", "none", "--quiet"]) == 0
    assert "no mock-survey truth table" in capsys.readouterr().out
    assert not (run / runfiles.DEFECT_SCORES_JSON).exists()


def test_latent_size_classification_score_averages_the_chosen_questions_and_refuses_unknown_ones():
    import torch

    from VAE_model.models import VAE, VAEConfig
    from VAE_model.runtime import pick_precision

    rng = np.random.default_rng(0)
    cache = rng.integers(0, 255, (40, 3, 64, 64)).astype(np.uint8)
    rows = [{"image_index": i, "question": q, "label": ["a", "b"][i % 2]}
            for q in ("smooth-or-featured", "edge-on", "bar") for i in range(40)]
    class_index = pd.DataFrame(rows)
    model = VAE(VAEConfig(latent_dim=4, image_size=64, pose="none")).eval()
    device = torch.device("cpu")
    precision = pick_precision(device, "off")
    _, per_question, _ = decals_2_3.classification_score(model, cache, class_index, device, precision, 2, 0,
                                                         ["edge-on", "bar"])
    assert sorted(per_question) == ["bar", "edge-on"]
    with pytest.raises(ValueError, match="--questions spiral: not a question of class_index.csv"):
        decals_2_3.classification_score(model, cache, class_index, device, precision, 2, 0, ["spiral"])
