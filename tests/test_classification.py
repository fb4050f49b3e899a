"""Classification stage: cross-validated scores, classical morphology, and decals_5 end to end."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from VAE_model import runfiles
from VAE_model.classify import (
    NotEnoughClassesError,
    fold_indices,
    mean_rf_accuracy,
    plan_labels,
    score_question,
    score_table,
)
from VAE_model.data import write_train_list
from VAE_model.imageio import write_fits_cutout
from VAE_model.morphology import FEATURE_NAMES, morphology_features, morphology_one

SIZE = 64
C, A, S, GINI, M20, ELL = range(6)


def sersic(size: int, r_eff: float, n: float = 1.0, axis_ratio: float = 1.0, angle: float = 0.3,
           x0: float = 0.0, y0: float = 0.0, amplitude: float = 1.0) -> np.ndarray:
    """Sersic-like profile (b_n ~ 2n - 1/3) on a size x size grid centred at the stamp centre + (x0, y0)."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    u = (x - x0) * np.cos(angle) + (y - y0) * np.sin(angle)
    v = (-(x - x0) * np.sin(angle) + (y - y0) * np.cos(angle)) / axis_ratio
    return amplitude * np.exp(-(2 * n - 1 / 3) * ((np.hypot(u, v) / r_eff) ** (1 / n) - 1))


# ----------------------------------------------------------------------------- classify.py
def test_separable_blobs_score_high_and_random_labels_score_near_chance():
    rng = np.random.default_rng(0)
    labels = np.repeat(["spiral", "elliptical"], 100)
    features = rng.normal(size=(200, 5)) + np.where(labels == "spiral", 2.0, -2.0)[:, None]
    result = score_question(features, labels, folds=5, seed=0)
    assert result["folds"] == 5 and result["n_classes"] == 2 and result["n_galaxies"] == 200
    for model, scores in result["models"].items():
        assert scores["accuracy_mean"] > 0.9, model
        assert scores["macro_f1_mean"] > 0.9, model
        matrix = np.array(scores["confusion"])
        assert matrix.shape == (2, 2) and matrix.sum() == 200     # every galaxy tested exactly once
    assert result["models"]["random_forest"]["classes"] == ["elliptical", "spiral"]

    shuffled = rng.permutation(labels)
    chance = score_question(rng.normal(size=(200, 5)), shuffled, folds=3, seed=0, models=("random_forest", "logistic"))
    for model, scores in chance["models"].items():
        assert scores["accuracy_mean"] < 0.75, model


def test_small_classes_are_dropped_and_folds_reduced_when_needed():
    labels = np.array(["a"] * 20 + ["b"] * 12 + ["c"] * 3)
    plan = plan_labels(labels, folds=5)
    assert plan.folds == 5 and plan.classes == ["a", "b"] and plan.dropped_classes == {"c": 3}
    assert plan.keep.sum() == 32

    plan = plan_labels(np.array(["a"] * 20 + ["b"] * 3), folds=5)
    assert plan.folds == 3 and plan.folds_reduced and plan.classes == ["a", "b"]
    with pytest.raises(NotEnoughClassesError):
        plan_labels(np.array(["a"] * 20 + ["b"]), folds=5)
    with pytest.raises(NotEnoughClassesError):
        plan_labels(np.array(["a"] * 20), folds=5)


def test_fold_indices_are_reproducible_stratified_and_cover_every_galaxy_once():
    labels = np.array(["x"] * 30 + ["y"] * 10)
    first, again, other = fold_indices(labels, 5, seed=1), fold_indices(labels, 5, seed=1), fold_indices(labels, 5, seed=2)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    tested = np.sort(np.concatenate([test for _, test in first]))
    assert np.array_equal(tested, np.arange(40))
    assert all((labels[test] == "y").sum() == 2 for _, test in first)


