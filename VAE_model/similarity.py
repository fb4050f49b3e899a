"""Similarity search in the latent space ("show me galaxies like this one") and its scoring.

The index is k-nearest-neighbour search with Euclidean distance on the VAE means ``mu``:
exact (scikit-learn) for small samples, a FAISS HNSW graph from ``neighbours.EXACT_MAX_ROWS`` galaxies
on, built once per latents file and stored in the run (VAE_model/neighbours.py says why and how).
``mu`` rather than a sample z: it is the deterministic embedding of an image; Euclidean: the KL term
pulls every latent dimension towards a unit Gaussian, so the dimensions share one scale.

Scoring (``precision_at_k``): the fraction of a query's k nearest neighbours that share its true
class. Its random expectation is the fraction of same-class galaxies in the index: (n_t - 1) / (N - 1)
when the query itself is in the index (and excluded from its neighbours), n_t / N otherwise.

Orientation: the VAE is trained with flips and quarter-turns, so its ``mu`` encodes the position
angle, and a galaxy rotated by 90 degrees lands about as far away as a random other galaxy (demo:
median shift 3.0, median distance between two galaxies 3.2). The index can therefore hold
orientation-averaged latents (``features.encode_arrays(..., orientation_average=True)``: mu averaged
over the 8 flips/quarter-turns of the image), which are exactly invariant to those transforms.
Averaging removes the orientation part of each dimension's variance, which is most of it in most
dimensions (demo: the standard deviation over the galaxies falls to 0.02-0.05 in most dimensions
while one or two keep ~1), so the one-scale argument above no longer holds and plain Euclidean
distance would see little more than those one or two dimensions. Averaged latents are therefore
standardised: each dimension divided by its standard deviation over the index (``latent_scale``;
``LatentTable.scale``), and query vectors by the same numbers (``LatentTable.embed``).
``LatentTable.orientation_average`` records which encoding a table holds; queries are encoded the
same way.

Queries encoded from an image file go through the same path as the index: the one loader
(``imageio.load_image``), uint8 quantisation as in the decode-once cache, then ``model.encode``
(orientation-averaged when the index is); so a file of an indexed galaxy gets (to float rounding)
the stored latent.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DEFAULT_K, DEFAULT_RADIUS_ARCSEC
from .errors import GalaxyVAEError


class QueryError(GalaxyVAEError, ValueError):
    """A query that cannot be answered; str() is one line naming the problem."""


@dataclass
class LatentTable:
    """The latents of one survey's images under one model, with what a search result reports.

    ``image_index`` is the row of the galaxy in its source list (train.txt for DECaLS, the pair
    row of transfer/pairs.csv for BASS+MzLS); rows whose image could not be encoded are absent.
    ``orientation_average``: ``mu`` is the mean over the 8 flips/quarter-turns of each image.
    ``scale``: when set, ``mu`` holds the encoder's mu divided by it per dimension (``embed``).
    ``source``: the run file the latents came from, when they are one file's rows as they stand (the
    run's stored neighbour index is then reused, VAE_model/neighbours.py); None for a table made here.
    """

    survey: str
    model: str
    mu: np.ndarray
    names: np.ndarray
    paths: np.ndarray
    image_index: np.ndarray
    ra: np.ndarray | None = None
    dec: np.ndarray | None = None
    orientation_average: bool = False
    scale: np.ndarray | None = None
    source: str | None = None          # run-relative latents file ``mu`` was read from (its neighbour index is stored)
    image_size: int | None = None      # the model's input size, as the latents' record gives it (the gallery's images)
    _rows_by_name: dict = field(default=None, repr=False)
    _rows_by_path: dict = field(default=None, repr=False)

    def __post_init__(self):
        self.mu = np.asarray(self.mu, dtype=np.float32)
        self.names = np.asarray(self.names, dtype=str)
        self.paths = np.asarray(self.paths, dtype=str)
        self.image_index = np.asarray(self.image_index, dtype=int)
        if not (len(self.mu) == len(self.names) == len(self.paths) == len(self.image_index)):
            raise ValueError(f"{self.survey} latent table: mu, names, paths and image_index differ in length")

    def __len__(self) -> int:
        return len(self.mu)

    def embed(self, vectors: np.ndarray) -> np.ndarray:
        """Encoder mu (Q, latent_dim) of queries -> the space of this table's ``mu`` (same scaling)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        return vectors if self.scale is None else vectors / self.scale

    def row_of_name(self, name: str) -> int | None:
        if self._rows_by_name is None:
            self._rows_by_name = {n: i for i, n in enumerate(self.names)}
        return self._rows_by_name.get(str(name).strip())

    def row_of_path(self, path: str | Path) -> int | None:
        """The row whose image is this file (same file on disk), else None."""
        if self._rows_by_path is None:
            self._rows_by_path = {os.path.realpath(p): i for i, p in enumerate(self.paths)}
        return self._rows_by_path.get(os.path.realpath(str(path)))


