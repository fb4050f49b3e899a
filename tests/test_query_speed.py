"""A later similarity query is cheap (issue 19: under 2 s of CPU in a new process).

A query by name or position of an indexed galaxy encodes nothing, so it must not import torch (the
model is loaded only to encode) nor scikit-learn (a few query vectors are searched with NumPy; the
name query reads its row of the stored neighbour graph) nor matplotlib (the gallery is drawn with
Pillow), and must give the neighbours exact search gives. A query by image still encodes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_cutouts, write_hand_made_latents

from analysis import decals_6
from VAE_model import neighbours, runfiles
from VAE_model.neighbours import exact_search, run_neighbours

ROOT = Path(__file__).resolve().parent.parent


def clumpy(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (6, dim))
    return (centres[rng.integers(0, 6, n)] + rng.normal(0, 1, (n, dim))).astype(np.float32)


# ----------------------------------------------------------------------------- NumPy exact search
@pytest.mark.parametrize("n, n_queries, k, block", [(300, 5, 10, None), (300, 64, 21, 200), (7, 3, 7, None)])
def test_numpy_exact_search_agrees_with_scikit_learn(monkeypatch, n, n_queries, k, block):
    from sklearn.neighbors import NearestNeighbors

    if block is not None:   # blocks of a few index rows: the merge across blocks is exercised
        monkeypatch.setattr(neighbours, "NUMPY_BLOCK_ELEMENTS", block)
    mu = clumpy(n, 8, seed=n + k)
    vectors = clumpy(n_queries, 8, seed=1)
    expected = NearestNeighbors().fit(mu).kneighbors(vectors, k, return_distance=False)
    assert np.array_equal(exact_search(mu, vectors, k), expected)


def test_the_exact_index_searches_a_few_vectors_without_scikit_learn(monkeypatch):
    from sklearn.neighbors import NearestNeighbors

    mu = clumpy(500, 8, seed=3)
    index = neighbours.build(mu, "exact")
    monkeypatch.setattr("sklearn.neighbors.NearestNeighbors", None)     # would fail if used
    rows, distances = index.nearest(mu[:3], 5, exclude=[0, 1, 2])
    monkeypatch.undo()
    expected = NearestNeighbors().fit(mu).kneighbors(mu[:3], 6, return_distance=False)[:, 1:]
    assert np.array_equal(rows, expected)
    assert np.allclose(distances, np.linalg.norm(mu[rows] - mu[:3, None], axis=-1), atol=1e-5)


@pytest.mark.parametrize("method_rows", [40_000, 100])   # exact, then HNSW (the index from 100 galaxies on)
def test_neighbours_of_an_indexed_galaxy_from_the_stored_graph_equal_a_search(tmp_path, method_rows):
    from VAE_model import provenance

    mu = clumpy(400, 8, seed=5)
    np.save(tmp_path / "mu.npy", mu)
    provenance.record(tmp_path, ["mu.npy"], [], "test")
    stored = run_neighbours(tmp_path, "mu.npy", mu, exact_max_rows=method_rows)
    read_back = run_neighbours(tmp_path, "mu.npy", mu, exact_max_rows=method_rows)   # from the run's files
    assert read_back._index is None and read_back.method == stored.method
    for row in (0, 17, 399):
        for k in (1, 10, neighbours.GRAPH_K):
            rows, distances = read_back.nearest_of_rows([row], k)
            searched_rows, searched = stored.index.nearest(mu[row][None], k, [row])
            assert np.array_equal(rows, searched_rows) and np.array_equal(distances, searched)
    assert read_back._index is None          # the graph answered: no index loaded or searched
    rows, _ = read_back.nearest_of_rows([3], neighbours.GRAPH_K + 5)   # more than the graph holds: searched
    assert rows.shape == (1, neighbours.GRAPH_K + 5) and 3 not in rows


# ----------------------------------------------------------------------------- a query in a new process
@pytest.fixture(scope="module")
def query_run(tmp_path_factory):
    """A run as make_datatxt.py makes it from 24 fake cutouts, hand-made latents, the cache built, and
    one query already made (so the neighbour graph is stored)."""
    import make_datatxt
    from VAE_model.data import image_cache

    base = tmp_path_factory.mktemp("query_speed")
    make_cutouts(base / "images", 24, 64)
    run = base / "run"
    assert make_datatxt.main(["--images", str(base / "images"), "--run", str(run), "--image-size", "64",
                              "--workers", "1", "--quiet"]) == 0
    paths = (run / runfiles.TRAIN_TXT).read_text().split()
    write_hand_made_latents(run, clumpy(len(paths), 4, seed=0), paths, 64)
    image_cache(run / runfiles.TRAIN_TXT, 64, run / runfiles.CACHE_DIR, progress=False)
    assert decals_6.main(["--run", str(run), "--name", Path(paths[0]).name[:-5], "--quiet", "--device", "cpu"]) == 0
    return run, paths


def query_in_new_process(run: Path, *query: str) -> dict:
    """decals_6.main in a fresh interpreter: its exit status and which heavy libraries it imported."""
    code = ("import json, sys\nfrom analysis import decals_6\n"
            f"status = decals_6.main({['--run', str(run), '--quiet', '--device', 'cpu', *query]!r})\n"
            "print(json.dumps({'status': status, 'imported': sorted(m for m in ('torch', 'sklearn', "
            "'matplotlib') if m in sys.modules)}))")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def expected_neighbours(run: Path, row: int, k: int) -> list[str]:
    """Brute force on RUN/latents/mu.npy (float64): the k nearest other galaxies' names."""
    mu = np.load(run / runfiles.LATENT_MU).astype(np.float64)
    names = pd.read_csv(run / runfiles.LATENT_NAMES, dtype={"name": str})["name"].to_numpy()
    distance = np.linalg.norm(mu - mu[row], axis=1)
    distance[row] = np.inf
    return list(names[np.argsort(distance, kind="stable")[:k]])


