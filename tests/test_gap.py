"""Part II on a survey gap: the mock's gap knob (0 identical surveys .. 1 realistic north .. 2 harsher),
its north artefacts, correlated BASS noise, and the gap sweep pipeline on a tiny mock made here."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import Galaxy_VAE_n
from transfer import gap_sweep
from VAE_model import provenance, runfiles
from VAE_model.adaptation import mmd2
from VAE_model.data import write_train_list
from VAE_model.features import encode_arrays
from VAE_model.imageio import PIXEL_SCALE_ARCSEC, load_image, read_raw
from VAE_model.mock import (
    NORTH_ARTEFACT_KINDS,
    add_north_artefact,
    build_mock_survey,
    draw_survey_image,
)

N_GALAXIES, SIZE = 24, 64
TINY_TRAIN = ["--image-size", "64", "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--latent-dim", "8",
              "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A tiny mock (every galaxy in the north, no shared defects), a tiny Part I model trained on its
    DECaLS images (the default, pose-separated), a tiny plain VAE (--pose none) in a side run as the
    reference, and the gap sweep of every method at gaps 0 and 2 (which renders the north at both)."""
    root = tmp_path_factory.mktemp("gap")
    mock = root / "mock"
    build_mock_survey(mock, N_GALAXIES, SIZE, seed=3, workers=1, progress=False, defect_fraction=0.0,
                      north_fraction=1.0)
    run = root / "run"
    run.mkdir()
    write_train_list(run, sorted((mock / runfiles.MOCK_DECALS_IMAGES).glob("*.fits")))
    torch.manual_seed(0)
    assert Galaxy_VAE_n.main(["--run", str(run), *TINY_TRAIN]) == 0
    plain = root / "plain"
    plain.mkdir()
    write_train_list(plain, sorted((mock / runfiles.MOCK_DECALS_IMAGES).glob("*.fits")))
    assert Galaxy_VAE_n.main(["--run", str(plain), *TINY_TRAIN, "--pose", "none"]) == 0
    table = gap_sweep.run_sweep(run, mock, [0.0, 2.0], seed=0, settings={"epochs": 1, "batch_size": 8, "lr": 1e-3},
                                n_boot=30, workers=1, progress=False, log=lambda *a: None,
                                reference_checkpoint=plain / runfiles.BEST_CHECKPOINT)
    return {"root": root, "mock": mock, "run": run, "plain": plain, "table": table,
            "mocks": {g: run / gap_sweep.SWEEP_DIR / gap_sweep.gap_label(g) / "mock" for g in (0.0, 2.0)}}


def _pairs(folder):
    truth = pd.read_parquet(folder / runfiles.MOCK_TRUTH)
    return truth[truth["in_bass_footprint"]].sort_values("galaxy_id").reset_index(drop=True)


def _latents(model, pairs):
    decals = np.stack([load_image(path, SIZE) for path in pairs["decals_path"]])
    north = np.stack([load_image(path, SIZE) for path in pairs["bass_path"]])
    mu_d, _ = encode_arrays(model, decals, "cpu")
    mu_n, _ = encode_arrays(model, north, "cpu")
    return mu_d, mu_n


def test_at_gap_zero_the_north_image_differs_from_decals_only_by_noise(sweep):
    folder = sweep["mocks"][0.0]
    truth = _pairs(folder)
    assert len(truth) == N_GALAXIES and (truth["gap"] == 0).all()
    for band in "grz":
        assert np.allclose(truth[f"psf_fwhm_bass_{band}"], truth[f"psf_fwhm_decals_{band}"])
        assert np.allclose(truth[f"noise_sigma_bass_{band}"], truth[f"noise_sigma_decals_{band}"])
    chis = []
    for _, row in truth.iterrows():
        decals = read_raw(folder / "decals" / f"{row['decals_iauname']}.fits")
        north = read_raw(folder / "bass_mzls" / f"{row['bass_iauname']}.fits")
        sigma = np.array([row[f"noise_sigma_decals_{b}"] for b in "grz"])
        chis.append((north - decals) / (np.sqrt(2) * sigma[:, None, None]))
    chi = np.stack(chis)
    # the difference is pure noise: mean 0, unit variance after dividing by the two images' sigma
    assert abs(chi.mean()) < 0.02 and 0.95 < chi.std() < 1.05
    assert np.abs(chi.mean(axis=(0, 2, 3))).max() < 0.03      # no band carries a signal difference


