"""Similarity search (analysis/decals_6.py, VAE_model/similarity.py) on a tiny run made here.

The run: 36 fake 64 px FITS cutouts of three shapes (round, edge-on, two-blob 'merger'), a VAE
trained for one epoch, latents written the way decals_2_2 writes them, a truth table, and
BASS+MzLS 'pairs' whose images are pixel copies of DECaLS images under other names. The search
runs on orientation-averaged latents by default (--no-orientation-average: RUN/latents/mu.npy).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import decals_2_2, decals_6
from VAE_model import provenance, runfiles
from VAE_model.catalog import iau_name
from VAE_model.data import write_train_list
from VAE_model.imageio import write_fits_cutout
from VAE_model.similarity import (
    LatentTable,
    QueryError,
    build_index,
    match_position,
    nearest,
    random_expectation,
    same_label_precision,
)

TYPES = ("round", "edge_on", "merger")
PER_TYPE = 12
SIZE = 64


def shape_image(rng: np.random.Generator, kind: str) -> np.ndarray:
    """(3, S, S) nanomaggies: a round blob, a thin disk, or two blobs, plus sky noise."""
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2

    def blob(x0, y0, sigma, axis_ratio, angle):
        u = (x - x0) * np.cos(angle) + (y - y0) * np.sin(angle)
        v = (-(x - x0) * np.sin(angle) + (y - y0) * np.cos(angle)) / axis_ratio
        return np.exp(-0.5 * (u ** 2 + v ** 2) / sigma ** 2)

    angle = rng.uniform(0, np.pi)
    if kind == "round":
        profile = blob(0, 0, rng.uniform(3, 5), 1.0, 0)
    elif kind == "edge_on":
        profile = blob(0, 0, rng.uniform(8, 10), 0.15, angle)
    else:
        d = rng.uniform(9, 13)
        profile = blob(d * np.cos(angle), d * np.sin(angle), 4, 1, 0) + blob(-d * np.cos(angle), -d * np.sin(angle), 4, 1, 0)
    colours = rng.uniform(0.8, 1.5, size=3)
    return (colours[:, None, None] * 20.0 * profile[None] + rng.normal(0, 0.01, (3, SIZE, SIZE))).astype(np.float32)


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    import Galaxy_VAE_n
    from VAE_model.data import image_cache
    from VAE_model.features import encode_arrays
    from VAE_model.runtime import load_model

    base = tmp_path_factory.mktemp("similarity")
    rng = np.random.default_rng(0)
    rows, paths = [], []
    for i in range(PER_TYPE * len(TYPES)):
        kind = TYPES[i % len(TYPES)]
        ra, dec = 150.0 + 0.01 * i, 35.0 + 0.002 * i
        name = iau_name(ra, dec)
        path = base / "decals" / f"{name}.fits"
        write_fits_cutout(path, shape_image(rng, kind), {"RA": ra, "DEC": dec, "IAUNAME": name})
        rows.append({"galaxy_id": i, "decals_iauname": name, "bass_iauname": "", "ra": ra, "dec": dec,
                     "morph_type": kind, "defect_decals": "satellite_trail" if i == 5 else "", "defect_bass": ""})
        paths.append(str(path))
    truth = pd.DataFrame(rows)

    # BASS+MzLS 'pairs': pixel copies of the first 6 DECaLS cutouts, named from a shifted position
    pairs = []
    for i in range(6):
        ra, dec = truth.loc[i, "ra"] + 0.3 / 3600, truth.loc[i, "dec"]
        bass_name = iau_name(ra, dec)
        bass_path = base / "bass_mzls" / f"{bass_name}.fits"
        bass_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(paths[i], bass_path)
        truth.loc[i, "bass_iauname"] = bass_name
        pairs.append({"pair_id": i, "decals_iauname": truth.loc[i, "decals_iauname"], "bass_iauname": bass_name,
                      "ra": truth.loc[i, "ra"], "dec": dec, "sep_arcsec": 0.3, "split": "test",
                      "decals_path": paths[i], "bass_path": str(bass_path)})
    mock = base / "mock"
    mock.mkdir()
    truth.to_parquet(mock / runfiles.MOCK_TRUTH, index=False)

    run = base / "run"
    run.mkdir()
    write_train_list(run, paths)
    assert Galaxy_VAE_n.main(["--run", str(run), "--image-size", str(SIZE), "--epochs", "1", "--batch-size", "16",
                              "--lr", "1e-3", "--latent-dim", "8", "--quiet", "--device", "cpu"]) == 0
    model = load_model(run / runfiles.BEST_CHECKPOINT)
    cache = image_cache(run / runfiles.TRAIN_TXT, SIZE, run / runfiles.CACHE_DIR, progress=False)
    mu, _ = encode_arrays(model, cache, "cpu")
    mu_averaged, _ = encode_arrays(model, cache, "cpu", orientation_average=True)
    assert decals_2_2.main(["--run", str(run), "--skip-classes", "--quiet", "--device", "cpu"]) == 0
    assert np.allclose(np.load(run / runfiles.LATENT_MU), mu, atol=1e-5)
    pd.DataFrame(pairs).to_csv(runfiles.run_path(run, runfiles.TRANSFER_PAIRS_CSV), index=False)
    provenance.record(run, [runfiles.TRANSFER_PAIRS_CSV], [], "transfer/make_pairs.py")
    return {"run": run, "mock": mock, "truth": truth, "paths": paths, "pairs": pd.DataFrame(pairs), "mu": mu,
            "mu_averaged": mu_averaged}


def query_csv(run: Path, slug: str) -> pd.DataFrame:
    return pd.read_csv(run / (runfiles.SIMILARITY_QUERY.format(slug=slug) + ".csv"))


@pytest.mark.parametrize("orientation_average", [True, False])
def test_name_position_and_file_queries_return_the_same_neighbours(sim_run, orientation_average):
    run, truth = sim_run["run"], sim_run["truth"]
    name, ra, dec, path = truth.loc[7, "decals_iauname"], truth.loc[7, "ra"], truth.loc[7, "dec"], sim_run["paths"][7]
    common = ["--run", str(run), "--k", "5", "--model", "part1", "--quiet", "--device", "cpu",
              "--orientation-average" if orientation_average else "--no-orientation-average"]
    assert decals_6.main(common + ["--name", name]) == 0
    assert decals_6.main(common + ["--ra", str(ra + 0.2 / 3600), "--dec", str(dec)]) == 0
    assert decals_6.main(common + ["--image", path]) == 0
    by_name = query_csv(run, name)
    by_position = query_csv(run, f"ra{ra + 0.2 / 3600:.5f}_dec{dec:+.5f}")
    by_file = query_csv(run, f"file_{name}")
    assert list(by_name.columns) == ["rank", "name", "image_index", "distance", "ra", "dec", "path"]
    assert len(by_name) == 5 and name not in set(by_name["name"])
    assert list(by_name["name"]) == list(by_position["name"]) == list(by_file["name"])
    np.testing.assert_allclose(by_name["distance"], by_file["distance"], atol=1e-4)
    assert np.all(np.diff(by_name["distance"]) >= 0)
    # the reported distance is the Euclidean distance between the latents of the chosen encoding
    # (averaged latents: each dimension divided by its standard deviation over the index)
    mu = sim_run["mu"]
    if orientation_average:
        mu = sim_run["mu_averaged"] / sim_run["mu_averaged"].std(axis=0)
    np.testing.assert_allclose(by_name["distance"], np.linalg.norm(mu[by_name["image_index"]] - mu[7], axis=1), atol=1e-5)
    # positions come from the FITS headers (no catalog_index.csv in this run)
    np.testing.assert_allclose(by_name["ra"], truth.loc[by_name["image_index"], "ra"], atol=1e-9)
    assert (run / (runfiles.SIMILARITY_QUERY.format(slug=name) + ".png")).stat().st_size > 1000
    record = json.loads((run / (runfiles.SIMILARITY_QUERY.format(slug=f"file_{name}") + ".json")).read_text())
    assert record["query"]["orientation_average"] is orientation_average
    assert record["query"]["fresh_vs_stored_latent_distance"] < 1e-3 * by_name["distance"].iloc[0]


def test_a_turned_or_mirrored_galaxy_finds_itself_with_and_without_orientation_averaging(sim_run, tmp_path):
    from VAE_model.imageio import load_image

    run, truth = sim_run["run"], sim_run["truth"]
    name = truth.loc[4, "decals_iauname"]
    pixels = np.asarray(load_image(sim_run["paths"][4], SIZE))
    turned = tmp_path / "turned.png"
    _save_png(np.rot90(pixels, 1, axes=(-2, -1))[..., ::-1], turned)          # quarter-turn + mirror
    common = ["--run", str(run), "--k", "3", "--model", "part1", "--quiet", "--device", "cpu", "--image", str(turned)]
    assert decals_6.main(common + ["--orientation-average"]) == 0
    found = query_csv(run, "file_turned")
    # the same 8 views give the same mu: the galaxy itself, ~0 away compared with the next galaxy
    assert found.loc[0, "name"] == name and found.loc[0, "distance"] < 1e-3 * found.loc[1, "distance"]
    # one view: the pose-separated VAE (the default) encodes the galaxy in its canonical pose, so the turned
    # and mirrored copy is found as well (a plain VAE, --pose none, puts it as far away as other galaxies)
    assert decals_6.main(common + ["--no-orientation-average"]) == 0
    one_view = query_csv(run, "file_turned")
    assert one_view.loc[0, "name"] == name and one_view.loc[0, "distance"] < 1e-3 * one_view.loc[1, "distance"]


def _save_png(image: np.ndarray, path: Path) -> None:
    """(3, S, S) [0, 1] image -> 8-bit RGB PNG (what load_image reads back as the same [0, 1] image):
    R, G, B = z, r, g and rows top-down (the viewer's convention, see imageio)."""
    from PIL import Image

    Image.fromarray(np.round(np.moveaxis(image[::-1, ::-1], 0, -1) * 255).astype(np.uint8)).save(path)


@pytest.mark.parametrize("query, problem", [
    (["--name", "J000000.00+000000.0"], "unknown galaxy name 'J000000.00+000000.0'"),
    (["--ra", "150.005", "--dec", "35.0"], "no galaxy within 1 arcsec"),
    (["--image", "/nonexistent/J1.fits"], "query image not found"),
])
def test_bad_query_gives_one_clear_error_line(sim_run, capsys, query, problem):
    code = decals_6.main(["--run", str(sim_run["run"]), "--model", "part1", "--quiet", "--device", "cpu"] + query)
    stderr = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(stderr) == 1 and stderr[0].startswith("error: ") and problem in stderr[0]


def test_missing_latents_name_the_stage_to_run(sim_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(sim_run["run"], run)
    shutil.rmtree(run / runfiles.LATENTS_DIR)
    assert decals_6.main(["--run", str(run), "--name", "auto", "--model", "part1", "--device", "cpu"]) == 1
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("error: ") and "analysis/decals_2_2.py" in stderr[0]


def test_precision_at_10_beats_random_on_separated_clusters():
    rng = np.random.default_rng(1)
    labels = np.repeat(["a", "b", "c"], [40, 30, 20])
    centres = {"a": np.zeros(6), "b": np.full(6, 4.0), "c": np.r_[4.0, -4.0, 0, 0, 0, 0]}
    mu = np.stack([centres[label] for label in labels]) + rng.normal(0, 1.0, (len(labels), 6))
    precision, rows = same_label_precision(mu, labels, np.arange(len(labels)), k=10)
    expectation = random_expectation(labels, labels, query_in_index=True)
    assert not np.any(rows == np.arange(len(labels))[:, None])          # a galaxy is never its own neighbour
    np.testing.assert_allclose(expectation[labels == "a"], 39 / 89)
    assert precision.mean() > 0.9 > expectation.mean() + 0.5
    # without structure the same score falls back to chance
    shuffled = rng.permutation(labels)
    assert abs(same_label_precision(mu, shuffled, np.arange(len(labels)), k=10)[0].mean() - expectation.mean()) < 0.12


def test_evaluation_scores_clean_and_defective_queries_separately():
    rng = np.random.default_rng(2)
    types = np.repeat(["round", "spiral"], 25)
    mu = np.where(types[:, None] == "round", 0.0, 5.0) + rng.normal(0, 1, (50, 4))
    names = np.array([f"G{i:03d}" for i in range(50)])
    truth = pd.DataFrame({"decals_iauname": names, "bass_iauname": "", "morph_type": types,
                          "defect_decals": ["bad_pixels" if i in (0, 30) else "" for i in range(50)], "defect_bass": ""})
    table = LatentTable("decals", "part1", mu, names, names, np.arange(50))
    frame, info = decals_6.within_survey_scores(table, truth)
    overall = frame.set_index("morph_type")
    assert overall.loc["all", "n_queries"] == 48 and overall.loc["defective", "n_queries"] == 2
    assert overall.loc["round", "n_queries"] == 24 and info["n_index"] == 50
    assert overall.loc["all", "precision_at_10"] > overall.loc["all", "random_expectation"] + 0.4
    np.testing.assert_allclose(overall.loc["round", "random_expectation"], 24 / 49)


def test_evaluate_writes_scores_for_both_models_and_finds_cross_survey_counterparts(sim_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sim_run["run"], run)
    shutil.copy(run / runfiles.BEST_CHECKPOINT, run / runfiles.TRANSFER_ADAPTED)   # 'adapted' = same weights
    provenance.record(run, [runfiles.TRANSFER_ADAPTED], [provenance.Input.file(run / runfiles.BEST_CHECKPOINT)],
                      "transfer/evaluate.py")
    assert decals_6.main(["--run", str(run), "--evaluate", "--mock-dir", str(sim_run["mock"]), "--quiet",
                          "--device", "cpu", "--orientation-average"]) == 0
    scores = pd.read_csv(run / runfiles.SIMILARITY_PRECISION_CSV)
    assert list(scores.columns) == ["model", "orientation_average", "morph_type", "n_queries", "precision_at_10",
                                    "random_expectation"]
    assert scores["orientation_average"].all()
    assert set(scores["model"]) == {"part1", "adapted"}
    part1, adapted = (scores[scores["model"] == m].set_index("morph_type") for m in ("part1", "adapted"))
    assert part1.loc["all", "n_queries"] == 35 and part1.loc["defective", "n_queries"] == 1
    np.testing.assert_allclose(part1.loc["round", "random_expectation"], 11 / 35, atol=1e-4)
    np.testing.assert_allclose(part1["precision_at_10"], adapted["precision_at_10"], atol=1e-3)
    assert (run / runfiles.SIMILARITY_LATENTS.format(model="adapted_orientation_average")).exists()
    assert (run / runfiles.SIMILARITY_LATENTS.format(model="part1_orientation_average")).exists()
    assert (run / runfiles.SIMILARITY_PRECISION_PNG).stat().st_size > 1000
    cross = pd.read_csv(run / runfiles.SIMILARITY_CROSS_CSV).set_index(["model", "morph_type"])
    # the BASS 'images' are pixel copies: every counterpart is the nearest DECaLS galaxy
    assert cross.loc[("part1", "all"), "n_queries"] == 6
    assert cross.loc[("part1", "all"), "counterpart_in_top_1"] == 1.0
    assert cross.loc[("adapted", "all"), "counterpart_in_top_10"] == 1.0

    # one orientation (the default): part1 reads latents/mu.npy, the adapted latents go to their own
    # file; nothing mixes
    assert decals_6.main(["--run", str(run), "--evaluate", "--mock-dir", str(sim_run["mock"]), "--quiet",
                          "--device", "cpu"]) == 0
    plain = pd.read_csv(run / runfiles.SIMILARITY_PRECISION_CSV)
    assert not plain["orientation_average"].any()
    assert json.loads((run / runfiles.SIMILARITY_PRECISION_JSON).read_text())["orientation_average"] is False
    assert not (run / runfiles.SIMILARITY_LATENTS.format(model="part1")).exists()
    for averaged in (True, False):
        key = decals_6.latents_key("adapted", averaged)
        stamp = json.loads((run / runfiles.SIMILARITY_LATENTS.format(model=key)).with_suffix(".json").read_text())
        assert stamp["orientation_average"] is averaged
    np.testing.assert_allclose(np.load(run / runfiles.SIMILARITY_LATENTS.format(model="adapted")), sim_run["mu"],
                               atol=1e-5)
    np.testing.assert_allclose(np.load(run / runfiles.SIMILARITY_LATENTS.format(model="adapted_orientation_average")),
                               sim_run["mu_averaged"], atol=1e-5)


def test_cross_survey_queries_find_the_counterpart(sim_run):
    run, pairs = sim_run["run"], sim_run["pairs"]
    common = ["--run", str(run), "--k", "3", "--model", "part1", "--quiet", "--device", "cpu"]
    assert decals_6.main(common + ["--image", pairs.loc[2, "bass_path"]]) == 0
    found = query_csv(run, f"file_{pairs.loc[2, 'bass_iauname']}")
    assert found.loc[0, "name"] == pairs.loc[2, "decals_iauname"] and found.loc[0, "distance"] < 1e-4
    assert decals_6.main(common + ["--reverse", "--name", pairs.loc[2, "decals_iauname"]]) == 0
    found = query_csv(run, f"{pairs.loc[2, 'decals_iauname']}_in_bass")
    assert found.loc[0, "name"] == pairs.loc[2, "bass_iauname"] and found.loc[0, "image_index"] == 2


def test_nearest_excludes_only_the_query_and_matches_positions():
    mu = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], np.float32)   # rows 0 and 1 are duplicates
    rows, distances = nearest(build_index(mu), mu, mu[:1], k=2, exclude=[0])
    assert rows.tolist() == [[1, 2]] and distances.tolist() == [[0.0, 1.0]]
    row, sep = match_position(10.0, 20.0 + 0.5 / 3600, np.array([10.0, 11.0]), np.array([20.0, 20.0]), 1.0)
    assert row == 0 and sep == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(QueryError, match="no galaxy within 0.1 arcsec"):
        match_position(10.0, 20.0 + 0.5 / 3600, np.array([10.0, 11.0]), np.array([20.0, 20.0]), 0.1)