# ----------------------------------------------------------------------------- index
def latent_scale(mu: np.ndarray) -> np.ndarray:
    """Per-dimension standard deviation of ``mu`` (N, latent_dim) over its finite rows; 1 for a
    constant dimension. Dividing by it gives every dimension unit variance over the index."""
    mu = np.asarray(mu, dtype=np.float64)
    std = mu[np.isfinite(mu).all(axis=1)].std(axis=0)
    return np.where(std > 0, std, 1.0).astype(np.float32)


def build_index(mu: np.ndarray):
    """Euclidean k-NN index over the rows of ``mu`` (N, latent_dim): exact below
    ``neighbours.EXACT_MAX_ROWS`` rows, FAISS HNSW above (VAE_model/neighbours.py)."""
    from .neighbours import NeighbourIndexError, build

    try:
        return build(mu)
    except NeighbourIndexError as error:
        raise QueryError(str(error)) from None


def nearest(index, mu_index: np.ndarray, vectors: np.ndarray, k: int = DEFAULT_K,
            exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows (Q, k) and Euclidean distances (Q, k) of the k nearest index rows of each query vector.

    ``exclude[q]`` (>= 0) is an index row left out of query q's neighbours: the query galaxy
    itself, so a galaxy is never its own best match. Distances are recomputed in float64 for the
    rows found only. ``index``: ``build_index``'s, or a ``neighbours.RunNeighbours`` stored in the run.
    ``mu_index`` is the array the index was built on (kept for the callers; the index holds it).
    """
    from .neighbours import NeighbourIndexError

    try:
        return index.nearest(vectors, k, exclude)
    except NeighbourIndexError as error:
        raise QueryError(str(error)) from None


# ----------------------------------------------------------------------------- scoring
def precision_at_k(neighbour_labels: np.ndarray, query_labels: np.ndarray) -> np.ndarray:
    """Per query: fraction of its neighbours (Q, k) with the query's label (Q,)."""
    neighbour_labels = np.asarray(neighbour_labels)
    return (neighbour_labels == np.asarray(query_labels)[:, None]).mean(axis=1)


def random_expectation(index_labels: np.ndarray, query_labels: np.ndarray, query_in_index: bool) -> np.ndarray:
    """Per query: expected precision@k of k neighbours drawn at random from the index."""
    counts = pd.Series(np.asarray(index_labels)).value_counts()
    n_same = np.array([counts.get(label, 0) for label in np.asarray(query_labels)], dtype=float)
    n_total = float(len(index_labels))
    if query_in_index:
        return (n_same - 1.0) / max(n_total - 1.0, 1.0)
    return n_same / max(n_total, 1.0)


def same_label_precision(mu: np.ndarray, labels: np.ndarray, query_rows: np.ndarray, k: int = DEFAULT_K,
                         index=None) -> tuple[np.ndarray, np.ndarray]:
    """precision@k of indexed galaxies used as queries (themselves excluded): (per-query precision, rows)."""
    query_rows = np.asarray(query_rows, dtype=int)
    index = index if index is not None else build_index(mu)
    rows, _ = nearest(index, mu, np.asarray(mu)[query_rows], k, exclude=query_rows)
    labels = np.asarray(labels)
    return precision_at_k(labels[rows], labels[query_rows]), rows


def summarise(model: str, query_labels: np.ndarray, precision: np.ndarray, expectation: np.ndarray,
              k: int = DEFAULT_K, overall: str = "all", extra: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row for all queries (``overall``) and one per label: mean precision@k and random expectation.

    ``extra`` maps more column names to per-query values averaged the same way (NaN ignored).
    """
    query_labels = np.asarray(query_labels).astype(str)
    rows = []
    groups = [(overall, np.ones(len(query_labels), bool))]
    groups += [(label, query_labels == label) for label in sorted(set(query_labels))]
    for label, chosen in groups:
        row = {"model": model, "morph_type": label, "n_queries": int(chosen.sum()),
               f"precision_at_{k}": float(np.mean(precision[chosen])) if chosen.any() else float("nan"),
               "random_expectation": float(np.mean(expectation[chosen])) if chosen.any() else float("nan")}
        for column, values in (extra or {}).items():
            picked = np.asarray(values, dtype=float)[chosen]
            row[column] = float(np.nanmean(picked)) if np.isfinite(picked).any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- queries
def match_position(ra_deg: float, dec_deg: float, table_ra: np.ndarray, table_dec: np.ndarray,
                   radius_arcsec: float = DEFAULT_RADIUS_ARCSEC) -> tuple[int, float]:
    """(row, separation in arcsec) of the indexed galaxy nearest to (RA, Dec) within the radius.

    Raises QueryError when no galaxy with a known position lies within the radius.
    """
    from .catalog import cross_match

    if not (np.isfinite(ra_deg) and np.isfinite(dec_deg) and -90.0 <= dec_deg <= 90.0):
        raise QueryError(f"invalid position RA {ra_deg}, Dec {dec_deg} (degrees; Dec within [-90, 90])")
    table_ra, table_dec = np.asarray(table_ra, float), np.asarray(table_dec, float)
    known = np.flatnonzero(np.isfinite(table_ra) & np.isfinite(table_dec))
    if len(known) == 0:
        raise QueryError("no indexed galaxy has a known sky position")
    index, sep = cross_match([ra_deg], [dec_deg], table_ra[known], table_dec[known], radius_arcsec)
    if index[0] < 0:
        raise QueryError(f"no galaxy within {radius_arcsec:g} arcsec of RA {ra_deg:.6f}, Dec {dec_deg:+.6f} "
                         f"(nearest indexed galaxy at {sep[0]:.1f} arcsec; widen --radius-arcsec)")
    return int(known[index[0]]), float(sep[0])


def run_image_positions(run, paths) -> tuple[np.ndarray, np.ndarray] | None:
    """RA/Dec (deg) of each image of ``paths`` as make_datatxt.py read them from the headers, once
    (RUN/images.csv, through the typed reader), NaN where the header gave none; None when the run
    has no images.csv or it does not list every one of ``paths`` (a list make_datatxt did not write).
    Saves re-reading N FITS headers (2/3 of the latent extraction's time at 40k images)."""
    from . import readers, runfiles

    if not (Path(run) / runfiles.IMAGES_CSV).exists():
        return None
    table = readers.read_table(run, runfiles.IMAGES_CSV, readers.MAKE_DATATXT, ("path", "ra", "dec"),
                               dtype={"path": str, "name": str})
    row_of: dict[str, int] = {}
    for row, path in enumerate(table["path"].tolist()):     # a dict: pandas' isin on strings is 10x slower
        row_of.setdefault(path, row)                        # a path listed twice: its first row
    rows = np.fromiter((row_of.get(str(p), -1) for p in paths), dtype=np.int64, count=len(paths))
    if (rows < 0).any():
        return None
    return table["ra"].to_numpy(float)[rows], table["dec"].to_numpy(float)[rows]


def load_images_uint8(paths, image_size: int, progress: bool = False,
                      framing: str = "") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load images with the one loader, quantised as in the cache: (uint8 (N, 3, S, S), ok mask, errors).

    ``framing``: the model's VAEConfig.framing; each file is framed by that rule, measured on the file
    (a catalog-radius framing falls back to the image's own light moments: a file has no catalog row).

    An unusable file (ImageError) leaves a zero image, ok False and its one-line reason in errors.
    """
    from tqdm import tqdm

    from .data import quantise_uint8
    from .framing import Framing
    from .imageio import ImageError, load_image

    frame = Framing.from_json(framing)
    frame = frame.for_image(None) if frame.active else None

    paths = list(paths)
    images = np.zeros((len(paths), 3, image_size, image_size), np.uint8)
    ok = np.zeros(len(paths), bool)
    errors = []
    for i, path in enumerate(tqdm(paths, desc="load images", unit="img", disable=not progress or len(paths) < 64)):
        try:
            images[i] = quantise_uint8(load_image(path, image_size, frame=frame))
            ok[i] = True
        except ImageError as error:
            errors.append(str(error))
    return images, ok, errors


def encode_files(model, paths, device, orientation_average: bool = False) -> np.ndarray:
    """mu (N, latent_dim) of image files, encoded on the fly the way the index was encoded
    (pass the index's ``orientation_average``).

    Raises QueryError (one line naming the file) for unusable images.
    """
    from .features import encode_arrays

    images, ok, errors = load_images_uint8(paths, model.config.image_size, framing=model.config.framing)
    if not ok.all():
        raise QueryError(errors[0])
    mu, _ = encode_arrays(model, images, device, orientation_average=orientation_average)
    return mu


def slug(text: str) -> str:
    """A file-name-safe version of a query label ('J123456.78+123456.7' stays as it is)."""
    cleaned = re.sub(r"[^A-Za-z0-9.+\-_]+", "_", str(text)).strip("._")
    return cleaned[:120] or "query"


__all__ = ["DEFAULT_K", "DEFAULT_RADIUS_ARCSEC", "QueryError", "LatentTable", "latent_scale", "build_index",
           "nearest", "run_image_positions", "precision_at_k", "random_expectation", "same_label_precision", "summarise", "match_position",
           "load_images_uint8", "encode_files", "slug"]
