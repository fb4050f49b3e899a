"""The benchmark runs end to end at toy scale and writes its figures as JSON (positive, finite numbers)."""
from __future__ import annotations

import json
import math

from bench import benchmark


def test_benchmark_smoke(tmp_path, capsys):
    output = tmp_path / "benchmark.json"
    assert benchmark.main(["--image-size", "64", "--n-images", "32", "--epochs", "1", "--batch-size", "16",
                           "--latent-dim", "8", "--repeats", "1", "--skip-mock", "--quiet", "--device", "cpu", "--wait-steps", "2",
                           "--tmp-dir", str(tmp_path), "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    for path in ("reference.train_images_per_s", "reference.extract_images_per_s", "reference.data_wait_share",
                 "project.train_images_per_s", "project.extract_images_per_s", "project.cache_build_s",
                 "project.first_epoch_images_per_s_incl_cache_build", "project.data_wait_share", "project.busy_share",
                 "ratios.train", "ratios.extract", "flops.train_gflop_per_image", "flops.encode_gflop_per_image",
                 "flops.train_tflops_achieved", "flops.extract_tflops_achieved"):
        section, key = path.split(".")
        value = result[section][key]
        assert isinstance(value, (int, float)) and math.isfinite(value), path
        assert value > 0 or (key.endswith("wait_share") and value >= 0), (path, value)
    assert 0 <= result["project"]["data_wait_share"] <= 1
    # the model's FLOPs are known: ~38 MFLOP per 64 px image for a training step, ~4 to encode
    assert 0.02 < result["flops"]["train_gflop_per_image"] < 0.06
    assert 0.002 < result["flops"]["encode_gflop_per_image"] < 0.008
    assert result["flops"]["peak_tflops"] is None and result["device"]["type"] == "cpu"   # no peak for a CPU
    assert result["reference"]["mu_finite"] and result["project"]["mu_finite"]
    assert result["reference"]["train_images"] == result["project"]["train_images"] == 32
    assert result["mock_survey"] == {"skipped": "--skip-mock"}
    assert result["config"]["seed"] == 0 and "git_commit" in result["config"]
    assert not list(tmp_path.glob("galaxy_vae_bench_*")), "temporary images and cache were not removed"
    assert "ratio" in capsys.readouterr().out
