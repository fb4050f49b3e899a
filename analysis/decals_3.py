"""Part I, step 3: two-dimensional maps of the latent space (mu) coloured by morphology class.

PCA (linear, all galaxies), t-SNE (scikit-learn, PCA initialisation) and UMAP (umap-learn)
of the latent means ``mu``, used as they come out of the encoder (no rescaling: the KL term
already puts informative latent dimensions on a common, roughly unit scale). t-SNE and UMAP
run on a random subsample of at most --max-points galaxies (their embedding columns are empty,
NaN, for the others). Each map has one panel per class question found in class_index.csv (the
Galaxy Zoo questions of ``VAE_model.morph_classes`` and any label column that analysis/decals_1.py
recorded with --label-column; ``--label-column`` here draws only those): colour = class label,
grey = galaxies in no class of that question. ``--outlier-score`` adds a panel coloured by the
combined outlier score of analysis/decals_4.py. Label-free: without class_index.csv (images only,
no catalog) the maps are drawn uncoloured, and the stage says so in one line. A thumbnail map places
~200 galaxy images (from the decode-once cache) at their positions, one per cell of a grid laid
over the map, so that it shows which images live where.

READS   RUN/latents/mu.npy, names.csv, latents_config.json (analysis/decals_2_2.py)
        RUN/selection/class_index.csv (analysis/decals_2_1.py; optional), RUN/train.txt + RUN/cache (thumbnails)
        RUN/outliers/outlier_scores.csv (analysis/decals_4.py; only with --outlier-score)
WRITES  RUN/maps/pca.png, tsne.png, umap.png    one panel per class question (one grey panel if no labels)
        RUN/maps/umap_thumbnails.png            galaxy thumbnails on the map (--thumbnail-map; default umap)
        RUN/maps/embeddings.csv                 image_index, name, pca_1, pca_2, tsne_1, tsne_2, umap_1, umap_2
        RUN/maps/maps_config.json               flags, PCA explained variance, points used, timings

    python analysis/decals_3.py --run runs/demo
    python analysis/decals_3.py --run runs/decals --methods pca,umap --max-points 50000
    python analysis/decals_3.py --run runs/rings --label-column ring --outlier-score
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from VAE_model.cli_args import add_runtime_arguments, cli_main, describe_args

METHODS = ("pca", "tsne", "umap")
TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
UNLABELLED_COLOUR = "#c4c4c4"
# fewest galaxies each map can be drawn from: PCA's 2 components need 2; t-SNE's perplexity (at least
# 2 here) must stay below the number of points; UMAP's spectral start needs more than 3
MIN_POINTS = {"pca": 2, "tsne": 3, "umap": 4}
THUMBNAIL_MAX_PX = 64     # thumbnails are block-averaged down to at most this many pixels a side


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--methods", default="pca,tsne,umap",
                        help="comma-separated subset of pca, tsne, umap (default: %(default)s)")
    parser.add_argument("--max-points", type=int, default=20000,
                        help="random subsample size for t-SNE and UMAP on big data sets (default: %(default)s)")
    parser.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default: %(default)s)")
    parser.add_argument("--n-neighbors", type=int, default=15, help="UMAP n_neighbors (default: %(default)s)")
    parser.add_argument("--min-dist", type=float, default=0.1, help="UMAP min_dist (default: %(default)s)")
    parser.add_argument("--thumbnails", type=int, default=200,
                        help="about how many galaxy thumbnails on the thumbnail map; 0: no thumbnail map (default: %(default)s)")
    parser.add_argument("--thumbnail-map", choices=METHODS, default=None,
                        help="map that carries the thumbnails (default: umap if computed, else tsne, else pca)")
    parser.add_argument("--label-column", action="append", default=[], metavar="NAME",
                        help="colour only by these label columns recorded by analysis/decals_1.py --label-column "
                             "(repeat or separate by commas; default: every question of class_index.csv)")
    parser.add_argument("--outlier-score", action="store_true",
                        help="add a panel coloured by the combined outlier score (RUN/outliers/outlier_scores.csv, "
                             "analysis/decals_4.py)")
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import readers, runfiles
from VAE_model.data import image_cache
from VAE_model.imageio import resize
from VAE_model.morph_classes import CLASS_QUESTIONS
from VAE_model.plots import plt, save_figure, to_rgb  # (Agg backend set there)
from VAE_model.errors import GalaxyVAEError, NotEnoughDataError
from VAE_model.runtime import seed_everything, write_json
from VAE_model.stage import Stage


def parse_methods(text: str) -> list[str]:
    methods = [m.strip().lower().replace("-", "") for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"--methods: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


# ----------------------------------------------------------------------------- embeddings
def subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted random subset of range(n) of at most max_points rows (all rows when n is small)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def embed(mu: np.ndarray, method: str, seed: int, perplexity: float = 30.0, n_neighbors: int = 15,
          min_dist: float = 0.1) -> tuple[np.ndarray, dict]:
    """2-D embedding (n, 2) of mu by one method, and a record of what was done."""
    mu = np.asarray(mu, dtype=np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(mu.shape), random_state=seed).fit(mu)
        return pca.transform(mu)[:, :2], {"explained_variance_ratio": np.round(pca.explained_variance_ratio_, 5).tolist()}
    if method == "tsne":
        from sklearn.manifold import TSNE

        # perplexity must stay below the number of points; (n - 1) / 3 is the usual ceiling
        used = float(min(perplexity, max(2.0, (len(mu) - 1) / 3)))
        tsne = TSNE(n_components=2, perplexity=used, init="pca", learning_rate="auto", random_state=seed)
        return tsne.fit_transform(mu), {"perplexity": used, "kl_divergence": round(float(tsne.kl_divergence_), 4)}
    if method == "umap":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap  # slow import (numba), hence here

            neighbours = int(min(n_neighbors, len(mu) - 1))
            reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, min_dist=min_dist, random_state=seed)
            return reducer.fit_transform(mu), {"n_neighbors": neighbours, "min_dist": min_dist}
    raise ValueError(f"unknown method {method}")


def map_questions(class_index: pd.DataFrame | None, label_columns: list[str] = ()) -> dict[str, list[str]]:
    """{question: its class labels in drawing order} of the questions to colour by.

    Built-in questions in schema order with their schema classes, then label columns with their
    labels sorted; only ``label_columns`` when given (ValueError naming any that is absent).
    """
    if class_index is None or class_index.empty:
        if label_columns:
            raise ValueError(f"--label-column {', '.join(label_columns)}: no class_index.csv labels to colour by")
        return {}
    found = list(dict.fromkeys(class_index["question"]))
    if label_columns:
        unknown = [q for q in label_columns if q not in found]
        if unknown:
            raise ValueError(f"--label-column {', '.join(unknown)}: not in class_index.csv; record it with "
                             "`analysis/decals_1.py --label-column` and rerun analysis/decals_2_1.py")
        chosen = list(label_columns)
    else:
        chosen = [q for q in CLASS_QUESTIONS if q in found] + [q for q in found if q not in CLASS_QUESTIONS]
    classes = {}
    for question in chosen:
        labels = set(class_index.loc[class_index["question"] == question, "label"])
        schema = [name for name, _ in CLASS_QUESTIONS.get(question, [])]
        classes[question] = schema + sorted(c for c in labels if c not in schema)
    return classes


def labels_by_question(class_index: pd.DataFrame | None, n_images: int,
                       questions: list[str] | None = None) -> dict[str, np.ndarray]:
    """For every question, the label of each image (None where the image is in no class)."""
    labels = {}
    for question in (questions if questions is not None else CLASS_QUESTIONS):
        column = np.full(n_images, None, dtype=object)
        if class_index is not None:
            rows = class_index[class_index["question"] == question]
            column[rows["image_index"].to_numpy(dtype=int)] = rows["label"].astype(str).to_numpy()
        labels[question] = column
    return labels


# ----------------------------------------------------------------------------- figures
def _point_size(n: int) -> float:
    return float(np.clip(4000.0 / max(n, 1), 0.5, 14.0))


def plot_class_map(xy: np.ndarray, labels: dict[str, np.ndarray], title: str, path: str | Path,
                   classes: dict[str, list[str]] | None = None, score: np.ndarray | None = None,
                   score_name: str = "outlier score") -> Path:
    """One panel per question (class labels in colour over the unlabelled galaxies in grey), plus a
    panel coloured by ``score`` when given; a single grey panel when there is neither."""
    shown = np.isfinite(xy).all(axis=1)
    if classes is None:
        classes = {q: [name for name, _ in CLASS_QUESTIONS[q]] for q in labels}
    panels = list(classes) + (["__score__"] if score is not None else [])
    if not panels:
        panels = ["__none__"]
    n_cols = min(4, len(panels))
    n_rows = int(np.ceil(len(panels) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(max(4.0 * n_cols, 6.0), 3.7 * n_rows + 0.3), squeeze=False)
    size = _point_size(int(shown.sum()))
    palette = plt.get_cmap("tab10").colors
    for ax, question in zip(axes.flat, panels):
        ax.set_xticks([]), ax.set_yticks([])
        if question == "__none__":
            ax.scatter(*xy[shown].T, s=size, c=UNLABELLED_COLOUR, lw=0, rasterized=True)
            ax.set_title("no labels (images only)", fontsize=10)
            continue
        if question == "__score__":
            scored = np.flatnonzero(shown & np.isfinite(score))
            order = scored[np.argsort(score[scored], kind="stable")]      # the most unusual drawn on top
            points = ax.scatter(*xy[order].T, s=size, c=score[order], cmap="viridis", lw=0, rasterized=True)
            fig.colorbar(points, ax=ax, shrink=0.8)
            ax.set_title(score_name, fontsize=10)
            continue
        label = labels[question]
        unlabelled = shown & (label == None)  # noqa: E711 (element-wise on an object array)
        ax.scatter(*xy[unlabelled].T, s=size, c=UNLABELLED_COLOUR, lw=0, rasterized=True,
                   label=f"no class ({int(unlabelled.sum())})")
        for k, name in enumerate(classes[question]):
            chosen = shown & (label == name)
            ax.scatter(*xy[chosen].T, s=size * 1.6, color=palette[k % len(palette)], lw=0, alpha=0.85,
                       rasterized=True, label=f"{name} ({int(chosen.sum())})")
        ax.set_title(question, fontsize=10)
        ax.legend(fontsize=7, markerscale=max(1.0, 6 / np.sqrt(size)), loc="best", framealpha=0.7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    grey = "; grey: in no class of the question" if classes else ""
    fig.suptitle(f"{title} of the latent means mu ({int(shown.sum())} galaxies){grey}", fontsize=11 if n_cols > 1 else 9)
    fig.tight_layout()
    return save_figure(fig, path)


def grid_side(n_target: int) -> int:
    """Starting cells per side of the thumbnail grid: the occupied part of a 2-D map is often about
    half its bounding box, so lay out twice as many cells as thumbnails wanted."""
    return max(2, int(np.ceil(np.sqrt(2 * n_target))))


def _one_per_cell(points: np.ndarray, n_side: int) -> np.ndarray:
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    cell = np.minimum(((points - low) / span * n_side).astype(int), n_side - 1)
    centre = low + (cell + 0.5) * span / n_side
    distance = np.hypot(*(points - centre).T)
    cell_id = cell[:, 0] * n_side + cell[:, 1]
    order = np.lexsort((distance, cell_id))
    first = np.ones(len(order), bool)
    first[1:] = cell_id[order][1:] != cell_id[order][:-1]
    return order[first]


def spread_points(xy: np.ndarray, n_target: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """(indices, n_side): at most n_target points spread over the map, one per cell of an n_side x n_side
    grid over the bounding box (the point nearest the cell centre), so thumbnails barely overlap.
    The grid is refined until about n_target cells are occupied (thin, curved maps fill few cells)."""
    finite = np.flatnonzero(np.isfinite(xy).all(axis=1))
    n_side = grid_side(n_target)
    if len(finite) == 0 or n_target <= 0:
        return finite[:0], n_side
    points = xy[finite]
    chosen = _one_per_cell(points, n_side)
    while len(chosen) < 0.8 * min(n_target, len(finite)) and n_side < 4 * grid_side(n_target):
        n_side = int(np.ceil(n_side * 1.2))
        chosen = _one_per_cell(points, n_side)
    chosen = finite[chosen]
    if len(chosen) > n_target:
        chosen = np.random.default_rng(seed).choice(chosen, size=n_target, replace=False)
    return np.sort(chosen), n_side


def thumbnail(image_uint8: np.ndarray) -> np.ndarray:
    image = np.asarray(image_uint8, dtype=np.float32) / 255.0
    size = image.shape[-1]
    if size > THUMBNAIL_MAX_PX:
        image = resize(image, size // int(np.ceil(size / THUMBNAIL_MAX_PX)))
    return to_rgb(image)


def plot_thumbnail_map(xy: np.ndarray, cache: np.ndarray, chosen: np.ndarray, n_side: int, title: str,
                       path: str | Path) -> Path:
    """Scatter of all galaxies in grey with the images of ``chosen`` (one per cell of an n_side grid)
    placed at their positions."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    shown = np.isfinite(xy).all(axis=1)
    fig, ax = plt.subplots(figsize=(12, 12))
    ax.scatter(*xy[shown].T, s=_point_size(int(shown.sum())), c=UNLABELLED_COLOUR, lw=0, rasterized=True)
    ax.margins(0.5 / n_side)
    # each thumbnail about one grid cell wide: 12 in * 110 dpi / n_side pixels on the page
    cell_px = 12 * 110 * 0.75 / n_side
    for i in chosen:
        image = thumbnail(cache[i])
        box = OffsetImage(image, zoom=cell_px / image.shape[0], origin="lower", interpolation="antialiased")
        ax.add_artist(AnnotationBbox(box, tuple(xy[i]), frameon=True, pad=0.05, bboxprops={"lw": 0.3, "ec": "0.4"}))
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"{title} of mu: {len(chosen)} galaxies shown at their positions (z, r, g as red, green, blue)")
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- stage
def load_inputs(run: str | Path):
    """mu, the names table, the class index (None if absent) and the latents config of a run
    (MissingInputError if a latents file is absent)."""
    run = Path(run)
    latents = readers.read_latents(run)
    # optional: without a catalog (label-free Part I) the maps are drawn uncoloured
    classes = readers.read_class_index(run) if (run / runfiles.CLASS_INDEX_CSV).exists() else None
    if classes is not None:
        classes["label"] = classes["label"].astype(str)
    return latents.mu, latents.names, classes, latents.config


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    run = Path(args.run)
    seed_everything(args.seed)
    try:
        methods = parse_methods(args.methods)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with Stage(run, "analysis/decals_3.py", args) as stage:
        done = draw_maps(args, run, methods, stage)
    print(done)
    return 0


