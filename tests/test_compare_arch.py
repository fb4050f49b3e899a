"""bench/compare_arch.py trains both architectures on one split and writes one row per architecture."""
from __future__ import annotations

import json
import math

import pandas as pd

from bench import compare_arch
from VAE_model import runfiles
from VAE_model.data import image_name, read_image_list


def test_compare_arch_writes_one_comparable_row_per_architecture(tiny_run, tmp_path, capsys):
    paths = read_image_list(tiny_run / runfiles.TRAIN_TXT)
    mock = tmp_path / "mock"
    mock.mkdir()
    types = ["smooth_round", "spiral"]
    pd.DataFrame({"decals_iauname": [image_name(p) for p in paths],
                  "morph_type": [types[i % 2] for i in range(len(paths))]}).to_parquet(mock / runfiles.MOCK_TRUTH)
    out = tmp_path / "compare"
    assert compare_arch.main(["--run", str(tiny_run), "--mock-dir", str(mock), "--image-size", "64", "--epochs", "2",
                              "--batch-size", "10", "--lr", "1e-3", "--latent-dim", "4", "--n-images", "20",
                              "--folds", "2", "--output", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "compare_arch.csv")
    assert list(table["arch"]) == ["reference", "light"]
    assert list(table.columns) == compare_arch.COLUMNS
    for column in ("val_mse_per_pixel", "val_ssim", "rf_accuracy_truth", "train_images_per_s", "train_gflop_per_image"):
        assert table[column].map(math.isfinite).all(), column
    assert table["rf_accuracy_gz"].isna().all()                     # no Galaxy Zoo class index in this run
    reference, light = table.iloc[0], table.iloc[1]
    assert reference["train_gflop_per_image"] > 2 * light["train_gflop_per_image"]
    assert (table["epochs"] == 2).all()
    # the same split for both, and each trained as one uninterrupted run would be (epoch-by-epoch resumes)
    result = json.loads((out / "compare_arch.json").read_text())
    assert result["config"]["n_train"] + result["config"]["n_val"] == 20
    for arch in ("reference", "light"):
        history = pd.read_csv(out / arch / runfiles.LOSS_CSV)
        assert list(history["epoch"]) == [1, 2]
    assert "reference" in capsys.readouterr().out


def test_compare_arch_rejects_an_unknown_architecture(tiny_run, capsys):
    assert compare_arch.main(["--run", str(tiny_run), "--archs", "reference,huge", "--image-size", "64", "--quiet"]) == 1
    assert "--archs" in capsys.readouterr().err
