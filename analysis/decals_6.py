"""Part I, step 6: similarity search in the latent space ("show me galaxies like this one").

A nearest-neighbour index over the VAE latents (Euclidean distance on ``mu``; exact scikit-learn
search below 40,000 galaxies, a FAISS HNSW graph above), built once per latents file and stored in
the run with its provenance (RUN/neighbours/, VAE_model/neighbours.py), so later queries read it.
A query is a galaxy given by
  --name IAUNAME      a galaxy of the index (``--name auto``: the first Galaxy Zoo 'merger' of
                      RUN/selection/classes.csv with an image, else the first galaxy of names.csv);
                      a name of the other survey (pairs.csv) is encoded from its image file
  --ra --dec          sky position in degrees, the nearest indexed galaxy within --radius-arcsec
                      (positions from RUN/selection/catalog_index.csv, else the header positions
                      make_datatxt.py read once, RUN/images.csv)
  --image PATH        any cutout file, encoded on the fly with the model (one loader, model image size);
                      a file of another format than the index's (a PNG render against FITS cutouts)
                      gets a note: distances across formats are not comparable
and the answer is its k nearest galaxies. The query galaxy itself is never its own neighbour
(by name, by position, or by the image file of an indexed galaxy: same neighbours).

Across surveys: --image of a BASS+MzLS cutout searches the DECaLS latents; --index-survey bass
(or --reverse) searches the BASS+MzLS images of the transfer pairs instead. --model auto uses the
adapted model (RUN/transfer/adapted.pt) when it exists, else RUN/best.pt; the index is always
encoded with the same model as the query (latents of models other than best.pt are cached).
The model is loaded only to encode (a query file, a name of the other survey, latents to make): a
query by name or position of an indexed galaxy loads none and never imports torch, and takes the
checkpoint's digest and image size from the latents' records (latents_config.json, or the cached
latents' stamp); its neighbours come from the stored neighbour graph (issue 19: a later query under
2 s of CPU in a new process; its gallery is drawn with Pillow).

Orientation (--orientation-average; off by default): index and queries use mu averaged over the
8 flips/quarter-turns of each image, each dimension divided by its standard deviation over the
index (averaging leaves most dimensions with a small fraction of their variance; see
VAE_model/similarity.py). Why it exists: the VAE is trained with flip/rotation augmentation, so it
learns to reconstruct every orientation and its mu encodes the position angle; a galaxy turned by
90 degrees moves about as far in latent space as a random other galaxy. The averaged mu is exactly
invariant to those 8 transforms (not to arbitrary angles). On the demo it helps queries for
disturbed and edge-on galaxies and hurts smooth ones and cross-survey identity (orientation is
identity information; the measured figures are in README, "Similarity search"). So it is an
option, not the default: try it when searching for disturbed or irregular objects. Cost: 8x the encoding time,
paid once for the index (cached) and per query file. The averaged index cannot come from
RUN/latents/mu.npy (one orientation): it is encoded from the cache and saved (raw averaged mu) as
RUN/similarity/latents_<model>_orientation_average.npy. Every query (name, position, file,
cross-survey, --evaluate) is encoded and scaled the way its index is (BASS+MzLS queries against
DECaLS: the DECaLS scale); the setting is recorded in the query JSON and in the
orientation_average column of the precision files.

--evaluate scores the search on the mock survey against its truth table (never used otherwise):
precision@10 = fraction of the 10 nearest neighbours with the query's true morph_type, for every
DECaLS galaxy as query, per type and overall, for the Part I model and the adapted model (if any),
with the random expectation (fraction of same-type galaxies). Defect policy: galaxies whose
DECaLS image carries a planted defect (truth defect_decals != '') stay in the index (as in real
use) but are scored separately, as the row morph_type = 'defective', not in 'all' or the types.
Cross-survey: the BASS+MzLS images of the test pairs as queries against the DECaLS latents:
precision@10 of same type and the fraction with the true DECaLS counterpart in the top 1 / 10,
before (Part I model) and after adaptation (same defect policy, on defect_bass).

READS   RUN/best.pt (Galaxy_VAE_n.py), RUN/train.txt, RUN/cache/ (built if absent)
        RUN/latents/mu.npy, names.csv (analysis/decals_2_2.py)
        RUN/selection/catalog_index.csv (analysis/decals_2_1.py; optional, positions)
        RUN/images.csv (make_datatxt.py; positions read from the headers once)
        RUN/neighbours/<latents>_graph.npz, .faiss (VAE_model/neighbours.py; built here when absent)
        RUN/selection/classes.csv (analysis/decals_1.py; optional, --name auto)
        RUN/transfer/pairs.csv, bass_pairs.txt, adapted.pt (transfer/; optional)
        MOCK_DIR/truth.parquet (--evaluate only)
WRITES  RUN/similarity/query_<slug>.csv   rank, name, image_index, distance, ra, dec, path
        RUN/similarity/query_<slug>.png   gallery: the query, then its neighbours with distances
        RUN/similarity/query_<slug>.json  the query, the model, the configuration
        RUN/similarity/precision_at_10.csv|.json|.png   (--evaluate) model, orientation_average,
                                          morph_type, n_queries, precision_at_10, random_expectation
                                          (+ cross-survey in the JSON)
        RUN/similarity/cross_survey_precision.csv       (--evaluate, when pairs exist)
        RUN/similarity/latents_<key>.npy, bass_latents_<key>.npy (+ .json stamp)  latent caches;
                                          <key> = <model>_orientation_average, or <model> with
                                          --no-orientation-average (part1 then reads latents/mu.npy)
        RUN/similarity/index_positions.csv               RA/Dec per indexed galaxy (+ source), only for
                                          an image list without make_datatxt's images.csv
        every output with its provenance record (RUN/provenance/), so `provenance stale` sees it

    python analysis/decals_6.py --run runs/demo --name J101234.56+301234.5
    python analysis/decals_6.py --run runs/demo --ra 153.1440 --dec 30.2096 --k 20
    python analysis/decals_6.py --run runs/demo --image data/mock/bass_mzls/J101234.57+301234.6.fits
    python analysis/decals_6.py --run runs/demo --reverse --name J101234.56+301234.5
    python analysis/decals_6.py --run runs/demo --evaluate --name auto
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from VAE_model import runfiles
from VAE_model.cli_args import (add_batch_size_argument, add_quiet_argument, add_runtime_arguments, cli_main,
                                describe_args)
from VAE_model.config import DEFAULT_K, DEFAULT_RADIUS_ARCSEC

STAGE = "analysis/decals_6.py"
EVAL_K = 10                # precision@10, as named in the output files
DEFECTIVE = "defective"    # morph_type label of the separately scored defective queries
MODEL_CHOICES = "auto (adapted if RUN/transfer/adapted.pt exists, else best.pt), part1, adapted, or a checkpoint path"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    query = parser.add_mutually_exclusive_group()
    query.add_argument("--name", default=None, help="query galaxy name (iauname = file stem); 'auto': a Galaxy Zoo merger")
    query.add_argument("--ra", type=float, default=None, help="query position: right ascension in degrees (with --dec)")
    query.add_argument("--image", default=None, help="query image file (FITS/PNG/JPG), encoded on the fly")
    parser.add_argument("--dec", type=float, default=None, help="query position: declination in degrees (with --ra)")
    parser.add_argument("--radius-arcsec", type=float, default=DEFAULT_RADIUS_ARCSEC,
                        help="match radius of a position query, arcsec (default: %(default)s)")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="number of neighbours returned (default: %(default)s)")
    parser.add_argument("--model", default="auto", help=f"model: {MODEL_CHOICES} (default: %(default)s)")
    parser.add_argument("--index-survey", choices=["decals", "bass"], default="decals",
                        help="latents searched: DECaLS images (train.txt) or the BASS+MzLS images of the "
                             "transfer pairs (default: %(default)s)")
    parser.add_argument("--reverse", action="store_true", help="same as --index-survey bass (DECaLS query, BASS+MzLS index)")
    parser.add_argument("--evaluate", action="store_true",
                        help="score precision@10 against the mock survey truth (Part I and adapted models)")
    parser.add_argument("--mock-dir", default=None,
                        help="mock survey folder with truth.parquet (default: the one make_datatxt.py used, "
                             f"else {runfiles.DEFAULT_MOCK_DIR})")
    parser.add_argument("--orientation-average", action=argparse.BooleanOptionalAction, default=False,
                        help="index and queries use mu averaged over the 8 flips/quarter-turns of each image "
                             "(standardised per dimension), so the search ignores the galaxy's orientation "
                             "(default: off; 8x encoding time; README gives the measured trade-off)")
    add_batch_size_argument(parser, 1024, "encoding batch size")
    add_quiet_argument(parser)
    args = parser.parse_args(argv)
    if args.reverse:
        args.index_survey = "bass"
    if (args.ra is None) != (args.dec is None):
        parser.error("--ra and --dec go together")
    if args.k < 1:
        parser.error("--k must be at least 1")
    if args.name is None and args.ra is None and args.image is None and not args.evaluate:
        parser.error("give a query (--name, --ra/--dec or --image) and/or --evaluate")
    return args


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import provenance, readers
from VAE_model.errors import StaleInputError
from VAE_model.catalog import CatalogError
from VAE_model.data import image_cache, image_name, list_digest, read_image_list
from VAE_model.files import write_json
from VAE_model.imageio import ImageError, image_position, is_fits, load_image
from VAE_model.neighbours import RunNeighbours, run_neighbours
from VAE_model.similarity import (LatentTable, QueryError, build_index, encode_files, latent_scale, load_images_uint8,
                                  match_position, nearest, precision_at_k, random_expectation, run_image_positions,
                                  slug, summarise)


# ----------------------------------------------------------------------------- models and latents
class Models:
    """The checkpoints one call of this stage uses, each loaded on first use. A query that encodes nothing
    (a galaxy of the index by name or position, with its latents current) never loads a model nor imports
    torch (~2.5 s of CPU per process): what it needs of the model is in the run's records (the latents'
    checkpoint digest and image size). The device is picked and the seeds set when a model is first needed."""

    def __init__(self, device: str = "auto", seed: int = 0):
        self._device_choice, self._seed = device, seed
        self._device, self._loaded = None, {}

    @property
    def device(self):
        if self._device is None:
            from VAE_model.runtime import pick_device, seed_everything

            self._device = pick_device(self._device_choice)
            seed_everything(self._seed)
        return self._device

    def load(self, path: Path):
        key = str(Path(path).resolve())
        if key not in self._loaded:
            from VAE_model.runtime import load_model

            self._loaded[key] = load_model(path, self.device)
        return self._loaded[key]


def resolve_model(run: str, choice: str) -> tuple[Path, str]:
    """(checkpoint path, model label): 'part1' = RUN/best.pt, 'adapted' = RUN/transfer/adapted.pt."""
    best, adapted = Path(run) / runfiles.BEST_CHECKPOINT, Path(run) / runfiles.TRANSFER_ADAPTED
    if choice == "auto":
        choice = "adapted" if adapted.exists() else "part1"
    if choice == "part1":
        return readers.checkpoint_path(run), "part1"
    if choice == "adapted":
        return readers.checkpoint_path(run, runfiles.TRANSFER_ADAPTED, readers.EVALUATE), "adapted"
    path = readers.external_checkpoint(run, choice)
    for known, label in ((best, "part1"), (adapted, "adapted")):
        if known.exists() and known.resolve() == path.resolve():
            return path, label
    return path, slug(path.stem)


# keys of a latent cache's stamp that the checkpoint fixes: written when the latents are made, not compared
# (the same checkpoint digest gives the same image size and latent dimension), so checking a cache loads no model
MODEL_STAMP_KEYS = ("image_size", "latent_dim")


def _checkpoint_stamp(path: Path, paths: list[str]) -> dict:
    """What cached latents were made from: the checkpoint's content, the images (sizes, times)."""
    return {"checkpoint": str(Path(path).resolve()), "checkpoint_sha256": provenance.file_digest(path),
            "list_sha1": list_digest(paths), "images": provenance.image_set_identity(paths)}


