"""Survey scale (issue 19): the neighbour index, the explorer page's size cap, one stat per image per stage.

The index (VAE_model/neighbours.py) must give the neighbours exact search gives on small data, and
recall >= 0.95 on its approximate (HNSW) path; it is built once per latents file and read back after.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cutouts, write_hand_made_latents

from analysis import decals_3, decals_4, decals_6, explore
from VAE_model import neighbours, provenance, runfiles
from VAE_model.neighbours import build, run_neighbours


def clustered_latents(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Latents in clumps, as a trained VAE's (galaxy types), not one uniform cloud."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (12, dim))
    return (centres[rng.integers(0, 12, n)] + rng.normal(0, 1, (n, dim))).astype(np.float32)


def brute_force(mu: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    mu = mu.astype(np.float64)
    squared = (mu ** 2).sum(axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None] - 2 * mu @ mu.T, 0))
    np.fill_diagonal(distances, np.inf)
    rows = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return rows, np.take_along_axis(distances, rows, 1)


def test_the_exact_path_gives_the_neighbours_of_brute_force_search():
    mu = clustered_latents(400)
    index = build(mu)
    assert index.method == "exact"
    rows, distances = index.graph(10)
    true_rows, true_distances = brute_force(mu, 10)
    assert np.array_equal(rows, true_rows)
    assert np.allclose(distances, true_distances, atol=1e-5)
    # one query with its own row excluded, and one from outside the index
    one, _ = index.nearest(mu[7], 5, exclude=[7])
    assert one[0].tolist() == true_rows[7, :5].tolist()
    outside, d = index.nearest(mu[7] + 0.01, 1)
    assert outside[0, 0] == 7 and d[0, 0] == pytest.approx(0.01 * np.sqrt(mu.shape[1]), rel=1e-3)


def test_the_hnsw_path_finds_at_least_95_percent_of_the_true_neighbours():
    pytest.importorskip("faiss", reason="faiss-cpu (requirements.txt) not installed")
    mu = clustered_latents(3000, dim=32, seed=1)
    index = build(mu, method="hnsw")
    assert index.method == "hnsw"
    rows, distances = index.graph(10)
    true_rows, _ = brute_force(mu, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, true_rows)])
    assert recall >= 0.95, recall
    assert not (rows == np.arange(len(mu))[:, None]).any(), "a galaxy is never its own neighbour"
    # the distances reported are the exact distances of the rows found, nearest first
    exact = np.linalg.norm(mu[rows].astype(np.float64) - mu[:, None].astype(np.float64), axis=-1)
    assert np.allclose(distances, exact) and (np.diff(distances, axis=1) >= 0).all()


def test_the_index_is_built_once_per_latents_file_and_rebuilt_when_the_file_changes(tmp_path, monkeypatch):
    pytest.importorskip("faiss", reason="faiss-cpu (requirements.txt) not installed")
    run = tmp_path / "run"
    (run / "latents").mkdir(parents=True)
    mu = clustered_latents(300, dim=8)
    np.save(run / runfiles.LATENT_MU, mu)
    # exact_max_rows=100: the HNSW path on small data, so its stored file is exercised too
    first = run_neighbours(run, runfiles.LATENT_MU, mu, k=10, exact_max_rows=100)
    assert first.method == "hnsw" and (run / "neighbours" / "latents_mu.faiss").exists()
    assert provenance.problem(run, "neighbours/latents_mu_graph.npz", "test") is None

    def no_build(*args, **kwargs):
        raise AssertionError("the stored index should have been read")

    monkeypatch.setattr(neighbours, "build", no_build)
    again = run_neighbours(run, runfiles.LATENT_MU, mu, k=10, exact_max_rows=100)
    assert np.array_equal(again.neighbours(10)[0], first.neighbours(10)[0])
    assert np.allclose(again.neighbours(10)[1], first.neighbours(10)[1])
    rows, _ = again.nearest(mu[:3], 4, exclude=[0, 1, 2])           # read from the .faiss file
    assert np.array_equal(rows, first.neighbours(4)[0][:3])
    monkeypatch.undo()
    changed = mu + 1.0
    np.save(run / runfiles.LATENT_MU, changed)                      # new latents: the stored graph is stale
    monkeypatch.setattr(neighbours, "build", no_build)
    with pytest.raises(AssertionError, match="should have been read"):
        run_neighbours(run, runfiles.LATENT_MU, changed, k=10, exact_max_rows=100)


def test_lof_on_the_neighbour_graph_equals_scikit_learns_own():
    from sklearn.neighbors import LocalOutlierFactor

    mu = clustered_latents(500, dim=8, seed=3).astype(np.float64)
    _, lof = decals_4.latent_outlier_scores(mu, n_neighbors=20, n_estimators=10, neighbours=build(mu).graph(20))
    reference = -LocalOutlierFactor(n_neighbors=20).fit(mu).negative_outlier_factor_
    assert np.allclose(lof, reference, rtol=1e-6)


def test_page_rows_hold_max_galaxies_in_total_with_the_outliers_among_them():
    must = np.array([500, 3, 3, 99])        # rank order: 500 is the most unusual
    rows = explore.page_rows(10_000, 50, 0, must)
    assert len(rows) == 50 and len(set(rows)) == 50 and {3, 99, 500} <= set(rows)
    assert np.array_equal(explore.page_rows(40, 50, 0, must[:1]), np.arange(40))
    # more outliers than room: still the cap, the most unusual kept
    assert explore.page_rows(10_000, 2, 0, must).tolist() == [3, 500]   # sorted; 99 (third) left out


# ----------------------------------------------------------------------------- one stat per image
def count_image_stats(monkeypatch, paths) -> Counter:
    """Count os.stat calls on each of ``paths`` (Path.stat, os.path.exists/isfile and the provenance
    identities all go through os.stat)."""
    wanted = {os.path.abspath(p) for p in paths}
    counts: Counter = Counter()
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        try:
            key = os.path.abspath(os.fsdecode(path)) if not isinstance(path, int) else None
        except TypeError:
            key = None
        if key in wanted:
            counts[key] += 1
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    return counts


@pytest.fixture
def latent_run(tmp_path):
    """A run as make_datatxt.py makes it from 24 fake cutouts (train.txt, images.csv, the folder in its
    provenance), with hand-made latents and the decode-once cache already built."""
    import make_datatxt
    from VAE_model.data import image_cache

    make_cutouts(tmp_path / "images", 24, 64)
    run = tmp_path / "run"
    assert make_datatxt.main(["--images", str(tmp_path / "images"), "--run", str(run), "--image-size", "64",
                              "--workers", "1", "--quiet"]) == 0
    paths = (run / runfiles.TRAIN_TXT).read_text().split()
    write_hand_made_latents(run, clustered_latents(len(paths), dim=4), paths, 64)
    image_cache(run / runfiles.TRAIN_TXT, 64, run / runfiles.CACHE_DIR, progress=False)
    return run, paths


def test_each_stage_and_stale_stat_each_image_at_most_once(latent_run, monkeypatch):
    run, paths = latent_run
    common = ["--run", str(run), "--device", "cpu", "--quiet"]
    counts = count_image_stats(monkeypatch, paths)
    assert decals_4.main([*common, "--mock-dir", "none", "--top", "2", "--n-estimators", "10"]) == 0
    assert counts and max(counts.values()) == 1, counts.most_common(2)
    counts.clear()
    assert decals_6.main([*common, "--name", Path(paths[4]).name[:-5], "--k", "3"]) == 0
    assert counts and max(counts.values()) == 1, counts.most_common(2)
    counts.clear()
    assert provenance.main(["stale", str(run)]) == 0                # every record of the run checked
    assert counts and max(counts.values()) == 1, counts.most_common(2)
    assert decals_3.main(["--run", str(run), "--methods", "pca", "--thumbnails", "0"]) == 0
    counts.clear()
    assert explore.main(common) == 0            # positions from images.csv: no FITS header opened either
    assert counts and max(counts.values()) == 1, counts.most_common(2)


# ----------------------------------------------------------------------------- decals_6 (issue 18 cases 8 and 16)
def test_decals_6_records_provenance_and_reads_positions_from_images_csv(latent_run, monkeypatch):
    import json

    import VAE_model.imageio as imageio

    run, paths = latent_run
    monkeypatch.setattr(imageio, "image_position", lambda path: pytest.fail("a FITS header was re-read"))
    monkeypatch.setattr(decals_6, "image_position", lambda path: pytest.fail("a FITS header was re-read"))
    ra, dec = 180.0 + 7 * 0.01, 30.0          # cutout 7's header position (conftest.make_cutouts)
    assert decals_6.main(["--run", str(run), "--device", "cpu", "--quiet", "--ra", str(ra), "--dec", str(dec)]) == 0
    outputs = sorted(p.name for p in (run / "similarity").glob("query_*"))
    assert len(outputs) == 3
    for name in outputs:
        assert provenance.problem(run, f"similarity/{name}", "analysis/decals_6.py") is None
    query = json.loads(next((run / "similarity").glob("query_*.json")).read_text())["query"]
    assert query["query_name"] == Path(paths[7]).name[:-5]
    np.save(run / runfiles.LATENT_MU, np.load(run / runfiles.LATENT_MU) + 1)   # the latents change after
    stale = dict(provenance.stale_files(run))
    assert {f"similarity/{name}" for name in outputs} <= set(stale)


def test_a_query_image_of_another_format_than_the_index_gets_a_note(latent_run, tmp_path, capsys):
    import json

    from PIL import Image

    from VAE_model.data import image_cache
    from VAE_model.plots import render_rgb

    run, paths = latent_run
    cache = image_cache(run / runfiles.TRAIN_TXT, 64, run / runfiles.CACHE_DIR, progress=False)
    png = tmp_path / "render.png"                  # a viewer-style render of an indexed galaxy
    Image.fromarray(np.ascontiguousarray(render_rgb(np.asarray(cache[3]))[::-1])).save(png)
    assert decals_6.main(["--run", str(run), "--device", "cpu", "--quiet", "--image", str(png), "--k", "3"]) == 0
    assert "distances across formats are not comparable" in capsys.readouterr().out
    record = json.loads((run / "similarity" / "query_file_render.json").read_text())["query"]
    assert "PNG" in record["format_note"] and "FITS" in record["format_note"]
    # the same galaxy's FITS file: no note
    assert decals_6.main(["--run", str(run), "--device", "cpu", "--quiet", "--image", paths[3], "--k", "3"]) == 0
    assert "not comparable" not in capsys.readouterr().out


# ----------------------------------------------------------------------------- outputs that grow with N
def test_latents_parquet_is_written_in_row_groups_with_the_table_of_one_piece(tmp_path):
    import pandas as pd
    import pyarrow.parquet as pq

    from analysis.decals_2_2 import write_latents_parquet
    from VAE_model.api import latents_table

    rng = np.random.default_rng(0)
    mu = rng.normal(size=(250, 4)).astype(np.float32)
    paths = [f"/survey/J{i:06d}+300000.0.fits" for i in range(250)]
    positions = pd.DataFrame({"image_index": np.arange(0, 250, 3), "ra": np.arange(0, 250, 3) * 0.1, "dec": 1.0})
    path = tmp_path / "latents.parquet"
    write_latents_parquet(path, mu, mu * 0, paths, "sha", positions, rows_per_group=100)
    assert pq.ParquetFile(path).num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(path), latents_table(mu, mu * 0, paths, "sha", positions))


def test_the_extraction_batch_is_sized_by_free_memory():
    from analysis.decals_2_2 import batch_size_for_memory

    # a quarter of 8 GB at ~6 MB per 256 px image: 333 images, not the fixed 1,024
    assert batch_size_for_memory(256, 1024, "cpu", available_bytes=8e9) == 333
    assert batch_size_for_memory(64, 1024, "cpu", available_bytes=8e9) == 1024      # 16x smaller images: the flag's cap
    assert batch_size_for_memory(256, 1024, "cpu", available_bytes=1e6) == 1        # never 0