def check_enough_points(n_images: int, n_sampled: int, methods: list[str]) -> None:
    """One line (NotEnoughDataError) when a map cannot be drawn for so few galaxies."""
    for method in methods:
        n = n_images if method == "pca" else n_sampled
        if n < MIN_POINTS[method]:
            raise NotEnoughDataError(f"{n} galaxies: a {TITLES[method]} map needs at least {MIN_POINTS[method]}; "
                                     f"list more images or leave {method} out of --methods")


def draw_maps(args, run: Path, methods: list[str], stage) -> str:
    """Every map, the embeddings table and the configuration; returns the closing line."""
    mu, names, classes, latent_config = load_inputs(run)
    from tqdm import tqdm

    try:
        label_columns = list(dict.fromkeys(n.strip() for v in args.label_column for n in v.split(",") if n.strip()))
        question_classes = map_questions(classes, label_columns)
        score = None
        if args.outlier_score:
            scores = readers.read_outlier_scores(run, ("combined_score",))
            score = np.full(len(mu), np.nan)
            score[scores["image_index"].to_numpy(dtype=int)] = scores["combined_score"].to_numpy(dtype=float)
    except (ValueError, KeyError, IndexError) as error:
        raise GalaxyVAEError(str(error).strip("'\"")) from None   # a --label-column or the scores table
    if classes is None:
        print(f"note: no {run / runfiles.CLASS_INDEX_CSV} (no catalog matched; analysis/decals_2_1.py): "
              "maps drawn uncoloured" + (" except the outlier score" if score is not None else ""))
    labels = labels_by_question(classes, len(mu), list(question_classes))
    sample = subsample(len(mu), args.max_points, args.seed)
    check_enough_points(len(mu), len(sample), methods)
    table = names[["image_index", "name"]].copy()
    records, maps = {}, {}
    for method in tqdm(methods, desc="embed", unit="map"):
        start = time.perf_counter()
        rows = np.arange(len(mu)) if method == "pca" else sample
        xy = np.full((len(mu), 2), np.nan)
        xy[rows], record = embed(mu[rows], method, args.seed, args.perplexity, args.n_neighbors, args.min_dist)
        record.update(n_points=len(rows), seconds=round(time.perf_counter() - start, 2))
        table[f"{method}_1"], table[f"{method}_2"] = np.round(xy[:, 0], 5), np.round(xy[:, 1], 5)
        plot_class_map(xy, labels, TITLES[method], stage.output(f"{runfiles.MAPS_DIR}/{method}.png"), question_classes, score)
        records[method], maps[method] = record, xy
    table.to_csv(runfiles.run_path(run, runfiles.MAP_EMBEDDINGS_CSV), index=False)

    thumbnail_method = args.thumbnail_map or next(m for m in ("umap", "tsne", "pca") if m in maps)
    if args.thumbnails > 0 and thumbnail_method in maps:
        readers.read_train_list(run)
        cache = image_cache(run / runfiles.TRAIN_TXT, int(latent_config["image_size"]), run / runfiles.CACHE_DIR)
        xy = maps[thumbnail_method]
        chosen, n_side = spread_points(xy, args.thumbnails, args.seed)
        plot_thumbnail_map(xy, cache, chosen, n_side, TITLES[thumbnail_method],
                           stage.output(f"{runfiles.MAPS_DIR}/{thumbnail_method}_thumbnails.png"))
        records["thumbnails"] = {"map": thumbnail_method, "n_shown": len(chosen)}
    elif args.thumbnails > 0:
        print(f"note: no thumbnail map ({thumbnail_method} is not among --methods {args.methods})")
    stage.settings = describe_args(args, n_images=len(mu), latent_dim=int(mu.shape[1]), methods_run=records,
                                   coloured_by=list(question_classes) + (["outlier combined_score"] if score is not None else []),
                                   class_index_found=classes is not None)
    write_json(stage.settings, runfiles.run_path(run, runfiles.MAPS_CONFIG_JSON))
    timing = ", ".join(f"{m} {records[m]['seconds']:.1f} s" for m in methods)
    pca_note = ""
    if "pca" in records:
        pca_note = f"; PCA 1+2 explain {100 * sum(records['pca']['explained_variance_ratio'][:2]):.0f}% of the variance"
    return f"done: {len(methods)} maps of {len(mu)} galaxies ({timing}){pca_note}; in {run / runfiles.MAPS_DIR}"


if __name__ == "__main__":
    sys.exit(main())