def _model_stamp(model) -> dict:
    return {"image_size": model.config.image_size, "latent_dim": model.config.latent_dim}


def latents_key(label: str, orientation_average: bool) -> str:
    """File-name key of a latent cache: the two encodings never share a file."""
    return f"{label}_orientation_average" if orientation_average else label


def search_index(run: str, table: LatentTable):
    """The neighbour index of a latent table: the run's stored one when the table is one latents file's
    rows as they stand (built once per file, VAE_model/neighbours.py), else one built for this search."""
    if table.source is None:
        return build_index(table.mu)
    return run_neighbours(run, table.source, table.mu, stage=STAGE, standardised=table.scale is not None)


def image_format(path) -> str:
    return "FITS" if is_fits(path) else Path(str(path)).suffix.lower().lstrip(".").upper() or "unknown"


def format_note(query_path, index_paths) -> str | None:
    """A warning when a query image's format differs from the index's (a PNG/JPG render against FITS
    cutouts, say): a render carries its own stretch and colour mapping, so its encoding lands away
    from the same galaxy's FITS encoding (a viewer render of an indexed galaxy: distance 0.88 vs
    0.015 for its FITS file, issue 18), and distances across formats are not comparable."""
    formats = pd.Series([image_format(p) for p in index_paths]).value_counts()
    query = image_format(query_path)
    if not len(formats) or query in formats.index:
        return None
    held = ", ".join(f"{n} {f}" for f, n in formats.items())
    return (f"the query {query_path} is a {query} image and the index holds {held} images: distances across "
            f"formats are not comparable (a render has its own stretch and colours); query with the same "
            f"format as the index for a meaningful ranking")


