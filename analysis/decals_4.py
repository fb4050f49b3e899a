"""Part I, step 4: outlier screening - which images does the VAE find unusual?

Three anomaly scores per image of train.txt, each "higher = more unusual":

    iforest_score   isolation forest on the latents mu (sklearn; -score_samples: short isolation
                    paths = easy to separate from the rest)
    lof_score       local outlier factor on mu (sklearn; ratio of the neighbours' density to the
                    image's own, k = --n-neighbors), on the run's neighbour graph of latents/mu.npy
                    (VAE_model/neighbours.py: exact below 40,000 galaxies, FAISS HNSW above; N log N)
    recon_mse       per-pixel reconstruction MSE of the trained VAE (RUN/best.pt, z = mu) on the
                    decode-once cache: what the decoder cannot draw (trails, stars, missing bands)

and a combined score, the mean of the three rank-normalised scores (each rank scaled to [0, 1]),
so no score's units dominate. mu is used as written by decals_2_2.py, not standardised: dimensions
the KL term switched off carry ~0 variance and would turn into pure noise if rescaled.

On the mock survey the truth table says which DECaLS images carry a planted defect (satellite
trail, saturated star, missing band, bad pixels). With k = number of defective images in train.txt
(images matched by name == truth.decals_iauname), each method's top-k list is scored: precision and
recall at k (equal here, since k is the number planted), average precision and ROC AUC, against the
random expectation k/N. The truth table is only read for this score, never for the ranking.

READS   RUN/latents/mu.npy, RUN/latents/names.csv (analysis/decals_2_2.py), RUN/train.txt,
        RUN/best.pt (Galaxy_VAE_n.py; or --checkpoint), RUN/cache (built if absent),
        --mock-dir: MOCK_DIR/truth.parquet (only to score planted defects; 'none' on real data)
WRITES  RUN/outliers/outlier_scores.csv    ranked: image_index, name, iforest_score, lof_score,
                                           recon_mse, combined_score, rank (1 = most unusual); the image's
                                           path is line image_index of train.txt (readers.read_outlier_scores)
        RUN/outliers/top_outliers.png      the top --top images and their reconstructions, with scores
        RUN/outliers/defect_scores.json|.csv   mock survey only: top-k precision/recall per method
        RUN/outliers/outliers_config.json  flags, checkpoint, seed, git commit
        RUN/neighbours/latents_mu_graph.npz (+ .faiss)  the neighbour graph of mu (VAE_model/neighbours.py;
                                           read instead when current)

    python analysis/decals_4.py --run runs/demo
    python analysis/decals_4.py --run runs/decals --mock-dir none --top 24
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from VAE_model.cli_args import (add_amp_argument, add_batch_size_argument, add_mock_dir_argument, add_quiet_argument,
                                add_runtime_arguments, cli_main, describe_args, positive_int)

METHODS = ("iforest_score", "lof_score", "recon_mse", "combined_score")
# no full path per row (GBs at 10^7 galaxies): image_index is the line of train.txt (readers.read_outlier_scores)
SCORE_COLUMNS = ["image_index", "name", "iforest_score", "lof_score", "recon_mse", "combined_score", "rank"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--checkpoint", default=None,
                        help="trained VAE for the reconstruction error (default: RUN/best.pt)")
    add_mock_dir_argument(parser)
    parser.add_argument("--n-neighbors", type=positive_int, default=20,
                        help="neighbours of the local outlier factor (default: %(default)s, sklearn's)")
    parser.add_argument("--n-estimators", type=positive_int, default=200,
                        help="trees of the isolation forest (default: %(default)s)")
    parser.add_argument("--top", type=positive_int, default=10, help="outliers shown in top_outliers.png (default: %(default)s)")
    add_batch_size_argument(parser, 256, "images per reconstruction batch")
    add_amp_argument(parser)
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import provenance, readers, runfiles
from VAE_model.catalog import read_catalog
from VAE_model.data import image_cache, image_name
from VAE_model.errors import NotEnoughDataError, StaleInputError
from VAE_model.features import reconstruct_arrays
from VAE_model.neighbours import run_neighbours
from VAE_model.metrics import rank_normalise, reconstruction_metrics, top_k_scores
from VAE_model.plots import save_image_grid
from VAE_model.runtime import load_model, pick_device, pick_precision, seed_everything, write_json
from VAE_model.stage import Stage


# ----------------------------------------------------------------------------- scores
def neighbour_graph_matrix(rows: np.ndarray, distances: np.ndarray):
    """The k-NN graph (N, k) as the sparse distance matrix scikit-learn takes as metric='precomputed':
    each galaxy's row holds itself (distance 0, stored explicitly) and its k neighbours."""
    from scipy.sparse import csr_matrix

    n, k = rows.shape
    columns = np.concatenate([np.arange(n)[:, None], rows], axis=1).ravel()
    values = np.concatenate([np.zeros((n, 1)), distances], axis=1).ravel()
    return csr_matrix((values, columns, np.arange(0, n * (k + 1) + 1, k + 1)), shape=(n, n))