def test_a_name_query_imports_neither_torch_nor_scikit_learn_and_gives_the_exact_neighbours(query_run):
    run, paths = query_run
    name = Path(paths[5]).name[:-5]
    outcome = query_in_new_process(run, "--name", name, "--k", "4")
    assert outcome == {"status": 0, "imported": []}
    found = pd.read_csv(run / (runfiles.SIMILARITY_QUERY.format(slug=name) + ".csv"), dtype={"name": str})
    assert list(found["name"]) == expected_neighbours(run, 5, 4)
    assert (run / (runfiles.SIMILARITY_QUERY.format(slug=name) + ".png")).stat().st_size > 1000


def test_a_position_query_loads_no_model_and_an_image_query_still_encodes(query_run):
    run, paths = query_run
    ra, dec = 180.0 + 7 * 0.01, 30.0          # cutout 7's header position (conftest.make_cutouts)
    outcome = query_in_new_process(run, "--ra", str(ra), "--dec", str(dec), "--k", "3")
    assert outcome == {"status": 0, "imported": []}
    assert decals_6.main(["--run", str(run), "--quiet", "--device", "cpu", "--image", paths[7], "--k", "3"]) == 0
    found = pd.read_csv(run / (runfiles.SIMILARITY_QUERY.format(slug=f"file_{Path(paths[7]).name[:-5]}") + ".csv"),
                        dtype={"name": str})
    assert len(found) == 3 and Path(paths[7]).name[:-5] not in set(found["name"])


def test_cached_latents_of_another_model_are_checked_by_its_digest_without_loading_it(query_run, monkeypatch):
    import shutil

    run, paths = query_run
    other = run.parent / "other.pt"           # a model other than best.pt: its latents are cached by decals_6
    shutil.copy(run / runfiles.BEST_CHECKPOINT, other)
    name = Path(paths[2]).name[:-5]
    loads = []
    real_load = decals_6.Models.load
    monkeypatch.setattr(decals_6.Models, "load", lambda self, path: loads.append(path) or real_load(self, path))
    query = ["--run", str(run), "--model", str(other), "--name", name, "--quiet", "--device", "cpu"]
    assert decals_6.main(query) == 0 and len(loads) == 1       # encoded once, with the model
    stamp_path = run / runfiles.SIMILARITY_LATENTS.format(model="other").replace(".npy", ".json")
    stamp = json.loads(stamp_path.read_text())
    assert stamp["image_size"] == 64 and stamp["latent_dim"] == 4
    assert decals_6.main(query) == 0 and len(loads) == 1       # current: read, no model loaded
    stamp["checkpoint_sha256"] = "0" * 64                       # made from another checkpoint's content
    stamp_path.write_text(json.dumps(stamp))
    assert decals_6.main(query) == 0 and len(loads) == 2       # stale: encoded again
    assert json.loads(stamp_path.read_text())["checkpoint_sha256"] != "0" * 64