def cached_latents(run: str, name: str, stamp: dict, make, inputs: list) -> tuple[np.ndarray, dict]:
    """Latents saved at RUN/``name`` (+ .json stamp) and their stamp, recomputed by ``make()`` ->
    (mu, the model's stamp keys) when the stamp differs, with a provenance record (``inputs``: the
    checkpoint, the image list and its images). Only ``make`` needs the model."""
    out_path = runfiles.run_path(run, name)
    meta_path = out_path.with_suffix(".json")
    if out_path.exists() and meta_path.exists():
        saved = json.loads(meta_path.read_text())
        if all(key in saved for key in MODEL_STAMP_KEYS) \
                and {k: v for k, v in saved.items() if k not in MODEL_STAMP_KEYS} == stamp \
                and provenance.problem(run, name, STAGE) is None:
            return np.load(out_path), saved
    mu, model_keys = make()
    stamp = stamp | model_keys
    np.save(out_path, mu)
    meta_path.write_text(json.dumps(stamp, indent=2))
    meta_name = str(Path(name).with_suffix(".json"))
    provenance.record(run, [name, meta_name], inputs, STAGE, stamp)
    return mu, stamp


def decals_table(run: str, models: Models, model_path: Path, label: str, batch_size: int = 1024,
                 progress: bool = True, orientation_average: bool = False) -> LatentTable:
    """The DECaLS latents (rows of train.txt) under the model ``model_path`` (loaded only to encode).

    Part I model without orientation averaging: RUN/latents/mu.npy as decals_2_2 wrote it. Any
    other model or setting: the decode-once cache encoded with it, saved in
    RUN/similarity/latents_<model>[_orientation_average].npy (+ .json stamp). The table's image
    size is the one its latents record (latents_config.json, or the stamp).
    """
    latents = readers.read_latents(run)
    names = latents.names
    list_path = Path(run) / runfiles.TRAIN_TXT
    paths = readers.read_train_list(run)
    if len(paths) != len(names) or list(names["path"]) != paths:
        raise StaleInputError(f"{Path(run) / runfiles.LATENT_NAMES} does not match {list_path}; "
                              f"re-run `analysis/decals_2_2.py --run {run}`")
    if label == "part1" and not orientation_average:
        # queries encoded with this model must search latents of this model
        readers.check_latents_model(latents, model_path, run)
        mu, source, image_size = latents.mu, runfiles.LATENT_MU, latents.config.get("image_size")
        if image_size is None:
            raise StaleInputError(f"{Path(run) / runfiles.LATENT_CONFIG_JSON}: no image_size (written by an older "
                                  f"version); re-run `analysis/decals_2_2.py --run {run}`")
    else:
        def make():
            from VAE_model.features import encode_arrays

            model = models.load(model_path)
            cache = image_cache(list_path, model.config.image_size, Path(run) / runfiles.CACHE_DIR, progress=progress)
            return encode_arrays(model, cache, models.device, batch_size=batch_size, progress=progress,
                                 orientation_average=orientation_average)[0], _model_stamp(model)

        source = runfiles.SIMILARITY_LATENTS.format(model=latents_key(label, orientation_average))
        stamp = _checkpoint_stamp(model_path, paths) | {"orientation_average": orientation_average}
        mu, stamp = cached_latents(run, source, stamp, make, [provenance.Input.file(model_path),
                                                              *readers.train_list_input(list_path, paths)])
        image_size = stamp["image_size"]
    scale = latent_scale(mu) if orientation_average else None
    return LatentTable("decals", label, mu if scale is None else mu / scale, names["name"].to_numpy(),
                       names["path"].to_numpy(), names["image_index"].to_numpy(),
                       orientation_average=orientation_average, scale=scale, source=source, image_size=image_size)