def test_at_gap_zero_the_latent_mmd_is_at_the_permutation_noise_floor(sweep):
    """Swap the two images of random galaxies: at gap 0 the observed MMD is a typical swap's; at
    gap 2 it is larger than at gap 0."""
    from VAE_model.runtime import load_model

    model = load_model(sweep["run"] / runfiles.BEST_CHECKPOINT)
    observed, floors = {}, {}
    for gap, folder in sweep["mocks"].items():
        pairs = pd.read_csv(folder.parent / "pairs.csv")          # the galaxies usable at every gap
        mu_d, mu_n = (torch.from_numpy(m) for m in _latents(model, pairs))
        observed[gap] = float(mmd2(mu_d, mu_n))
        rng = np.random.default_rng(0)
        null = []
        for _ in range(200):
            swap = torch.from_numpy(rng.uniform(size=len(mu_d)) < 0.5)[:, None]
            null.append(float(mmd2(torch.where(swap, mu_n, mu_d), torch.where(swap, mu_d, mu_n))))
        floors[gap] = np.mean(np.array(null) >= observed[gap])
    assert floors[0.0] > 0.05, floors                     # gap 0: not distinguishable from swapping
    assert observed[2.0] > observed[0.0], observed


def test_no_transfer_cross_survey_metrics_get_worse_as_the_gap_grows(sweep):
    table = sweep["table"]
    none = table[table["method"] == "none"].pivot(index="metric", columns="gap", values="value")
    assert none.loc["paired / random distance ratio", 2.0] > none.loc["paired / random distance ratio", 0.0]
    assert none.loc["retrieval median rank", 2.0] >= none.loc["retrieval median rank", 0.0]
    assert none.loc["retrieval top-1", 2.0] <= none.loc["retrieval top-1", 0.0]
    # the DECaLS side is the same at every gap: same reconstruction error without transfer
    mse = none.loc["DECaLS recon MSE/pixel (test)"]
    assert mse[0.0] == pytest.approx(mse[2.0], rel=1e-6)


def test_gap_sweep_writes_table_json_and_figures_with_intervals(sweep):
    out = sweep["run"] / gap_sweep.SWEEP_DIR
    table = pd.read_csv(out / "gap_sweep.csv")
    assert set(table["method"]) == set(gap_sweep.METHODS) and set(table["gap"]) == {0.0, 2.0}
    assert set(table["metric"]) == set(gap_sweep.SWEEP_METRICS)
    finite = table.dropna(subset=["value", "ci95_low", "ci95_high"])
    assert len(finite) >= 0.5 * len(table)
    assert (finite["ci95_low"] <= finite["value"] + 1e-9).all() and (finite["value"] <= finite["ci95_high"] + 1e-9).all()
    record = json.loads((out / "gap_sweep.json").read_text())
    assert record["settings"]["gaps"] == [0.0, 2.0] and len(record["rows"]) == len(table)
    for name in ("gap_sweep.png", "gap_examples.png"):
        assert (out / name).stat().st_size > 1000
    for name in ("gap_sweep.csv", "gap_sweep.json", "gap_sweep.png", "gap_examples.png"):   # the stage contract
        assert provenance.problem(sweep["run"], f"{gap_sweep.SWEEP_DIR}/{name}", "transfer/gap_sweep.py") is None
    for gap in (0.0, 2.0):                          # every adapted model was trained and kept
        for method in gap_sweep.ADAPTED:
            assert (out / gap_sweep.gap_label(gap) / runfiles.ADAPT_BEST.format(method=method)).exists()


def test_the_sweep_scores_every_method_at_every_gap_in_table_order(sweep):
    """plain no transfer / no transfer / invariant training alone / + MMD / MMD / paired: a row per
    metric for each at each gap; the reference row is the plain model's, not a copy of the Part I one."""
    table = sweep["table"]
    assert list(dict.fromkeys(table["method"])) == list(gap_sweep.METHODS)
    counts = table.groupby(["gap", "method"])["metric"].apply(lambda m: sorted(m))
    assert len(counts) == 2 * len(gap_sweep.METHODS)
    assert all(metrics == sorted(gap_sweep.SWEEP_METRICS) for metrics in counts)
    values = table.pivot_table(index=["gap", "metric"], columns="method", values="value")
    assert not np.allclose(values["plain_none"], values["none"], equal_nan=True)
    record = json.loads((sweep["run"] / gap_sweep.SWEEP_DIR / "gap_sweep.json").read_text())
    assert record["settings"]["methods"] == list(gap_sweep.METHODS)
    assert record["settings"]["reference_model"].endswith("best.pt")
    from VAE_model.runtime import load_checkpoint

    for method in ("consistency", "consistency_mmd"):      # unpaired, with the consistency weight of the sweep
        state = load_checkpoint(sweep["run"] / gap_sweep.SWEEP_DIR / "gap_2" / runfiles.ADAPT_BEST.format(method=method))
        assert state["settings"]["method"] == method and state["settings"]["consistency_weight"] > 0
    assert load_checkpoint(sweep["run"] / gap_sweep.SWEEP_DIR / "gap_2" / runfiles.ADAPT_BEST.format(
        method="consistency_mmd"))["settings"]["align_weight"] == record["settings"]["lambda_mmd"]