def test_nan_features_are_imputed_and_score_table_skips_unscorable_questions():
    rng = np.random.default_rng(1)
    labels = np.repeat(["round", "cigar-shaped"], 30)
    features = rng.normal(size=(60, 3)) + np.where(labels == "round", 3.0, 0.0)[:, None]
    features[::7] = np.nan                              # undetected galaxies
    features[:, 2] = np.nan                             # a feature nobody has
    result = score_question(features, labels, folds=3, seed=0, models=("random_forest", "knn", "logistic"))
    assert all(s["accuracy_mean"] > 0.8 for s in result["models"].values())

    class_index = pd.DataFrame({"question": ["how-rounded"] * 60 + ["merger"] * 4,
                                "label": list(labels) + ["merger"] * 4,
                                "image_index": list(range(60)) + [0, 1, 2, 3]})
    table = score_table(np.nan_to_num(features), class_index, folds=3, seed=0)
    assert list(table["question"]) == ["how-rounded"] and list(table["model"]) == ["random_forest"]
    assert mean_rf_accuracy(np.nan_to_num(features), class_index, folds=3) == pytest.approx(table["accuracy_mean"].iloc[0])


# ----------------------------------------------------------------------------- morphology.py
def test_concentrated_round_galaxy_vs_extended_elongated_disk():
    rng = np.random.default_rng(2)
    noise = lambda: rng.normal(0, 0.01, (SIZE, SIZE))  # noqa: E731
    compact = morphology_one(0.2 * sersic(SIZE, 3.0, n=4.0) + noise())
    disk = morphology_one(sersic(SIZE, 10.0, n=1.0, axis_ratio=0.3) + noise())
    assert compact[C] > disk[C] + 0.5            # de Vaucouleurs-like core is more concentrated
    assert compact[ELL] < 0.15 and disk[ELL] > 0.5
    assert compact[M20] < disk[M20]              # bright nucleus: more negative M20
    assert all(np.isfinite(compact)) and all(np.isfinite(disk))


def test_off_centre_companion_raises_asymmetry_and_blank_images_give_nan():
    rng = np.random.default_rng(3)
    galaxy = sersic(SIZE, 6.0, axis_ratio=0.8)
    symmetric = morphology_one(galaxy + rng.normal(0, 0.01, (SIZE, SIZE)))
    disturbed = morphology_one(galaxy + 0.8 * sersic(SIZE, 2.5, x0=10, y0=6) + rng.normal(0, 0.01, (SIZE, SIZE)))
    assert abs(symmetric[A]) < 0.05
    assert disturbed[A] > symmetric[A] + 0.15

    images = np.stack([np.zeros((SIZE, SIZE)), rng.normal(0, 0.01, (SIZE, SIZE)), galaxy]).astype(np.float32)
    features, names = morphology_features(images)
    assert names == list(FEATURE_NAMES) and features.shape == (3, 6)
    assert np.isnan(features[0]).all() and np.isnan(features[1]).all()   # blank, noise only: no detection
    assert np.isfinite(features[2]).all()


# ----------------------------------------------------------------------------- decals_5 end to end
def _fake_run(tmp_path, n_per_class: int = 16):
    """A run directory with round and edge-on galaxies, their class index, latents and a best.pt."""
    from conftest import write_hand_made_latents

    from VAE_model import provenance

    rng = np.random.default_rng(4)
    paths, shape = [], []
    for i in range(2 * n_per_class):
        edge_on = i % 2 == 1
        profile = sersic(SIZE, rng.uniform(6, 9), n=1.0, axis_ratio=0.2 if edge_on else 0.95,
                         angle=rng.uniform(0, np.pi), amplitude=rng.uniform(1, 3))
        flux = np.stack([profile * c for c in (0.6, 1.0, 1.4)]) + rng.normal(0, 0.01, (3, SIZE, SIZE))
        path = tmp_path / "images" / f"J{i:06d}+300000.0.fits"
        write_fits_cutout(path, flux.astype(np.float32), {"RA": 180.0 + i * 0.01, "DEC": 30.0})
        paths.append(str(path))
        shape.append("yes" if edge_on else "no")
    run = tmp_path / "run"
    (run / "latents").mkdir(parents=True)
    write_train_list(run, paths)
    rows = []
    bar = rng.permutation(["no"] * n_per_class + ["weak"] * (n_per_class - 1) + ["strong"])
    for i, path in enumerate(paths):
        rows.append(("edge-on", shape[i], i))
        rows.append(("bar", bar[i], i))            # random labels; 'strong' has 1 member -> dropped
        if i < 6:
            rows.append(("merger", "merger", i))   # a single class -> question skipped
    index = pd.DataFrame(rows, columns=["question", "label", "image_index"])
    index.insert(0, "iauname", [f"J{i:06d}+300000.0" for i in index["image_index"]])
    index.insert(1, "ra", 180.0 + index["image_index"] * 0.01)
    index.insert(2, "dec", 30.0)
    index["image_path"] = [paths[i] for i in index["image_index"]]
    index["sep_arcsec"] = np.nan
    runfiles.run_path(run, runfiles.CLASS_INDEX_CSV)
    index.to_csv(run / runfiles.CLASS_INDEX_CSV, index=False)
    mu = rng.normal(size=(len(paths), 8)).astype(np.float32)
    mu[:, :2] += np.where(np.array(shape) == "yes", 5.0, 0.0)[:, None]
    write_hand_made_latents(run, mu, paths, SIZE)
    provenance.record(run, [runfiles.CLASS_INDEX_CSV], [provenance.Input.file(run / runfiles.TRAIN_TXT)],
                      "analysis/decals_2_1.py")
    return run