def read_pairs(run: str) -> pd.DataFrame:
    pairs = readers.read_pairs(run)
    missing = {"ra", "dec", "bass_path"} - set(pairs.columns)
    if missing:
        raise StaleInputError(f"{Path(run) / runfiles.TRANSFER_PAIRS_CSV}: missing columns {', '.join(sorted(missing))}; "
                              f"re-run `transfer/make_pairs.py --run {run}`")
    return pairs


def bass_table(run: str, models: Models, model_path: Path, label: str, batch_size: int = 1024,
               progress: bool = True, orientation_average: bool = False, scale: np.ndarray | None = None) -> LatentTable:
    """The BASS+MzLS latents of the transfer pairs (image_index = row of pairs.csv) under this model.

    Images come from the decode-once cache of transfer/bass_pairs.txt when it lists the pairs'
    files, else straight from the files; pairs whose image cannot be used are left out.
    Saved in RUN/similarity/bass_latents_<model>[_orientation_average].npy (NaN rows: unusable images).
    Orientation-averaged latents are divided by ``scale`` (the DECaLS index's, for queries against
    DECaLS), else by their own per-dimension standard deviation (this table is the index).
    """
    pairs = read_pairs(run)
    paths = pairs["bass_path"].astype(str).tolist()

    def make():
        from VAE_model.features import encode_arrays

        model = models.load(model_path)
        image_size = model.config.image_size
        list_path = Path(run) / runfiles.TRANSFER_BASS_LIST
        if list_path.exists() and read_image_list(list_path) == paths:
            images, ok = image_cache(list_path, image_size, Path(run) / runfiles.CACHE_DIR, progress=progress), None
        else:
            images, ok, errors = load_images_uint8(paths, image_size, progress)
            if errors:
                print(f"note: {len(errors)} BASS+MzLS images unusable, left out (first: {errors[0]})")
        mu = encode_arrays(model, images, models.device, batch_size=batch_size, progress=progress,
                           orientation_average=orientation_average)[0]
        if ok is not None:
            mu[~ok] = np.nan
        return mu, _model_stamp(model)

    name = runfiles.SIMILARITY_BASS_LATENTS.format(model=latents_key(label, orientation_average))
    stamp = _checkpoint_stamp(model_path, paths) | {"orientation_average": orientation_average}
    # the stamp holds the images' identity; the record names the model and the pairs
    mu, stamp = cached_latents(run, name, stamp, make, [provenance.Input.file(model_path),
                                                 provenance.Input.file(Path(run) / runfiles.TRANSFER_PAIRS_CSV)])
    kept = np.isfinite(mu).all(axis=1)
    mu = mu[kept]
    if orientation_average:
        scale = latent_scale(mu) if scale is None else scale
        mu = mu / scale
    else:
        scale = None
    return LatentTable("bass", label, mu, pairs["bass_iauname"].to_numpy()[kept], np.asarray(paths)[kept],
                       np.flatnonzero(kept), pairs["ra"].to_numpy(float)[kept], pairs["dec"].to_numpy(float)[kept],
                       orientation_average=orientation_average, scale=scale, image_size=stamp["image_size"])


def decals_positions(run: str, table: LatentTable, progress: bool = True) -> None:
    """Fill table.ra/dec: catalog_index.csv (decals_2_1) first, then the image headers' positions as
    make_datatxt.py read them once (RUN/images.csv); only for a list make_datatxt did not write, the
    FITS headers themselves (RA/DEC read once, kept in RUN/similarity/index_positions.csv)."""
    n = len(table)
    ra, dec, source = np.full(n, np.nan), np.full(n, np.nan), np.full(n, "", dtype=object)
    if (Path(run) / runfiles.CATALOG_INDEX_CSV).exists():
        catalog = readers.read_catalog_index(run)
        catalog = catalog[catalog["image_index"] >= 0]
        row_of = pd.Series(np.arange(n), index=table.image_index)
        found = catalog["image_index"].isin(row_of.index).to_numpy()
        rows = row_of.loc[catalog["image_index"].to_numpy()[found]].to_numpy()
        ra[rows], dec[rows], source[rows] = catalog["ra"].to_numpy(float)[found], catalog["dec"].to_numpy(float)[found], "catalog"
    missing = np.flatnonzero(source == "")
    if not len(missing):
        table.ra, table.dec = ra, dec
        return
    listed = run_image_positions(run, table.paths.tolist())
    if listed is not None:
        known = missing[np.isfinite(listed[0][missing]) & np.isfinite(listed[1][missing])]
        ra[known], dec[known], source[known] = listed[0][known], listed[1][known], "header"
        table.ra, table.dec = ra, dec
        return
    positions_name = runfiles.SIMILARITY_POSITIONS_CSV
    cached = None
    if (Path(run) / positions_name).exists() and provenance.problem(run, positions_name, STAGE) is None:
        cached = readers.read_table(run, positions_name, STAGE, ("name", "ra", "dec", "source"), dtype={"name": str})
    if cached is not None and len(cached) == n and (cached["name"].to_numpy(str) == table.names).all():
        header = cached["source"].eq("header").to_numpy()
        use = missing[header[missing]]
        ra[use], dec[use], source[use] = cached["ra"].to_numpy()[use], cached["dec"].to_numpy()[use], "header"
    else:
        from tqdm import tqdm

        for r in tqdm(missing, desc="read RA/DEC from FITS headers", unit="img", disable=not progress or len(missing) < 200):
            image_ra, image_dec, found = image_position(table.paths[r])  # FITS WCS, else RA/DEC cards
            if found != "none":  # rasters and unreadable headers have no position, reported below
                ra[r], dec[r], source[r] = image_ra, image_dec, "header"
        pd.DataFrame({"image_index": table.image_index, "name": table.names, "ra": ra, "dec": dec,
                      "source": source}).to_csv(runfiles.run_path(run, positions_name), index=False)
        list_path = Path(run) / runfiles.TRAIN_TXT
        provenance.record(run, [positions_name], readers.train_list_input(list_path, table.paths.tolist()), STAGE)
    table.ra, table.dec = ra, dec


