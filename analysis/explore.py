"""Latent-space explorer: one self-contained HTML page to browse a run's maps, neighbours, outliers and pairs.

Writes RUN/explorer/index.html, a static page with everything embedded (Bokeh with its JavaScript
inlined, thumbnails as small base64 JPEGs, coordinates and neighbours as data). It opens from the
file system with no server and no network, so it can be copied to a laptop or attached to a paper:

    python analysis/explore.py --run runs/demo        # then open runs/demo/explorer/index.html

On the page:
  * the UMAP / t-SNE / PCA map of every galaxy (maps/embeddings.csv; a selector), coloured by a
    class question (Galaxy Zoo DECaLS classes, selection/class_index.csv), an outlier score
    (outliers/outlier_scores.csv), a k-means cluster of mu (--clusters, always available, so the
    label-free route without a catalog has a colouring too) or the survey coverage (DECaLS only /
    also imaged by BASS+MzLS, transfer/pairs.csv); pan, zoom; hover shows the thumbnail, name,
    RA/Dec and class labels;
  * click a galaxy, or type its name in the search box: its --k nearest neighbours as a gallery with
    distances, ringed on the map, and a link to the galaxy in the Legacy Surveys sky viewer. The
    neighbours are those `analysis/decals_6.py --name <galaxy>` gives with the same --model and
    --orientation-average (default: the adapted model when transfer/adapted.pt exists, else best.pt):
    the same latents and the same search (VAE_model/neighbours.py, the galaxy itself excluded), read
    from the run's neighbour graph of those latents (built once, shared with decals_4 and decals_6);
  * the ranked outlier list with thumbnails and scores (--outliers of them);
  * when Part II ran: the test pairs (DECaLS above BASS+MzLS), the --pairs most and least alike by
    latent distance, before adaptation and after (the adapted method of transfer/adapted.json).

The map is of the Part I latents (decals_3 embeds latents/mu.npy); the neighbours use the model of
--model. On runs larger than --max-galaxies the page holds --max-galaxies galaxies in total: the
listed outliers and a random draw (--seed) of the rest; each gallery still shows a galaxy's --k
nearest neighbours among all galaxies (the run's neighbour graph, VAE_model/neighbours.py), those not
drawn named with their distance but without an image.

READS   RUN/latents/names.csv, latents_config.json, mu.npy (analysis/decals_2_2.py)
        RUN/similarity/latents_<model>[_orientation_average].npy (+ .json) (analysis/decals_6.py;
            only for --model adapted or --orientation-average)
        RUN/maps/embeddings.csv (analysis/decals_3.py), RUN/train.txt + RUN/cache/ (thumbnails)
        RUN/selection/class_index.csv, catalog_index.csv (analysis/decals_2_1.py; optional: labels, RA/Dec)
        RUN/images.csv (make_datatxt.py; RA/Dec read from the headers once), else
            RUN/similarity/index_positions.csv (analysis/decals_6.py; optional), else FITS headers RA/DEC
        RUN/neighbours/<latents>_graph.npz (VAE_model/neighbours.py; built and stored here when absent)
        RUN/outliers/outlier_scores.csv (analysis/decals_4.py; optional)
        RUN/transfer/pairs.csv, decals_pairs.txt, bass_pairs.txt, distances_before.csv,
            adapted.json, <method>/distances.csv (transfer/; optional)
WRITES  RUN/explorer/index.html           the page (self-contained)
        RUN/explorer/explorer_config.json  flags, model, counts, page size, git commit

    python analysis/explore.py --run runs/demo --thumbnail-px 48 --k 10
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from VAE_model import runfiles
from VAE_model.cli_args import add_quiet_argument, add_runtime_arguments, cli_main, describe_args, positive_int
from VAE_model.config import DEFAULT_K

MODEL_CHOICES = ("auto", "part1", "adapted")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--model", choices=MODEL_CHOICES, default="auto",
                        help="latents searched for neighbours, as analysis/decals_6.py --model: auto (adapted if "
                             "RUN/transfer/adapted.pt exists, else best.pt), part1, adapted (default: %(default)s)")
    parser.add_argument("--orientation-average", action=argparse.BooleanOptionalAction, default=False,
                        help="neighbours from the orientation-averaged latents, as decals_6.py --orientation-average "
                             "(that run must have written them; default: off, as decals_6.py)")
    parser.add_argument("--k", type=positive_int, default=DEFAULT_K, help="neighbours per galaxy (default: %(default)s)")
    parser.add_argument("--thumbnail-px", type=positive_int, default=48,
                        help="thumbnail side in pixels, embedded as JPEG (default: %(default)s)")
    parser.add_argument("--jpeg-quality", type=int, choices=range(10, 101), metavar="10..100", default=85,
                        help="JPEG quality of the thumbnails (default: %(default)s)")
    parser.add_argument("--max-galaxies", type=positive_int, default=5000,
                        help="galaxies drawn on the map at most (random subset beyond; default: %(default)s)")
    parser.add_argument("--outliers", type=int, default=30, help="length of the ranked outlier list (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=8,
                        help="most and least alike cross-survey pairs shown per model (default: %(default)s)")
    parser.add_argument("--clusters", type=positive_int, default=8,
                        help="k-means clusters of mu offered as a colouring (default: %(default)s)")
    parser.add_argument("--output", default=None, help=f"page path (default: RUN/{runfiles.EXPLORER_HTML})")
    add_quiet_argument(parser)
    args = parser.parse_args(argv)
    if args.outliers < 0 or args.pairs < 0:
        parser.error("--outliers and --pairs must be >= 0")
    return args


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import provenance, readers
from VAE_model.data import image_cache
from VAE_model.errors import StaleInputError
from VAE_model.files import write_text
from VAE_model.explorer import (ExplorerData, PairGallery, build_page, categorical_colouring,
                                continuous_colouring, plain_colouring, thumbnails, OUTLIER_SCORE_COLUMNS)
from VAE_model.runtime import seed_everything, write_json
from VAE_model.neighbours import run_neighbours
from VAE_model.similarity import latent_scale, run_image_positions
from VAE_model.stage import Stage


# ----------------------------------------------------------------------------- inputs
def search_latents(run: Path, choice: str, orientation_average: bool, n: int) -> tuple[np.ndarray, str, str, str]:
    """(latents searched, model label, distance description, run-relative latents file): the latents
    analysis/decals_6.py searches for the same --model / --orientation-average, scaled as its LatentTable is."""
    adapted = run / runfiles.TRANSFER_ADAPTED
    label = ("adapted" if adapted.exists() else "part1") if choice == "auto" else choice
    checkpoint = adapted if label == "adapted" else run / runfiles.BEST_CHECKPOINT
    key = f"{label}_orientation_average" if orientation_average else label
    flags = f"--model {label}" + (" --orientation-average" if orientation_average else "")
    if label == "part1" and not orientation_average:
        latents = readers.read_latents(run)
        readers.check_latents_model(latents, readers.checkpoint_path(run), run)
        name = runfiles.LATENT_MU
    else:
        made_by = f"analysis/decals_6.py --run {run} --name auto {flags}"
        readers.checkpoint_path(run, *((runfiles.TRANSFER_ADAPTED, readers.EVALUATE) if label == "adapted" else ()))
        name = runfiles.SIMILARITY_LATENTS.format(model=key)
        mu = readers.read_similarity_latents(run, key, checkpoint, made_by)
    path = run / name
    if label == "part1" and not orientation_average:
        mu = latents.mu
    if mu.ndim != 2 or len(mu) != n:
        raise StaleInputError(f"{path}: shape {mu.shape}, expected {n} rows as latents/names.csv; rerun "
                              f"analysis/decals_2_2.py / decals_6.py")
    distance = "Euclidean distance on mu"
    if orientation_average:   # as decals_6.decals_table: averaged mu divided by its per-dimension std
        mu = mu / latent_scale(mu)
        distance = "Euclidean distance on mu averaged over the 8 flips/quarter-turns, standardised per dimension"
    return mu.astype(np.float32), label, f"{distance} ({label} model, as analysis/decals_6.py {flags})", name


def read_maps(run: Path, n: int) -> dict[str, np.ndarray]:
    path = run / runfiles.MAP_EMBEDDINGS_CSV
    table = readers.read_table(run, runfiles.MAP_EMBEDDINGS_CSV, readers.MAPS, ("image_index",))
    maps = {}
    for method in ("umap", "tsne", "pca"):
        if {f"{method}_1", f"{method}_2"} <= set(table.columns):
            xy = np.full((n, 2), np.nan)
            rows = table["image_index"].to_numpy(int)
            if rows.min(initial=0) < 0 or rows.max(initial=0) >= n:
                raise StaleInputError(f"{path}: image_index outside 0..{n - 1}; rerun analysis/decals_3.py")
            xy[rows] = table[[f"{method}_1", f"{method}_2"]].to_numpy(float)
            if np.isfinite(xy).all(axis=1).any():
                maps[method] = xy
    if not maps:
        raise StaleInputError(f"{path}: no pca/tsne/umap columns; rerun analysis/decals_3.py")
    return maps


def positions(run: Path, names: pd.DataFrame, rows: np.ndarray, progress: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """RA/Dec of the images ``rows``: catalog_index.csv, then make_datatxt's images.csv (the headers read
    once), else (a list make_datatxt did not write) decals_6's index_positions.csv, then the FITS headers
    (WCS centre, else RA/DEC cards)."""
    from tqdm import tqdm

    from VAE_model.imageio import image_position

    n = len(names)
    ra, dec = np.full(n, np.nan), np.full(n, np.nan)
    sources = []
    catalog = run / runfiles.CATALOG_INDEX_CSV
    if catalog.exists():
        table = readers.read_catalog_index(run)
        table = table[table["image_index"].between(0, n - 1)]
        ra[table["image_index"].to_numpy(int)] = table["ra"].to_numpy(float)
        dec[table["image_index"].to_numpy(int)] = table["dec"].to_numpy(float)
        sources.append("catalog")
    listed = None if np.isfinite(ra[rows]).all() else run_image_positions(run, names["path"].astype(str).tolist())
    if listed is not None:   # the headers' positions as make_datatxt.py read them, once (RUN/images.csv)
        use = ~np.isfinite(ra)
        ra[use], dec[use] = listed[0][use], listed[1][use]
        return ra[rows], dec[rows], " + ".join([*sources, "images.csv"])
    cached = readers.read_index_positions(run) if not np.isfinite(ra[rows]).all() else None
    if cached is not None:
        table = cached
        table = table[table["image_index"].between(0, n - 1) & np.isfinite(table["ra"])]
        known = table["image_index"].to_numpy(int)
        use = ~np.isfinite(ra[known])
        ra[known[use]], dec[known[use]] = table["ra"].to_numpy(float)[use], table["dec"].to_numpy(float)[use]
        sources.append("decals_6 positions")
    missing = rows[~np.isfinite(ra[rows])]
    fits = [r for r in missing if str(names["path"].iloc[r]).lower().endswith((".fits", ".fit", ".fits.gz", ".fz"))]
    if fits:
        for r in tqdm(fits, desc="RA/DEC from FITS headers", unit="img", disable=not progress or len(fits) < 200):
            ra[r], dec[r], _ = image_position(names["path"].iloc[r])   # nan, nan when the header has none
        sources.append("FITS headers")
    return ra[rows], dec[rows], " + ".join(sources) or "none"


def class_labels(run: Path, n: int) -> dict[str, np.ndarray]:
    """{class question: label per image (None: no class)} from selection/class_index.csv."""
    path = run / runfiles.CLASS_INDEX_CSV
    if not path.exists():
        return {}
    table = readers.read_class_index(run).astype({"label": str, "question": str})
    table = table[table["image_index"].between(0, n - 1)]
    labels = {}
    for question, part in table.groupby("question", sort=False):
        values = np.full(n, None, dtype=object)
        values[part["image_index"].to_numpy(int)] = part["label"].to_numpy(str)
        labels[question] = values
    return labels


def outlier_table(run: Path, n: int) -> pd.DataFrame | None:
    path = run / runfiles.OUTLIER_SCORES_CSV
    if not path.exists():
        return None
    table = readers.read_outlier_scores(run, ("name", "rank"))
    return table[table["image_index"].between(0, n - 1)].sort_values("rank").reset_index(drop=True)


def optional_pairs(run: Path) -> pd.DataFrame | None:
    """pairs.csv when Part II ran, else None."""
    return readers.read_pairs(run) if (run / runfiles.TRANSFER_PAIRS_CSV).exists() else None


def pair_galleries(run: Path, pairs: pd.DataFrame, image_size: int, n_pairs: int, px: int, quality: int,
                   progress: bool) -> list[PairGallery]:
    """The most/least alike test pairs before and after adaptation (none without distances_before.csv)."""
    from VAE_model.adaptation import pair_caches

    before_path = run / runfiles.TRANSFER_DISTANCES_BEFORE
    if not before_path.exists() or n_pairs == 0:
        return []
    decals_cache, bass_cache = pair_caches(run, image_size, len(pairs), progress=progress)
    tables = [("before adaptation (Part I model, transfer/distances_before.csv)", runfiles.TRANSFER_DISTANCES_BEFORE,
               readers.NO_TRANSFER)]
    if (run / runfiles.TRANSFER_ADAPTED_JSON).exists():
        method = readers.read_json(run, runfiles.TRANSFER_ADAPTED_JSON, readers.EVALUATE).get("method")
        after = runfiles.ADAPT_DISTANCES_CSV.format(method=method)
        if method and (run / after).exists():
            tables.append((f"after adaptation ({method}, the adapted model; transfer/{method}/distances.csv)", after,
                           readers.EVALUATE))
    galleries = []
    for title, name, stage in tables:
        table = readers.read_table(run, name, stage, dtype={"decals_iauname": str, "bass_iauname": str, "split": str})
        if "split" in table.columns and (table["split"] == "test").any():
            table, title = table[table["split"] == "test"], f"{title}, test pairs"
        ordered = table.sort_values("latent_distance")
        shown = max(1, min(n_pairs, len(ordered) // 2))     # the two lists never share a pair

        def rows(part):
            ids = part["pair_id"].to_numpy(int)
            d_uris = thumbnails(decals_cache, ids, px, quality)
            b_uris = thumbnails(bass_cache, ids, px, quality)
            return [(str(a), str(b), float(dist), du, bu) for a, b, dist, du, bu in
                    zip(part["decals_iauname"], part["bass_iauname"], part["latent_distance"], d_uris, b_uris)]

        galleries.append(PairGallery(title, rows(ordered.head(shown)), rows(ordered.tail(shown).iloc[::-1])))
    return galleries


def page_rows(n: int, max_galaxies: int, seed: int, must: np.ndarray) -> np.ndarray:
    """The galaxies drawn on the page (sorted): all of them, or ``max_galaxies`` in total: ``must`` (the
    listed outliers, most unusual first, at most ``max_galaxies`` of them) and a random draw (``seed``) of the others. A
    drawn galaxy's neighbours that are not drawn are named in its gallery, not added: the page stays
    within --max-galaxies at any N (adding them made 5,000 drawn into ~30,000 at 40k)."""
    if n <= max_galaxies:
        return np.arange(n)
    must = np.array(list(dict.fromkeys(int(row) for row in must)), dtype=int)[:max_galaxies]   # rank order kept
    others = np.setdiff1d(np.arange(n), must, assume_unique=True)
    drawn = np.random.default_rng(seed).choice(others, max_galaxies - len(must), replace=False)
    return np.sort(np.concatenate([must, drawn]))


# ----------------------------------------------------------------------------- main
def explore(args) -> dict:
    from sklearn.cluster import KMeans

    run = Path(args.run)
    start = time.perf_counter()
    progress = not args.quiet
    latents = readers.read_latents(run)
    names = latents.names
    n = len(names)
    list_path = run / runfiles.TRAIN_TXT
    if readers.read_train_list(run) != list(names["path"]):
        raise StaleInputError(f"{run / runfiles.LATENT_NAMES} does not match {list_path}; "
                              f"re-run `analysis/decals_2_2.py --run {run}`")
    image_size = int(latents.config["image_size"])
    mu, model_label, distance_note, latents_name = search_latents(run, args.model, args.orientation_average, n)
    maps = read_maps(run, n)

    steps = ["neighbours", "positions", "colours", "thumbnails", "pairs", "page"]
    from tqdm import tqdm

    bar = tqdm(total=len(steps), desc="explorer", unit="step", disable=not progress)
    # the run's neighbour graph of these latents (built once per latents file, shared with decals_4/decals_6)
    graph = run_neighbours(run, latents_name, mu, args.k, "analysis/explore.py", standardised=args.orientation_average,
                           progress=progress)
    neighbour_rows, neighbour_distances = graph.neighbours(min(args.k, n - 1))
    bar.update()
    outliers = outlier_table(run, n)
    top = outliers.head(args.outliers) if outliers is not None else None
    rows = page_rows(n, args.max_galaxies, args.seed,
                     top["image_index"].to_numpy(int) if top is not None else np.array([], int))
    page_of = np.full(n, -1)
    page_of[rows] = np.arange(len(rows))

    ra, dec, position_source = positions(run, names, rows, progress)
    bar.update()

    labels = class_labels(run, n)
    colourings = []
    for question, values in labels.items():
        colourings.append(categorical_colouring(f"class_{question}", f"class: {question}", values[rows]))
    if outliers is not None:
        by_row = outliers.set_index("image_index")
        for column, title in OUTLIER_SCORE_COLUMNS.items():
            if column in by_row.columns:
                colourings.append(continuous_colouring(f"score_{column}", title,
                                                       by_row[column].reindex(rows).to_numpy(float)))
    n_clusters = min(args.clusters, n)
    clusters = KMeans(n_clusters=n_clusters, n_init=4, random_state=args.seed).fit_predict(mu)
    colourings.append(categorical_colouring("cluster", f"k-means cluster of mu ({n_clusters})",
                                            [str(c + 1) for c in clusters[rows]]))
    pairs = optional_pairs(run)
    if pairs is not None:
        paired_names = set(pairs["decals_iauname"].astype(str))
        coverage = ["DECaLS + BASS+MzLS" if name in paired_names else "DECaLS only" for name in names["name"].iloc[rows]]
        colourings.append(categorical_colouring("survey", "survey coverage (transfer/pairs.csv)", coverage))
    colourings.append(plain_colouring(len(rows)))
    default = (colourings[0].key if labels else "score_combined_score"
               if any(c.key == "score_combined_score" for c in colourings) else "none")
    bar.update()

    cache = image_cache(list_path, image_size, run / runfiles.CACHE_DIR, progress=progress)
    thumbs = thumbnails(cache, rows, args.thumbnail_px, args.jpeg_quality, progress=progress)
    bar.update()
    galleries = ([] if pairs is None else
                 pair_galleries(run, pairs, image_size, args.pairs, args.thumbnail_px, args.jpeg_quality, progress))
    bar.update()

    hover_labels = ["; ".join(f"{q}: {v[r]}" for q, v in labels.items() if v[r] is not None) for r in rows]
    outlier_rows = None
    if top is not None and len(top):
        outlier_rows = top.assign(page_row=page_of[top["image_index"].to_numpy(int)])
    data = ExplorerData(
        names=list(names["name"].iloc[rows].astype(str)), ra=ra, dec=dec, labels=hover_labels,
        maps={m: xy[rows] for m, xy in maps.items()}, thumbs=thumbs,
        neighbour_rows=page_of[neighbour_rows[rows]], neighbour_distances=neighbour_distances[rows],
        colourings=colourings, default_colouring=default, outliers=outlier_rows,
        outlier_thumbs=[thumbs[p] for p in outlier_rows["page_row"]] if outlier_rows is not None else [],
        pairs=galleries, title=f"Galaxy_VAE latent-space explorer: {run}",
        notes=[f"{len(rows)} of {n} galaxies; maps of the Part I latents (analysis/decals_3.py); neighbours: "
               f"{distance_note}; RA/Dec from {position_source}.",
               "Hover a point for its image, click it (or search a name) for its neighbours; "
               "wheel: zoom, drag: pan. Nothing on this page is fetched from the network; sky-viewer links open "
               "legacysurvey.org."])
    # with a --max-galaxies subset, a neighbour that was not drawn is named in the gallery, without an image
    off = np.argwhere(data.neighbour_rows < 0)
    data.off_page_names = {f"{i}:{j}": str(names["name"].iloc[neighbour_rows[rows[i], j]]) for i, j in off}
    page = build_page(data, args.k, distance_note)
    out = Path(args.output) if args.output else runfiles.run_path(run, runfiles.EXPLORER_HTML)
    write_text(page, out)
    bar.update()
    bar.close()
    record = {"page": str(out), "page_bytes": out.stat().st_size, "n_galaxies": n, "n_on_page": int(len(rows)),
              "maps": list(maps), "model": model_label, "distance": distance_note, "k": args.k,
              "colourings": [c.key for c in colourings], "default_colouring": default,
              "n_outliers_listed": 0 if outlier_rows is None else int(len(outlier_rows)),
              "pair_galleries": [g.title for g in galleries], "positions": position_source,
              "seconds": round(time.perf_counter() - start, 2), "config": describe_args(args)}
    write_json(record, runfiles.run_path(run, runfiles.EXPLORER_CONFIG_JSON) if not args.output else out.with_suffix(".json"))
    return record


@cli_main
@provenance.memoised      # each image set stat'ed once in this stage
def main(argv=None) -> int:
    args = parse_args(argv)
    seed_everything(args.seed)
    with Stage(args.run, "analysis/explore.py", args):   # records the page with what it was read from
        record = explore(args)
    print(f"done in {record['seconds']:.1f} s: {record['page']} ({record['page_bytes'] / 1e6:.2f} MB, "
          f"{record['n_on_page']} galaxies, maps {', '.join(record['maps'])}, {record['k']} neighbours each, "
          f"{record['model']} model, {record['n_outliers_listed']} outliers, {len(record['pair_galleries'])} pair galleries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