def test_decals_5_end_to_end_writes_results_for_scorable_questions(tmp_path):
    from analysis import decals_5

    run = _fake_run(tmp_path)
    assert decals_5.main(["--run", str(run), "--folds", "2", "--cnn-epochs", "1", "--device", "cpu", "--quiet"]) == 0
    results = pd.read_csv(run / runfiles.CLASSIFICATION_RESULTS_CSV)
    assert list(results.columns) == decals_5.RESULT_COLUMNS
    assert set(results["question"]) == {"edge-on", "bar"}           # merger has one class only
    assert len(results) == 2 * 6                        # 3 latent models, pixel-PCA RF, morphology RF, CNN
    expected = {("latents", "random_forest"), ("latents", "knn"), ("latents", "logistic"),
                ("pixel_pca", "random_forest"), ("morphology", "random_forest"), ("cnn", "encoder_cnn")}
    assert set(zip(results["method"], results["model"])) == expected
    edge_on = results[results["question"] == "edge-on"].set_index(["method", "model"])
    assert (edge_on["n_galaxies"] == 32).all() and (edge_on["folds"] == 2).all()
    assert edge_on.loc[("morphology", "random_forest"), "accuracy_mean"] > 0.8   # ellipticity separates them
    assert edge_on.loc[("latents", "random_forest"), "accuracy_mean"] > 0.8
    bar = results[results["question"] == "bar"]
    assert (bar["n_classes"] == 2).all() and (bar["n_galaxies"] == 31).all()     # 'strong' (1 galaxy) dropped
    assert results["accuracy_mean"].between(0, 1).all() and (results["seed"] == 0).all()

    markdown = (run / runfiles.CLASSIFICATION_RESULTS_MD).read_text()
    assert "RF on latents ~ CNN on images" in markdown and "mean accuracy difference" in markdown
    assert "merger" in markdown and "strong (1)" in markdown
    confusion = json.loads((run / runfiles.CLASSIFICATION_CONFUSION_JSON).read_text())
    assert confusion["edge-on"]["latents/random_forest"]["classes"] == ["yes", "no"]   # label schema order
    assert np.sum(confusion["edge-on"]["cnn/encoder_cnn"]["matrix"]) == 32
    assert (run / runfiles.CLASSIFICATION_CONFUSION_PNG.format(question="edge-on")).exists()
    morphology = pd.read_csv(run / runfiles.CLASSIFICATION_MORPHOLOGY_CSV)
    assert list(morphology.columns[2:]) == list(FEATURE_NAMES) and len(morphology) == 32
    # measured on the FITS flux itself (negative sky kept), not on the uint8 cache
    from VAE_model.imageio import read_raw

    paths = (run / runfiles.TRAIN_TXT).read_text().split()
    first = morphology.iloc[0]
    np.testing.assert_allclose(first[list(FEATURE_NAMES)].to_numpy(dtype=float),
                               morphology_one(read_raw(paths[int(first["image_index"])])[1]), rtol=1e-6)
    config = json.loads((run / runfiles.CLASSIFICATION_CONFIG_JSON).read_text())
    assert "merger" in config["questions_skipped"] and config["seed"] == 0
    assert config["pixel_pca_components"] == 8 and "FITS" in config["morphology_input"]
    assert "RF on pixel PCA" in markdown


def test_decals_5_names_the_missing_stage(tmp_path, capsys):
    from analysis import decals_5

    assert decals_5.main(["--run", str(tmp_path / "empty"), "--quiet"]) == 1
    assert "decals_2_1.py" in capsys.readouterr().err