# ----------------------------------------------------------------------------- one query
def auto_name(run: str, table: LatentTable) -> tuple[str, str]:
    """(name, why): the first Galaxy Zoo 'merger' (decals_1 selection) in the index, else the first galaxy."""
    classes_path = Path(run) / runfiles.SELECTION_CLASSES_CSV
    if classes_path.exists():
        classes = readers.read_table(run, runfiles.SELECTION_CLASSES_CSV, readers.SELECT, ("iauname", "question", "label"),
                                     dtype={"iauname": str, "question": str, "label": str})
        mergers = classes[(classes["question"] == "merger") & (classes["label"] == "merger")]["iauname"]
        for name in mergers:
            if table.row_of_name(name) is not None:
                return name, "first Galaxy Zoo merger (RUN/selection/classes.csv) with an image"
    return str(table.names[0]), f"first galaxy of the {table.survey} index"


def other_survey_path(run: str, survey: str, name: str) -> str | None:
    """Image file of ``name`` in the survey not being searched (pairs.csv for BASS, names.csv for DECaLS)."""
    if survey == "decals":
        pairs_path = Path(run) / runfiles.TRANSFER_PAIRS_CSV
        if not pairs_path.exists():
            return None
        pairs = read_pairs(run)
        hit = pairs[pairs["bass_iauname"] == name]
        return str(hit["bass_path"].iloc[0]) if len(hit) else None
    names_path = Path(run) / runfiles.LATENT_NAMES
    if not names_path.exists():
        return None
    names = pd.read_csv(readers.checked(run, runfiles.LATENT_NAMES, readers.LATENTS), dtype={"name": str, "path": str})
    hit = names[names["name"] == name]
    return str(hit["path"].iloc[0]) if len(hit) else None


def run_query(args, run: str, table: LatentTable, models: Models, model_path: Path) -> dict:
    """Resolve the query to a latent vector, search, return everything the outputs need."""
    query = {"index_survey": table.survey, "model": table.model, "k": args.k,
             "orientation_average": table.orientation_average,
             "distance": "Euclidean on mu averaged over the 8 flips/quarter-turns, each dimension divided by its "
                         "standard deviation over the index" if table.scale is not None else "Euclidean on mu"}
    row, path = None, None
    if args.name is not None:
        name = args.name.strip()
        if name == "auto":
            name, why = auto_name(run, table)
            print(f"--name auto: {name} ({why})")
        query.update(kind="name", label=name)
        row = table.row_of_name(name)
        if row is None:
            path = other_survey_path(run, table.survey, name)
            if path is None:
                where = "RUN/latents/names.csv" + (" or RUN/transfer/pairs.csv" if table.survey == "decals" else "")
                raise QueryError(f"unknown galaxy name {name!r}: not among the {len(table)} {table.survey} galaxies "
                                 f"searched nor in {where}")
    elif args.ra is not None:
        if table.ra is None:
            decals_positions(run, table, progress=not args.quiet)
        row, sep = match_position(args.ra, args.dec, table.ra, table.dec, args.radius_arcsec)
        query.update(kind="position", label=f"ra{args.ra:.5f}_dec{args.dec:+.5f}", ra=args.ra, dec=args.dec,
                     matched_sep_arcsec=round(sep, 4))
    else:
        path = args.image
        if not Path(path).exists():
            raise QueryError(f"{path}: query image not found")
        query.update(kind="image", label=f"file_{image_name(path)}")
    if path is not None:  # encode the file; exclude it when it is an indexed image
        vector = table.embed(encode_files(models.load(model_path), [path], models.device,
                                          orientation_average=table.orientation_average))[0]
        row = table.row_of_path(path)
        query.update(query_path=str(path))
        if row is not None:
            # same file as an indexed galaxy: report how far the fresh encoding is from the stored one
            # (~1e-6 when the index was made with this model; large values mean stale latents)
            query["fresh_vs_stored_latent_distance"] = float(np.linalg.norm(vector - table.mu[row]))
    else:
        vector = table.mu[row]
    if row is not None:
        query.update(query_name=str(table.names[row]), query_image_index=int(table.image_index[row]),
                     query_path=str(table.paths[row]), excluded_from_neighbours=True)
    else:
        query.update(query_name=image_name(path), excluded_from_neighbours=False)
    if path is not None:
        note = format_note(path, table.paths)
        if note:
            print(f"note: {note}")
            query["format_note"] = note
    index = search_index(run, table)
    if path is None and isinstance(index, RunNeighbours):   # an indexed galaxy: its row of the stored graph
        rows, distances = index.nearest_of_rows([row], args.k)
    else:
        rows, distances = nearest(index, table.mu, vector[None], args.k, exclude=[-1 if row is None else row])
    query["rows"], query["distances"], query["vector_row"] = rows[0], distances[0], row
    return query


def table_images(run: str, table: LatentTable, rows, image_size: int) -> list[np.ndarray]:
    """(3, S, S) [0, 1] images of indexed galaxies (the decode-once cache for DECaLS, opened once: opening
    it checks the list and its images, O(N))."""
    if table.survey == "decals":
        cache = image_cache(Path(run) / runfiles.TRAIN_TXT, image_size, Path(run) / runfiles.CACHE_DIR, progress=False)
        return [np.asarray(cache[table.image_index[row]], dtype=np.float32) / 255.0 for row in rows]
    return [load_image(table.paths[row], image_size) for row in rows]


