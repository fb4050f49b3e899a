"""bench/scale.py before and after it runs: the plan it prints (disk, CPU time, refused when the disk is
too small) and the table's whole-range exponent and memory line at 300,000 (no stage is run here)."""
from __future__ import annotations

import pytest

from bench import scale


def test_plan_gives_disk_and_time_per_size_and_counts_kept_sizes():
    args = scale.parse_args(["--sizes", "16000,32000,64000", "--epochs", "1"])
    lines, needed = scale.plan(args)
    per_image = scale.cutout_bytes(64) + 3 * 64 * 64 + scale.RUN_BYTES_PER_GALAXY
    assert needed == 64000 * per_image                      # one size on disk at a time (the default)
    assert len(lines) == 4 and "N = 64,000" in lines[2] and "GB on disk" in lines[2] and "min CPU" in lines[2]
    kept = scale.parse_args(["--sizes", "16000,32000,64000", "--keep"])
    assert scale.plan(kept)[1] == 112000 * per_image


def test_a_disk_too_small_stops_before_any_cutout_is_written(tmp_path, monkeypatch, capsys):
    import shutil
    from types import SimpleNamespace

    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=10**9, used=10**9 - 10**6, free=10**6))
    assert scale.main(["--sizes", "16000,64000", "--out", str(tmp_path / "out")]) == 1
    assert "GB free" in capsys.readouterr().err
    assert not list((tmp_path / "out").iterdir())


def test_table_has_the_whole_range_exponent_and_the_peak_memory_at_300k():
    args = scale.parse_args(["--sizes", "16000,32000,64000", "--stages", "latents,stale"])
    measured = {n: {"latents": {"seconds": n / 1000, "peak_mb": 1000 + n / 50, "peak_anonymous_mb": 500 + n / 1000},
                    "stale": {"seconds": 1.0 + n / 64000, "peak_mb": 100, "peak_anonymous_mb": 50}}
                for n in args.sizes}
    rows = scale.summarise(args, measured)
    assert rows[0]["exponent_whole_range"] == pytest.approx(1.0)
    table = scale.markdown(args, rows, measured)
    assert "b (16,000 to 64,000)" in table
    memory_lines = [line for line in table.splitlines() if line.startswith("peak memory at 300,000")]
    assert len(memory_lines) == 2 and all("latent extraction" in line for line in memory_lines)
    assert "NOT met" in memory_lines[0]          # resident: 1,000 MB + 0.02 MB per galaxy -> 7 GB at 300k
    assert "anonymous" in memory_lines[1] and "NOT met" not in memory_lines[1]
