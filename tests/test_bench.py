"""The benchmark's three rows run end to end at toy scale and write their figures as JSON."""
from __future__ import annotations

import json
import math

from bench import benchmark


def test_benchmark_rows_a_b_c(tmp_path, capsys):
    output = tmp_path / "benchmark.json"
    assert benchmark.main(["--image-size", "64", "--n-images", "16", "--epochs", "1", "--batch-size", "8",
                           "--latent-dim", "4", "--repeats", "1", "--skip-mock", "--quiet", "--device", "cpu",
                           "--wait-steps", "1", "--val-fraction", "0.25", "--arch", "light",
                           "--tmp-dir", str(tmp_path), "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    rows = result["rows"]
    assert set(rows) == {"a", "b", "c"}
    # (a) the reference architecture on the reference data path; (b) the same model on the project's
    # path; (c) the default (here --arch light)
    assert (rows["a"]["arch"], rows["a"]["data_path"], rows["a"]["precision"]) == ("reference", "reference", "float32")
    assert (rows["b"]["arch"], rows["b"]["data_path"]) == ("reference", "project")
    assert (rows["c"]["arch"], rows["c"]["data_path"]) == ("light", "project")
    for name, row in rows.items():
        for key in ("train_images_per_s", "extract_images_per_s", "val_mse_per_pixel", "train_gflop_per_image"):
            assert isinstance(row[key], (int, float)) and math.isfinite(row[key]) and row[key] > 0, (name, key)
        assert 0 <= row["data_wait_share"] <= 1 and row["mu_finite"]
        assert row["train_images"] == 12 and row["epochs"] == 1   # the same 12 training images for every row
        assert row["val_mse_per_pixel"] < 1.0                     # [0, 1] units on the same target
    assert math.isfinite(rows["a"]["val_mse_per_pixel_own_units"])
    # FLOPs follow the architecture: the reference decoder costs more per image
    assert rows["a"]["train_gflop_per_image"] == rows["b"]["train_gflop_per_image"] > rows["c"]["train_gflop_per_image"]
    ratios = result["ratios"]
    assert math.isclose(ratios["c_over_a_train"], rows["c"]["train_images_per_s"] / rows["a"]["train_images_per_s"])
    assert result["goal"]["met"] == (result["goal"]["train_ratio"] >= 3 and result["goal"]["mse_equal_or_better"]
                                     and result["goal"]["float32"])
    assert result["gpu"]["peak_tflops"] is None and result["device"]["type"] == "cpu"   # no peak for a CPU
    assert result["mock_survey"] == {"skipped": "--skip-mock"}
    assert result["config"]["seed"] == 0 and result["config"]["n_val"] == 4
    assert not list(tmp_path.glob("galaxy_vae_bench_*")), "temporary images and cache were not removed"
    assert "(c)/(a)" in capsys.readouterr().out


def test_benchmark_rejects_a_split_without_validation_images(tmp_path, capsys):
    assert benchmark.main(["--image-size", "64", "--n-images", "8", "--val-fraction", "0", "--skip-mock", "--quiet",
                           "--device", "cpu", "--tmp-dir", str(tmp_path), "--output", str(tmp_path / "b.json")]) == 1
    assert "--val-fraction" in capsys.readouterr().err


def test_variants_cnn_row_scores_the_true_type_on_the_probes_folds():
    """The variants' table's supervised-CNN row: 5-fold accuracy of the encoder trained end to end, on
    the classes and folds the probes use (a class too small for 5 folds is left out, unknown types too)."""
    import numpy as np

    from bench.feature_variants import cnn_accuracy
    from VAE_model.models import VAEConfig

    rng = np.random.default_rng(0)
    n = 60
    types = np.array(["bright"] * 30 + ["faint"] * 26 + ["rare"] * 3 + [None], dtype=object)
    images = rng.integers(0, 30, (n, 3, 64, 64), dtype=np.uint8)
    images[:30, :, 28:36, 28:36] = 250                        # a bright core: trivially separable
    accuracy, low, high, n_scored = cnn_accuracy(images, types, VAEConfig(latent_dim=4, image_size=64), epochs=3,
                                                 batch_size=8, lr=1e-3, seed=0, fold_seed=0, device="cpu")
    assert n_scored == 56                                     # 'rare' (3 < 5 folds) and the unknown type left out
    assert accuracy > 0.9 and 0 < low < accuracy <= high <= 1


def test_variants_summary_keeps_unlabelled_metrics_of_rows_read_back_from_csv(tmp_path):
    """--keep-scores reads earlier rows from scores.csv, where an empty label comes back as NaN: the
    ratios and the reconstruction error must still be in the summary."""
    import pandas as pd

    from bench.feature_variants import write_summary

    rows = [{"variant": "pose", "seed": seed, "feature_set": "pose", "metric": metric, "label": label, "value": value,
             "low": float("nan"), "high": float("nan"), "n": 10}
            for seed in (0, 1) for metric, label, value in
            (("ratio_quarter_turn", "", 0.01 * seed), ("forest", "true_type", 0.7), ("val_mse_per_pixel", "", 0.002))]
    pd.DataFrame(rows).to_csv(tmp_path / "scores.csv", index=False)
    stats = write_summary(pd.read_csv(tmp_path / "scores.csv"), tmp_path)
    assert set(stats["metric"]) == {"ratio_quarter_turn", "forest", "val_mse_per_pixel"}
    line = (tmp_path / "summary.md").read_text().splitlines()[-1]
    assert "0.005 ± 0.007" in line and "0.00200" in line