def table_inputs(run: str, table: LatentTable, model_path: Path) -> list:
    """What a search of ``table`` depends on: the model, and the latents file (or, for BASS+MzLS, the pairs)."""
    source = table.source or (runfiles.TRANSFER_PAIRS_CSV if table.survey == "bass" else runfiles.LATENT_MU)
    return [provenance.Input.file(model_path), provenance.Input.file(Path(run) / source)]


def write_query(args, run: str, table: LatentTable, query: dict, model_path: Path) -> tuple[Path, pd.DataFrame]:
    from VAE_model.plots import save_image_grid

    rows, distances = query["rows"], query["distances"]
    if table.ra is None and table.survey == "decals":
        decals_positions(run, table, progress=not args.quiet)
    result = pd.DataFrame({"rank": np.arange(1, len(rows) + 1), "name": table.names[rows],
                           "image_index": table.image_index[rows], "distance": np.round(distances, 6),
                           "ra": table.ra[rows] if table.ra is not None else np.nan,
                           "dec": table.dec[rows] if table.dec is not None else np.nan, "path": table.paths[rows]})
    label = slug(query["label"]) + ("" if table.survey == "decals" else "_in_bass")
    stem = runfiles.run_path(run, runfiles.SIMILARITY_QUERY.format(slug=label))
    csv_path = stem.with_name(stem.name + ".csv")
    result.to_csv(csv_path, index=False)

    if query["vector_row"] is not None:
        images = table_images(run, table, [query["vector_row"], *rows], table.image_size)
    else:
        images = [load_image(query["query_path"], table.image_size)] + table_images(run, table, rows, table.image_size)
    labels = [f"query\n{query['query_name']}"] + [f"#{i + 1}  d={d:.2f}\n{n}" for i, (d, n) in
                                                   enumerate(zip(distances, table.names[rows]))]
    survey = {"decals": "DECaLS", "bass": "BASS+MzLS"}[table.survey]
    save_image_grid([images], stem.with_name(stem.name + ".png"), col_labels=labels, cell_inches=1.5,
                    title=f"{len(rows)} nearest neighbours in the {survey} latent space "
                          f"({table.model} model, Euclidean distance on "
                          + ("standardised mu averaged over 8 flips/quarter-turns)" if table.orientation_average
                             else "mu)"))
    record = {key: value for key, value in query.items() if key not in ("rows", "distances", "vector_row")}
    config = describe_args(args)
    write_json({"query": record, "neighbours": result.to_dict(orient="records"), "config": config},
               stem.with_name(stem.name + ".json"))
    inputs = table_inputs(run, table, model_path)
    if query.get("query_path") and query["vector_row"] is None:   # a file outside the index was encoded
        inputs.append(provenance.Input.file(query["query_path"], "query image"))
    provenance.record(run, [str(Path(stem.relative_to(Path(run))).with_name(stem.name + suffix))
                            for suffix in (".csv", ".png", ".json")], inputs, STAGE, config)
    return csv_path, result


# ----------------------------------------------------------------------------- evaluation
def default_mock_dir(run: str) -> Path:
    """The mock survey make_datatxt.py used (recorded in datatxt_summary.json), else data/mock."""
    summary = Path(run) / runfiles.DATATXT_SUMMARY
    if summary.exists():
        record = readers.read_json(run, runfiles.DATATXT_SUMMARY, readers.MAKE_DATATXT)
        if record.get("mock") and record.get("mock_dir"):
            return Path(record["mock_dir"])
    return Path(runfiles.DEFAULT_MOCK_DIR)


def read_truth(mock_dir: Path) -> pd.DataFrame:
    path = runfiles.require(Path(mock_dir) / runfiles.MOCK_TRUTH, "make_datatxt.py --mock N (the mock survey)")
    try:
        truth = pd.read_parquet(path)
    except Exception as error:
        raise CatalogError(f"{path}: unreadable truth table ({type(error).__name__})") from None
    missing = {"decals_iauname", "bass_iauname", "morph_type", "defect_decals", "defect_bass"} - set(truth.columns)
    if missing:
        raise CatalogError(f"{path}: missing columns {', '.join(sorted(missing))}")
    for column in ("decals_iauname", "bass_iauname", "defect_decals", "defect_bass", "morph_type"):
        truth[column] = truth[column].fillna("").astype(str)
    return truth


def within_survey_scores(table: LatentTable, truth: pd.DataFrame, k: int = EVAL_K,
                         graph=None) -> tuple[pd.DataFrame, dict]:
    """precision@k of every DECaLS galaxy (with a truth row) as query against the others; ``graph``: the
    run's stored neighbours of ``table`` (used when every galaxy has a truth row)."""
    by_name = truth.set_index("decals_iauname")
    known = np.isin(table.names, by_name.index)
    mu, names = table.mu[known], table.names[known]
    types = by_name.loc[names, "morph_type"].to_numpy(str)
    defective = by_name.loc[names, "defect_decals"].to_numpy(str) != ""
    if graph is not None and known.all():
        rows = graph.neighbours(k)[0]
    else:
        rows, _ = build_index(mu).graph(k)
    precision = precision_at_k(types[rows], types)
    expectation = random_expectation(types, types, query_in_index=True)
    clean = summarise(table.model, types[~defective], precision[~defective], expectation[~defective], k)
    bad = summarise(table.model, types[defective], precision[defective], expectation[defective], k, overall=DEFECTIVE)
    frame = pd.concat([clean, bad.iloc[:1]], ignore_index=True) if defective.any() else clean
    frame.insert(1, "orientation_average", table.orientation_average)
    info = {"n_index": int(len(mu)), "n_without_truth": int((~known).sum()), "n_defective_queries": int(defective.sum())}
    return frame, info


