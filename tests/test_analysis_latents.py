"""Latent extraction (analysis/decals_2_2.py) and latent-space maps (analysis/decals_3.py) on a tiny trained VAE."""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from conftest import make_cutouts

import Galaxy_VAE_n
from analysis import decals_1, decals_2_1, decals_2_2, decals_3
from VAE_model import readers, runfiles
from VAE_model.catalog import GZ_QUESTIONS, fraction_column
from VAE_model.data import image_name, write_train_list
from VAE_model.morph_classes import CLASS_QUESTIONS

LATENT_DIM = 8


def vote_catalog(paths, seed: int = 0) -> pd.DataFrame:
    """Galaxy Zoo style fractions for the images: each question's answers drawn from a peaked Dirichlet,
    so most galaxies pass some class threshold."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"iauname": [image_name(str(p)) for p in paths], "ra": 180.0 + 0.01 * np.arange(len(paths)),
                          "dec": 30.0})
    for question, answers in GZ_QUESTIONS.items():
        fractions = rng.dirichlet(np.full(len(answers), 0.3), size=len(paths))
        for k, answer in enumerate(answers):
            table[fraction_column(question, answer)] = fractions[:, k]
    return table


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """48 fake 64 px cutouts, a VAE (latent 8) trained 1 epoch, classes selected and matched, latents extracted."""
    root = tmp_path_factory.mktemp("latents")
    paths = make_cutouts(root / "images", 48, 64)
    run = root / "run"
    run.mkdir()
    write_train_list(run, paths)
    vote_catalog(paths).to_parquet(root / "gz.parquet", index=False)
    common = ["--run", str(run), "--seed", "0", "--device", "cpu"]
    assert Galaxy_VAE_n.main([*common, "--image-size", "64", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3",
                              "--latent-dim", str(LATENT_DIM), "--quiet"]) == 0
    assert decals_1.main([*common, "--catalog", str(root / "gz.parquet")]) == 0
    assert decals_2_1.main([*common, "--quiet"]) == 0
    assert decals_2_2.main([*common, "--quiet"]) == 0
    return run


def test_latents_have_one_row_per_image_and_the_model_latent_dim(trained_run):
    mu = np.load(trained_run / runfiles.LATENT_MU)
    logvar = np.load(trained_run / runfiles.LATENT_LOGVAR)
    assert mu.shape == logvar.shape == (48, LATENT_DIM) and mu.dtype == np.float32
    assert np.isfinite(mu).all() and np.isfinite(logvar).all() and mu.std(axis=0).max() > 0
    names = pd.read_csv(trained_run / runfiles.LATENT_NAMES)
    listed = (trained_run / runfiles.TRAIN_TXT).read_text().split()
    assert list(names["image_index"]) == list(range(48)) and list(names["path"]) == listed
    assert list(names["name"]) == [image_name(p) for p in listed]


def test_per_class_features_are_the_rows_of_mu_given_by_the_class_index(trained_run):
    mu = np.load(trained_run / runfiles.LATENT_MU)
    classes = pd.read_csv(trained_run / runfiles.CLASS_INDEX_CSV)
    assert len(classes) > 10
    for question in CLASS_QUESTIONS:
        class_mu, labels = readers.read_class_features(trained_run, question)
        expected = classes[classes["question"] == question]
        assert class_mu.shape == (len(expected), LATENT_DIM)
        assert sorted(labels["image_index"]) == sorted(expected["image_index"])
        np.testing.assert_array_equal(class_mu, mu[labels["image_index"].to_numpy()])


def test_extraction_is_deterministic(trained_run):
    first = np.load(trained_run / runfiles.LATENT_MU)
    assert decals_2_2.main(["--run", str(trained_run), "--device", "cpu", "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(trained_run / runfiles.LATENT_MU), first)
    # the batch size only changes the grouping, not the features
    assert decals_2_2.main(["--run", str(trained_run), "--device", "cpu", "--quiet", "--batch-size", "7"]) == 0
    np.testing.assert_allclose(np.load(trained_run / runfiles.LATENT_MU), first, rtol=0, atol=1e-5)


def test_maps_write_pngs_and_embeddings(trained_run, capsys):
    assert decals_3.main(["--run", str(trained_run), "--methods", "pca,tsne", "--thumbnails", "20"]) == 0
    maps = trained_run / runfiles.MAPS_DIR
    for name in ("pca.png", "tsne.png", "tsne_thumbnails.png"):
        assert (maps / name).stat().st_size > 10_000, name
    table = pd.read_csv(trained_run / runfiles.MAP_EMBEDDINGS_CSV)
    assert list(table.columns) == ["image_index", "name", "pca_1", "pca_2", "tsne_1", "tsne_2"]
    assert len(table) == 48 and np.isfinite(table[["pca_1", "pca_2", "tsne_1", "tsne_2"]].to_numpy()).all()
    # the PCA map is the projection of mu on its two leading principal axes
    mu = np.load(trained_run / runfiles.LATENT_MU)
    centred = mu - mu.mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(table[["pca_1", "pca_2"]].to_numpy()), np.abs(centred @ top.T), atol=1e-3)
    assert "done:" in capsys.readouterr().out


def test_max_points_subsamples_tsne(trained_run):
    assert decals_3.main(["--run", str(trained_run), "--methods", "tsne", "--max-points", "20", "--thumbnails", "0"]) == 0
    table = pd.read_csv(trained_run / runfiles.MAP_EMBEDDINGS_CSV)
    assert table["tsne_1"].notna().sum() == 20 and list(table.columns)[2:] == ["tsne_1", "tsne_2"]


def test_thumbnail_positions_are_spread_and_distinct():
    rng = np.random.default_rng(1)
    xy = np.vstack([rng.normal(0, 1, (500, 2)), [[np.nan, np.nan]]])
    chosen, n_side = decals_3.spread_points(xy, 50)
    assert 35 <= len(chosen) <= 50 and len(set(chosen)) == len(chosen) and 500 not in chosen
    assert n_side >= decals_3.grid_side(50)


def test_unknown_method_is_an_error(trained_run, capsys):
    assert decals_3.main(["--run", str(trained_run), "--methods", "pca,isomap"]) == 1
    assert "isomap" in capsys.readouterr().err


def test_stage_without_its_inputs_names_the_stage_to_run(tmp_path, capsys):
    assert decals_3.main(["--run", str(tmp_path)]) == 1
    assert "analysis/decals_2_2.py" in capsys.readouterr().err
    write_train_list(tmp_path, ["x.fits"])
    assert decals_2_2.main(["--run", str(tmp_path), "--device", "cpu"]) == 1
    assert "Galaxy_VAE_n.py" in capsys.readouterr().err


@pytest.mark.parametrize("stage", ["decals_1", "decals_2_1", "decals_2_2", "decals_3"])
def test_help_describes_reads_and_writes(stage, capsys):
    module = importlib.import_module(f"analysis.{stage}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "READS" in out and "WRITES" in out and "--run" in out and "--seed" in out