def test_methods_selects_the_rows_and_the_reference_row_needs_its_model(sweep, tmp_path, capsys):
    import shutil

    from conftest import one_error_line

    run = tmp_path / "run"
    shutil.copytree(sweep["run"], run)
    common = ["--run", str(run), "--mock-dir", str(sweep["mock"]), "--gaps", "0", "--epochs", "1", "--batch-size", "8",
              "--bootstrap", "10", "--workers", "1", "--device", "cpu", "--quiet"]
    assert gap_sweep.main([*common, "--methods", "plain_none", "none"]) == 1
    assert "--reference-checkpoint" in one_error_line(capsys)
    assert gap_sweep.main([*common, "--methods", "consistency", "none"]) == 0
    table = pd.read_csv(run / gap_sweep.SWEEP_DIR / "gap_sweep.csv")
    assert list(dict.fromkeys(table["method"])) == ["none", "consistency"] and set(table["gap"]) == {0.0}


def test_decals_images_do_not_depend_on_the_gap(sweep):
    names = _pairs(sweep["mock"])["decals_iauname"].head(5)
    for name in names:
        images = [read_raw(folder / "decals" / f"{name}.fits") for folder in (sweep["mock"], *sweep["mocks"].values())]
        assert all(np.array_equal(images[0], other) for other in images[1:])


def test_every_north_artefact_kind_appears_in_the_truth_table_and_only_in_the_north(tmp_path):
    summary = build_mock_survey(tmp_path, 64, 32, seed=1, workers=1, progress=False, defect_fraction=0.0,
                                gap=3.0, north_fraction=0.9)
    truth = pd.read_parquet(tmp_path / runfiles.MOCK_TRUTH)
    for kind in NORTH_ARTEFACT_KINDS:
        column = truth[f"artefact_bass_{kind}"]
        assert column.dtype == bool and column.sum() == summary["n_artefact_bass"][kind] > 0, kind
        assert not column[~truth["in_bass_footprint"]].any()
    outliers = truth[truth["artefact_bass_calibration_offset"]]
    assert (outliers[[f"calibration_outlier_dmag_bass_{b}" for b in "grz"]].max(axis=1) >= 0.3).all()


def test_no_north_artefacts_at_gap_zero(sweep):
    truth = pd.read_parquet(sweep["mocks"][0.0] / runfiles.MOCK_TRUTH)
    assert not truth[[f"artefact_bass_{k}" for k in NORTH_ARTEFACT_KINDS]].to_numpy().any()


@pytest.mark.parametrize("kind", NORTH_ARTEFACT_KINDS)
def test_each_north_artefact_damages_the_image(kind):
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 0.005, (3, 48, 48)).astype(np.float32) + 0.05
    damaged = clean.copy()
    add_north_artefact(damaged, kind, np.random.default_rng(2), np.array([1.6, 1.4, 1.0]), np.full(3, 0.005))
    assert np.isfinite(damaged).all() and np.abs(damaged - clean).max() > 0.004


def test_bass_noise_is_correlated_after_resampling_and_mzls_noise_is_not():
    import galsim

    blank = [galsim.Gaussian(sigma=1.0, flux=1e-12)] * 3
    flux = draw_survey_image(blank, (0.0, 0.0), [1.6, 1.4, 1.0], [0.01, 0.01, 0.01], 64, np.random.default_rng(0),
                             native_pixel_arcsec=(0.454, 0.454, PIXEL_SCALE_ARCSEC))

    def neighbour_correlation(band):
        return np.corrcoef(band[:, :-1].ravel(), band[:, 1:].ravel())[0, 1]

    assert neighbour_correlation(flux[0]) > 0.4 and neighbour_correlation(flux[1]) > 0.4
    assert abs(neighbour_correlation(flux[2])) < 0.1
    # same depth per area: per-pixel sigma drops by about the pixel-size ratio, times the interpolation's smoothing
    assert flux[0].std() < 0.8 * flux[2].std()


def test_gap_outside_the_range_is_refused(tmp_path):
    with pytest.raises(ValueError, match="gap must lie in"):
        build_mock_survey(tmp_path, 2, 32, gap=-1.0, progress=False)