def cross_survey_scores(decals: LatentTable, bass: LatentTable, pairs: pd.DataFrame, truth: pd.DataFrame,
                        k: int = EVAL_K, graph=None) -> tuple[pd.DataFrame, dict]:
    """BASS+MzLS images of the test pairs as queries against the DECaLS latents (nothing excluded);
    ``graph``: the run's stored index of the DECaLS table (used when every galaxy has a truth row)."""
    same_scale = bass.scale is None if decals.scale is None else np.array_equal(decals.scale, bass.scale)
    if decals.orientation_average != bass.orientation_average or not same_scale:
        raise ValueError("queries and index must use the same encoding (orientation_average or scale differs)")
    split = pairs["split"].astype(str).to_numpy() if "split" in pairs.columns else np.full(len(pairs), "")
    used_split = "test" if (split == "test").any() else "all"
    chosen = (split[bass.image_index] == "test") if used_split == "test" else np.ones(len(bass), bool)
    truth_bass = truth[truth["bass_iauname"] != ""].set_index("bass_iauname")
    chosen &= np.isin(bass.names, truth_bass.index)
    query_mu, query_names = bass.mu[chosen], bass.names[chosen]
    query_truth = truth_bass.loc[query_names]
    query_types = query_truth["morph_type"].to_numpy(str)
    counterparts = query_truth["decals_iauname"].to_numpy(str)
    defective = query_truth["defect_bass"].to_numpy(str) != ""

    by_name = truth.set_index("decals_iauname")
    known = np.isin(decals.names, by_name.index)
    index_mu, index_names = decals.mu[known], decals.names[known]
    index_types = by_name.loc[index_names, "morph_type"].to_numpy(str)
    index = graph if graph is not None and known.all() else build_index(index_mu)
    rows, _ = nearest(index, index_mu, query_mu, k)
    precision = precision_at_k(index_types[rows], query_types)
    expectation = random_expectation(index_types, query_types, query_in_index=False)
    findable = np.isin(counterparts, index_names)
    found_names = index_names[rows]
    top1 = np.where(findable, found_names[:, 0] == counterparts, np.nan)
    topk = np.where(findable, (found_names == counterparts[:, None]).any(axis=1), np.nan)
    extra = {"counterpart_in_top_1": top1, f"counterpart_in_top_{k}": topk}
    clean = summarise(decals.model, query_types[~defective], precision[~defective], expectation[~defective], k,
                      extra={c: v[~defective] for c, v in extra.items()})
    frames = [clean]
    if defective.any():
        frames.append(summarise(decals.model, query_types[defective], precision[defective], expectation[defective], k,
                                overall=DEFECTIVE, extra={c: v[defective] for c, v in extra.items()}).iloc[:1])
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(1, "orientation_average", decals.orientation_average)
    info = {"query_split": used_split, "n_queries": int(len(query_mu)), "n_defective_queries": int(defective.sum()),
            "n_counterpart_in_index": int(findable.sum()), "n_index": int(len(index_mu)),
            f"random_counterpart_in_top_{k}": k / max(len(index_mu), 1)}
    return frame, info