def latent_outlier_scores(mu: np.ndarray, seed: int = 0, n_neighbors: int = 20, n_estimators: int = 200,
                          neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(isolation-forest score, LOF score) per row of mu; higher = more unusual.

    The LOF is computed on the k-nearest-neighbour graph ``neighbours`` = (rows, distances), (N, >= k),
    each galaxy itself excluded (VAE_model/neighbours.py: exact below its size threshold, HNSW above),
    so it costs N log N, not the N^2 of scikit-learn's brute-force search of 32-d latents; without
    it the graph is built here. Same LOF as scikit-learn's own on the same neighbours."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    from VAE_model.neighbours import build

    mu = np.asarray(mu, dtype=np.float64)
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(mu)
    iforest = -forest.score_samples(mu)
    k = max(1, min(n_neighbors, len(mu) - 1))
    rows, distances = neighbours if neighbours is not None else build(mu).graph(k)
    if rows.shape[1] < k:
        raise ValueError(f"the neighbour graph holds {rows.shape[1]} neighbours per galaxy, LOF needs {k}")
    graph = neighbour_graph_matrix(rows[:, :k], np.asarray(distances, dtype=np.float64)[:, :k])
    lof = LocalOutlierFactor(n_neighbors=k, metric="precomputed").fit(graph)
    return iforest, -lof.negative_outlier_factor_


def combine_scores(*scores: np.ndarray) -> np.ndarray:
    """Mean of the rank-normalised scores, in [0, 1]."""
    return np.mean([rank_normalise(s) for s in scores], axis=0)


def outlier_table(paths: list[str], mu: np.ndarray, recon_mse: np.ndarray, seed: int = 0, n_neighbors: int = 20,
                  n_estimators: int = 200, neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """All scores, sorted by the combined score (rank 1 = most unusual; ties keep train.txt order)."""
    iforest, lof = latent_outlier_scores(mu, seed, n_neighbors, n_estimators, neighbours)
    table = pd.DataFrame({"image_index": np.arange(len(paths)), "name": [image_name(p) for p in paths],
                          "iforest_score": iforest, "lof_score": lof, "recon_mse": recon_mse,
                          "combined_score": combine_scores(iforest, lof, recon_mse)})
    table = table.sort_values("combined_score", ascending=False, kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[SCORE_COLUMNS]


# ----------------------------------------------------------------------------- scoring against the truth
def defect_scores(table: pd.DataFrame, truth_path: str | Path) -> tuple[dict, pd.DataFrame | None]:
    """Top-k precision/recall of each method against the planted defects of the truth table.

    k = number of defective images among the ranked ones. Returns (summary, per-method table);
    the table is None (and the summary says why) when nothing can be scored.
    """
    if truth_path is None:
        return {"scored": False, "note": "no mock-survey truth table (real data); defect scores skipped"}, None
    truth_path = Path(truth_path)
    truth = read_catalog(truth_path, required=("decals_iauname", "defect_decals"))
    kinds = dict(zip(truth["decals_iauname"].astype(str).str.strip(), truth["defect_decals"].fillna("").astype(str)))
    matched = table["name"].isin(kinds.keys())
    defect = table["name"].map(kinds).fillna("")
    is_defect = (defect != "").to_numpy()
    n, k = len(table), int(is_defect.sum())
    base = {"truth": str(truth_path), "n_images": n, "n_matched_to_truth": int(matched.sum()), "k": k}
    if k == 0:
        return {"scored": False, **base, "note": "no planted defect among the images of train.txt; scores skipped"}, None
    rows, by_kind = [], {}
    for method in METHODS:
        scores = table[method].to_numpy()
        rows.append({"method": method.replace("_score", ""), **top_k_scores(scores, is_defect, k)})
        top = np.argsort(-scores, kind="stable")[:k]
        by_kind[rows[-1]["method"]] = {kind: {"n": int((defect == kind).sum()),
                                              "found_in_top_k": int((defect.iloc[top] == kind).sum())}
                                       for kind in sorted(set(defect[is_defect]))}
    result = pd.DataFrame(rows)
    summary = {"scored": True, **base, "random_expectation": k / n,
               "note": "precision = recall at k (k = number of planted defects); random expectation k/N",
               "methods": {row["method"]: {key: value for key, value in row.items() if key != "method"} for row in rows},
               "found_by_kind": by_kind,
               "defective_images": table.loc[is_defect, ["image_index", "name", "rank"]].assign(
                   defect=defect[is_defect].to_numpy()).to_dict("records")}
    return summary, result


# ----------------------------------------------------------------------------- figure
def save_outlier_gallery(table: pd.DataFrame, cache, model, device, path: str | Path, n: int = 10) -> Path:
    top = table.head(n)
    images = cache[np.sort(top["image_index"].to_numpy())]
    order = np.argsort(np.argsort(top["image_index"].to_numpy()))   # back to rank order
    images = images[order].astype(np.float32) / 255.0
    reconstructions = reconstruct_arrays(model, images, device)
    labels = [f"#{r.rank} {r.name[:16]}\ncomb {r.combined_score:.2f} mse {r.recon_mse:.4f}\n"
              f"IF {r.iforest_score:.2f} LOF {r.lof_score:.2f}" for r in top.itertuples()]
    return save_image_grid([list(images), list(reconstructions)], path, row_labels=["input", "reconstruction"],
                           col_labels=labels, cell_inches=1.5,
                           title="most unusual images (combined rank of isolation forest, LOF, reconstruction MSE)")


# ----------------------------------------------------------------------------- stage
# LOF compares each galaxy's local density with its neighbours': with fewer than 3 galaxies there is
# at most one neighbour and every score is the same, so nothing can be ranked
MIN_GALAXIES = 3


def screen_outliers(args: argparse.Namespace, log=print) -> dict:
    run = Path(args.run)
    seed_everything(args.seed)
    device = pick_device(args.device)
    precision = pick_precision(device, args.amp)
    with Stage(run, "analysis/decals_4.py", args) as stage:
        paths = readers.read_train_list(run)
        list_path = run / runfiles.TRAIN_TXT
        latents = readers.read_latents(run)
        mu = latents.mu
        if len(mu) != len(paths) or not np.all(np.isfinite(mu)):
            raise StaleInputError(f"{run / runfiles.LATENT_MU}: {mu.shape}, finite: {bool(np.isfinite(mu).all())}, does "
                                  f"not fit the {len(paths)} images of train.txt; re-run `analysis/decals_2_2.py --run {run}`")
        if len(mu) < MIN_GALAXIES:
            raise NotEnoughDataError(f"{list_path}: {len(mu)} galaxy(ies); outlier screening (LOF, isolation forest) "
                                     f"needs at least {MIN_GALAXIES} to rank one against the others")
        checkpoint = readers.external_checkpoint(run, args.checkpoint) if args.checkpoint else readers.checkpoint_path(run)
        stage.uses(provenance.Input.file(checkpoint))
        # the reconstruction error must come from the model that made the latents
        readers.check_latents_model(latents, checkpoint, run)
        model = load_model(checkpoint, device)
        cache = image_cache(list_path, model.config.image_size, run / runfiles.CACHE_DIR, progress=not args.quiet)
        recon_mse = reconstruction_metrics(model, cache, np.arange(len(cache)), device, batch_size=args.batch_size,
                                           ssim=False, progress=not args.quiet, precision=precision)["mse_per_pixel"]
        # the run's neighbour graph of latents/mu.npy (built once, shared with decals_6 and the explorer)
        graph = run_neighbours(run, runfiles.LATENT_MU, mu, args.n_neighbors, "analysis/decals_4.py",
                               progress=not args.quiet)
        k = min(args.n_neighbors, len(mu) - 1)
        table = outlier_table(paths, mu, recon_mse, args.seed, args.n_neighbors, args.n_estimators, graph.neighbours(k))
        table.to_csv(runfiles.run_path(run, runfiles.OUTLIER_SCORES_CSV), index=False)
        save_outlier_gallery(table, cache, model, device, runfiles.run_path(run, runfiles.OUTLIER_GALLERY_PNG), args.top)
        record = describe_args(args, device=str(device), checkpoint=str(checkpoint), n_images=len(paths),
                               latent_dim=int(mu.shape[1]), image_size=model.config.image_size)
        stage.settings = record
        write_json(record, runfiles.run_path(run, runfiles.OUTLIER_CONFIG_JSON))
        truth = readers.mock_truth_path(args.mock_dir)
        summary, scores = defect_scores(table, truth)
        if scores is not None:
            with stage.inputs_only_for("outliers/defect_scores"):   # the ranking itself never sees the truth
                stage.uses(provenance.Input.file(truth))
            summary["config"] = record
            write_json(summary, runfiles.run_path(run, runfiles.DEFECT_SCORES_JSON))
            scores.to_csv(runfiles.run_path(run, runfiles.DEFECT_SCORES_CSV), index=False)
            for row in scores.itertuples():
                log(f"  {row.method:9s} precision@{row.k} {row.precision_at_k:.2f}  AP {row.average_precision:.2f}  "
                    f"ROC AUC {row.roc_auc:.2f}  (random {row.random_precision:.3f})")
        else:
            log(f"note: {summary['note']}")
    return {"table": table, "defects": summary}


@cli_main
@provenance.memoised      # each image set stat'ed once in this stage
def main(argv=None) -> int:
    args = parse_args(argv)
    result = screen_outliers(args)
    top = result["table"].iloc[0]
    defects = result["defects"]
    scored = (f"; planted defects in the top {defects['k']}: combined precision "
              f"{defects['methods']['combined']['precision_at_k']:.2f} vs random {defects['random_expectation']:.3f}"
              if defects.get("scored") else "")
    print(f"done: {len(result['table'])} images ranked, most unusual {top['name']} "
          f"(combined {top['combined_score']:.2f}){scored}; results in {Path(args.run) / runfiles.OUTLIERS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
