"""Custom labels and the label-free route: a real-style partial catalog (three vote fractions and a
``ring`` column, no ra/dec) through decals_1 -> decals_2_1 -> decals_5 / decals_3, and decals_3 with
images only (no class_index.csv)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_hand_made_latents

from analysis import decals_1, decals_2_1, decals_3, decals_5
from VAE_model import provenance, runfiles
from VAE_model.data import write_train_list
from VAE_model.imageio import write_fits_cutout

SIZE, N, LATENT = 64, 24, 8


@pytest.fixture
def ring_run(tmp_path):
    """24 FITS cutouts named <iauname>.fits, latents where dimension 0 tells rings apart, a best.pt,
    and a catalog with smooth-or-featured fractions and a ring flag but no positions."""

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    radius = np.hypot(x, y)
    ring = np.arange(N) % 2
    names, paths = [], []
    for i in range(N):
        profile = np.exp(-radius / 4.0) + (0.5 * np.exp(-0.5 * ((radius - 14) / 1.5) ** 2) if ring[i] else 0.0)
        flux = np.stack([profile * c for c in (0.6, 1.0, 1.4)]) + rng.normal(0, 0.01, (3, SIZE, SIZE))
        name = f"J{100000 + i:06d}.00+300000.0"
        path = tmp_path / "images" / f"{name}.fits"
        write_fits_cutout(path, flux.astype(np.float32), {})
        names.append(name)
        paths.append(str(path))
    catalog = pd.DataFrame({"IAUNAME": names, "ring": ring,
                            "smooth-or-featured_smooth_fraction": np.where(ring, 0.2, 0.8),
                            "smooth-or-featured_featured-or-disk_fraction": np.where(ring, 0.75, 0.15),
                            "smooth-or-featured_artifact_fraction": 0.05})
    catalog.loc[0, "ring"] = np.nan                     # unlabelled galaxy
    catalog.to_csv(tmp_path / "rings.csv", index=False)
    run = tmp_path / "run"
    run.mkdir()
    write_train_list(run, paths, SIZE)
    # latents made by hand (dimension 0 tells rings apart), recorded as decals_2_2 records its own
    mu = rng.normal(size=(N, LATENT)).astype(np.float32)
    mu[:, 0] += 4.0 * ring
    write_hand_made_latents(run, mu, paths, SIZE)
    return run, tmp_path / "rings.csv"


def test_label_column_flows_from_the_catalog_to_the_classification_table(ring_run, capsys):
    run, catalog = ring_run
    assert decals_1.main(["--run", str(run), "--catalog", str(catalog), "--label-column", "ring"]) == 0
    out = capsys.readouterr().out
    assert "skipped 7 class questions" in out
    classes = pd.read_csv(run / runfiles.SELECTION_CLASSES_CSV, dtype={"label": str})
    assert set(classes["question"]) == {"smooth-or-featured", "ring"}
    ring = classes[classes["question"] == "ring"]
    assert len(ring) == N - 1 and set(ring["label"]) == {"0", "1"} and ring["ra"].isna().all()
    assert (run / runfiles.SELECTION_DIR / "ring__1.csv").exists()

    assert decals_2_1.main(["--run", str(run), "--quiet"]) == 0      # by name: the catalog has no ra/dec
    index = pd.read_csv(run / runfiles.CLASS_INDEX_CSV)
    assert (index.loc[index["question"] == "ring", "image_index"] >= 0).sum() == N - 1

    assert decals_5.main(["--run", str(run), "--label-column", "ring", "--folds", "3", "--no-cnn", "--no-morphology",
                          "--device", "cpu", "--quiet"]) == 0
    results = pd.read_csv(run / runfiles.CLASSIFICATION_RESULTS_CSV).set_index(["method", "model"])
    assert set(results["question"]) == {"ring"} and (results["n_galaxies"] == N - 1).all()
    assert ("pixel_pca", "random_forest") in results.index and (results["folds"] == 3).all()
    assert results.loc[("latents", "random_forest"), "accuracy_mean"] > 0.8
    assert "RF on pixel PCA" in (run / runfiles.CLASSIFICATION_RESULTS_MD).read_text()

    assert decals_3.main(["--run", str(run), "--methods", "pca", "--thumbnails", "0", "--label-column", "ring"]) == 0
    assert json.loads((run / runfiles.MAPS_CONFIG_JSON).read_text())["coloured_by"] == ["ring"]


def test_a_label_column_not_recorded_by_decals_1_is_named(ring_run, capsys):
    run, catalog = ring_run
    assert decals_1.main(["--run", str(run), "--catalog", str(catalog)]) == 0
    assert decals_2_1.main(["--run", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert decals_5.main(["--run", str(run), "--label-column", "ring", "--no-cnn", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--label-column ring" in err and "decals_1.py" in err
    assert decals_3.main(["--run", str(run), "--methods", "pca", "--thumbnails", "0", "--label-column", "ring"]) == 1
    assert decals_1.main(["--run", str(run), "--catalog", str(catalog), "--label-column", "nope"]) == 1
    assert "--label-column nope: no such column" in capsys.readouterr().err


def test_maps_without_a_catalog_are_drawn_uncoloured(ring_run, capsys):
    run, _ = ring_run
    assert not (run / runfiles.CLASS_INDEX_CSV).exists()
    assert decals_3.main(["--run", str(run), "--methods", "pca", "--thumbnails", "4"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "class_index.csv" in notes[0] and "uncoloured" in notes[0]
    assert (run / runfiles.MAPS_DIR / "pca.png").stat().st_size > 5000
    assert (run / runfiles.MAPS_DIR / "pca_thumbnails.png").exists()
    config = json.loads((run / runfiles.MAPS_CONFIG_JSON).read_text())
    assert config["coloured_by"] == [] and config["class_index_found"] is False


def test_maps_can_be_coloured_by_the_outlier_score(ring_run, capsys):
    run, _ = ring_run
    assert decals_3.main(["--run", str(run), "--methods", "pca", "--thumbnails", "0", "--outlier-score"]) == 1
    assert "analysis/decals_4.py" in capsys.readouterr().err            # scores not computed yet
    runfiles.run_path(run, runfiles.OUTLIER_SCORES_CSV)
    pd.DataFrame({"image_index": range(N), "combined_score": np.linspace(0, 1, N)}).to_csv(
        run / runfiles.OUTLIER_SCORES_CSV, index=False)
    provenance.record(run, [runfiles.OUTLIER_SCORES_CSV], [provenance.Input.file(run / runfiles.LATENT_MU)],
                      "analysis/decals_4.py")
    assert decals_3.main(["--run", str(run), "--methods", "pca", "--thumbnails", "0", "--outlier-score"]) == 0
    assert json.loads((run / runfiles.MAPS_CONFIG_JSON).read_text())["coloured_by"] == ["outlier combined_score"]