def plot_precision(within: pd.DataFrame, cross: pd.DataFrame | None, path: Path, k: int = EVAL_K,
                   random_counterpart: float | None = None, orientation_average: bool = False) -> None:
    """Bars of precision@k per true type and model (black ticks: random expectation); cross-survey panel."""
    import matplotlib.pyplot as plt

    column = f"precision_at_{k}"
    models = list(dict.fromkeys(within["model"]))
    types = [t for t in dict.fromkeys(within["morph_type"]) if t != DEFECTIVE]
    panels = 2 if cross is not None and len(cross) else 1
    fig, axes = plt.subplots(1, panels, figsize=(4 + 0.9 * len(types) + 3 * (panels - 1), 4), squeeze=False,
                             gridspec_kw={"width_ratios": [len(types) + 1, 3][:panels]})
    ax = axes[0][0]
    width = 0.8 / len(models)
    x = np.arange(len(types))
    for m, model in enumerate(models):
        part = within[within["model"] == model].set_index("morph_type").reindex(types)
        ax.bar(x + (m - (len(models) - 1) / 2) * width, part[column], width, label=f"{model} model")
        for xi, value in zip(x + (m - (len(models) - 1) / 2) * width, part["random_expectation"]):
            ax.plot([xi - width / 2, xi + width / 2], [value, value], color="k", lw=1.5)
    ax.plot([], [], color="k", lw=1.5, label="random expectation")
    ax.set_xticks(x, types, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"precision@{k} (same true morph_type)")
    ax.set_ylim(0, 1)
    ax.set_title("DECaLS queries vs DECaLS latents", fontsize=9)
    ax.legend(fontsize=7)
    if panels == 2:
        ax = axes[0][1]
        overall = cross[cross["morph_type"] == "all"].set_index("model")
        metrics = [column, f"counterpart_in_top_{k}"]
        cross_models = list(overall.index)
        width = 0.8 / len(cross_models)
        for m, model in enumerate(cross_models):
            xs = np.arange(len(metrics)) + (m - (len(cross_models) - 1) / 2) * width
            ax.bar(xs, [overall.loc[model, c] for c in metrics], width, label=f"{model} model")
            ax.plot([xs[0] - width / 2, xs[0] + width / 2], [overall.loc[model, "random_expectation"]] * 2, color="k", lw=1.5)
            if random_counterpart is not None:   # k / N: the counterpart among k random galaxies
                ax.plot([xs[1] - width / 2, xs[1] + width / 2], [random_counterpart] * 2, color="k", lw=1.5)
        ax.set_xticks(np.arange(len(metrics)), ["same type", f"counterpart\nin top {k}"], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title("BASS+MzLS test queries vs DECaLS", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("mu averaged over the 8 flips/quarter-turns, standardised" if orientation_average
                 else "mu of one orientation", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate(args, run: str, models: Models) -> dict:
    """Score both models on the mock truth; write the CSV/JSON/PNG; return the JSON record."""
    mock_dir = Path(args.mock_dir) if args.mock_dir else default_mock_dir(run)
    truth = read_truth(mock_dir)
    have_pairs = (Path(run) / runfiles.TRANSFER_PAIRS_CSV).exists()
    pairs = read_pairs(run) if have_pairs else None
    checkpoints = [resolve_model(run, "part1")]
    if (Path(run) / runfiles.TRANSFER_ADAPTED).exists():
        checkpoints.append(resolve_model(run, "adapted"))
    within, cross, info, inputs = [], [], {}, [provenance.Input.file(Path(mock_dir) / runfiles.MOCK_TRUTH, "mock truth")]
    for model_path, label in checkpoints:
        decals = decals_table(run, models, model_path, label, args.batch_size, progress=not args.quiet,
                              orientation_average=args.orientation_average)
        graph = search_index(run, decals) if decals.source is not None else None
        inputs += table_inputs(run, decals, model_path)
        frame, within_info = within_survey_scores(decals, truth, graph=graph)
        within.append(frame)
        info[label] = {"checkpoint": str(model_path), "within_decals": within_info}
        if pairs is not None:
            bass = bass_table(run, models, model_path, label, args.batch_size, progress=not args.quiet,
                              orientation_average=args.orientation_average, scale=decals.scale)
            frame, cross_info = cross_survey_scores(decals, bass, pairs, truth, graph=graph)
            inputs += table_inputs(run, bass, model_path)[1:]
            cross.append(frame)
            info[label]["cross_survey"] = cross_info
    within = pd.concat(within, ignore_index=True)
    cross = pd.concat(cross, ignore_index=True) if cross else None
    within.to_csv(runfiles.run_path(run, runfiles.SIMILARITY_PRECISION_CSV), index=False, float_format="%.4f")
    if cross is not None:
        cross.to_csv(runfiles.run_path(run, runfiles.SIMILARITY_CROSS_CSV), index=False, float_format="%.4f")
    random_counterpart = next((v["cross_survey"][f"random_counterpart_in_top_{EVAL_K}"] for v in info.values()
                               if "cross_survey" in v), None)
    plot_precision(within, cross, runfiles.run_path(run, runfiles.SIMILARITY_PRECISION_PNG),
                   random_counterpart=random_counterpart, orientation_average=args.orientation_average)
    record = {
        "k": EVAL_K, "truth": str(Path(mock_dir) / runfiles.MOCK_TRUTH),
        "orientation_average": args.orientation_average,
        "encoding": "mu averaged over the 8 flips/quarter-turns of each image, each dimension divided by its "
                    "standard deviation over the DECaLS index (index and queries)"
                    if args.orientation_average else "mu of the image as it is (one orientation)",
        "defect_policy": "galaxies with a planted image defect stay in the index but are scored separately "
                         f"(morph_type = '{DEFECTIVE}'); 'all' and the per-type rows are clean queries only",
        "random_expectation": "(n_type - 1) / (N - 1) for DECaLS queries (query excluded), n_type / N for "
                              "BASS+MzLS queries",
        "within_decals": within.to_dict(orient="records"),
        "cross_survey": cross.to_dict(orient="records") if cross is not None else None,
        "cross_survey_note": None if cross is not None else
        f"no {runfiles.TRANSFER_PAIRS_CSV}: run the transfer/ pairing stage for cross-survey scores",
        "models": info, "config": describe_args(args, device_used=str(models.device)),
    }
    write_json(record, runfiles.run_path(run, runfiles.SIMILARITY_PRECISION_JSON))
    outputs = [runfiles.SIMILARITY_PRECISION_CSV, runfiles.SIMILARITY_PRECISION_JSON, runfiles.SIMILARITY_PRECISION_PNG]
    provenance.record(run, outputs + ([runfiles.SIMILARITY_CROSS_CSV] if cross is not None else []),
                      list({(i.kind, str(i.path)): i for i in inputs}.values()), STAGE, record["config"])
    return record


# ----------------------------------------------------------------------------- main
@cli_main
@provenance.memoised      # each image set stat'ed once in this stage
def main(argv=None) -> int:
    args = parse_args(argv)
    run = args.run
    models = Models(args.device, args.seed)      # loaded when something must be encoded
    start = time.perf_counter()
    try:
        summaries = []
        if args.evaluate:
            record = evaluate(args, run, models)
            for row in record["within_decals"]:
                if row["morph_type"] == "all":
                    summaries.append(f"precision@{EVAL_K} {row['model']} {row[f'precision_at_{EVAL_K}']:.3f} "
                                     f"(random {row['random_expectation']:.3f}, {row['n_queries']} queries)")
            for row in record["cross_survey"] or []:
                if row["morph_type"] == "all":
                    summaries.append(f"cross-survey {row['model']}: same type {row[f'precision_at_{EVAL_K}']:.3f}, "
                                     f"counterpart in top {EVAL_K} {row[f'counterpart_in_top_{EVAL_K}']:.3f}")
            summaries.append("orientation-averaged latents" if args.orientation_average else "one-orientation latents")
            print(f"wrote {Path(run) / runfiles.SIMILARITY_PRECISION_CSV} and .json/.png")
        if args.name is not None or args.ra is not None or args.image is not None:
            model_path, label = resolve_model(run, args.model)
            table_of = bass_table if args.index_survey == "bass" else decals_table
            table = table_of(run, models, model_path, label, args.batch_size, progress=not args.quiet,
                             orientation_average=args.orientation_average)
            query = run_query(args, run, table, models, model_path)
            csv_path, result = write_query(args, run, table, query, model_path)
            print(result.to_string(index=False, columns=["rank", "name", "distance", "ra", "dec"]))
            summaries.append(f"query {query['query_name']} ({query['kind']}): {len(result)} neighbours in "
                             f"{len(table)} {table.survey} latents ({label} model), nearest {result['name'].iloc[0]} "
                             f"at d={result['distance'].iloc[0]:.3f}; {csv_path} and .png")
    except (QueryError, CatalogError, ImageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - start:.1f} s: " + "; ".join(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
