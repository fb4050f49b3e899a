"""Nearest neighbours in the latent space: one index per latents file, built once, stored in the run.

Every neighbour search of the project goes through here: the query of analysis/decals_6.py, the
galleries of the explorer page (analysis/explore.py), the local outlier factor of analysis/decals_4.py
and the precision@10 evaluation. Distances are Euclidean on the latents as given (``mu``, or the
standardised orientation-averaged mu; see VAE_model/similarity.py).

Two methods, chosen by size:
  exact  below ``EXACT_MAX_ROWS`` galaxies: scikit-learn ``NearestNeighbors`` for the neighbours of
         many galaxies (exact; the neighbours of all N grow like N^1.8-2 for 32-d latents: 9 s of CPU
         at 40k, 31 s at 80k, ~2 days extrapolated to 10^7); up to ``NUMPY_MAX_QUERIES`` query
         vectors (a similarity query) are searched with NumPy instead (``exact_search``: the same
         answer, without scikit-learn's ~2 s import in a new process);
  hnsw   from ``EXACT_MAX_ROWS`` on: FAISS ``IndexHNSWFlat`` (Malkov & Yashunin 2018, "Efficient and
         robust approximate nearest neighbor search using Hierarchical Navigable Small World graphs",
         IEEE TPAMI 42, 824): build and the neighbours of all N grow like N log N (measured
         exponent 1.16 from 40k to 80k: 8.6 s, 19 s of CPU; ~1.5 min at 300k, ~1.4 h at 10^7 on one
         core); a query costs ~log N, well under a millisecond. The candidate rows are approximate
         (recall of the true 20 nearest 1.000 at 20k-80k, 0.99 at 160k, clumpy 32-d latents);
         the distances reported are always the exact distances of the rows found.

Why FAISS rather than pynndescent (which umap-learn already installs): measured on this project's
2-core machine, 40k 32-d latents, one thread: FAISS HNSW imports in 0.15 s, builds in 2.8 s and finds
the 20 neighbours of all 40k galaxies in 2.4 s (recall 0.9999); pynndescent needs 32 s to import
(numba), 84 s to build the graph and 122 s to compile its query function in every new process, so a
first query of analysis/decals_6.py would take minutes. FAISS also stores the index as one file
(``faiss.write_index``) and reads it back in milliseconds, and has a GPU build for 10^7+ vectors.

Reproducibility: vectors are added to the HNSW graph on one thread (with several, the order of
insertion and so the graph can differ between runs); the searches run on all threads (a search does
not change the graph, so its answer does not depend on the thread count).

Stored in the run (``run_neighbours``), next to its provenance record (input: the latents file):
  RUN/neighbours/<key>_graph.npz   rows (N, k) int32 and distances (N, k) float32 of every galaxy's k
                                   nearest others (the galaxy itself excluded), k >= ``GRAPH_K``
  RUN/neighbours/<key>.faiss       the HNSW index (hnsw method only), for queries of new vectors
<key> names the latents file (``latents_mu`` for RUN/latents/mu.npy), with ``_standardised`` when
the vectors are divided by their per-dimension standard deviation. A stage that finds them current
(same latents file, enough neighbours, same method) reads them instead of searching again.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import GalaxyVAEError

# exact search of all N below this many galaxies: where the two cost the same on one core (bench/scale.py
# --neighbours, clumpy 32-d latents: exact 2.2 s / HNSW 4.0 s at 20k, 9.0 / 8.6 s at 40k, 31 / 19 s at 80k)
EXACT_MAX_ROWS = 40_000
GRAPH_K = 20                # neighbours stored per galaxy: decals_4's LOF default (explorer/decals_6 use 10)
# HNSW settings: M = 32 links per node and efConstruction = 80 give recall >= 0.99 on 32-d latents
# (FAISS wiki "Indexing 1M vectors" uses M = 32 for d = 64-128); efSearch is the search beam, >= k.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
QUERY_CHUNK = 8_192         # queries per search call: bounds the (chunk, k, latent_dim) float64 distance work
# exact search of at most this many vectors in NumPy (no scikit-learn import: ~2 s of a new process's CPU);
# more go to scikit-learn, whose import is then small against the search
NUMPY_MAX_QUERIES = 64
NUMPY_BLOCK_ELEMENTS = 1 << 22  # float64 (query, index row) distances held at once by exact_search: 32 MB
INDEX_DIR = "neighbours"


class NeighbourIndexError(GalaxyVAEError, ValueError):
    """An index that cannot be built or read; str() is one line."""


def _faiss():
    try:
        import faiss
    except ImportError:
        raise NeighbourIndexError("the approximate neighbour index needs the faiss-cpu package "
                                  "(requirements.txt): pip install -r requirements.txt") from None
    return faiss


def method_for(n_rows: int, exact_max_rows: int = EXACT_MAX_ROWS) -> str:
    return "exact" if n_rows < exact_max_rows else "hnsw"


class NeighbourIndex:
    """k-nearest-neighbour search over the rows of ``mu`` (N, latent_dim), exact or HNSW."""

    def __init__(self, mu: np.ndarray, method: str, hnsw=None):
        self.mu = np.ascontiguousarray(mu, dtype=np.float32)
        self.method = method
        self._hnsw = hnsw
        self._exact = None        # scikit-learn's index, fitted when many vectors are searched at once

    @property
    def n_samples_fit_(self) -> int:
        return len(self.mu)

    def candidates(self, vectors: np.ndarray, k: int) -> np.ndarray:
        """Rows (Q, k) of the k nearest index rows of each vector (nearest first; may include the vector's own row)."""
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        k = min(int(k), len(self.mu))
        if self.method == "exact":
            if len(vectors) <= NUMPY_MAX_QUERIES:
                return exact_search(self.mu, vectors, k)
            if self._exact is None:
                from sklearn.neighbors import NearestNeighbors

                self._exact = NearestNeighbors(metric="euclidean").fit(self.mu)
            return self._exact.kneighbors(vectors, k, return_distance=False)
        self._hnsw.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
        parts = [self._hnsw.search(vectors[i:i + QUERY_CHUNK], k)[1] for i in range(0, len(vectors), QUERY_CHUNK)]
        return np.concatenate(parts) if parts else np.empty((0, k), np.int64)

    def nearest(self, vectors: np.ndarray, k: int, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """Rows (Q, k) and Euclidean distances (Q, k, float64, exact for the rows found) of the k nearest
        index rows of each vector; ``exclude[q]`` >= 0 is a row left out of query q's answer (the query
        galaxy itself). Fewer than k rows are available when k >= N."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        exclude = (np.full(len(vectors), -1, dtype=np.int64) if exclude is None
                   else np.asarray(exclude, dtype=np.int64).reshape(-1))
        k = min(int(k), len(self.mu) - int(np.any(exclude >= 0)))
        if k < 1:
            raise NeighbourIndexError("k must be at least 1 and below the number of indexed galaxies")
        found = self.candidates(vectors, min(k + 1, len(self.mu)))
        usable = (found != exclude[:, None]) & (found >= 0)     # HNSW pads with -1 when it finds too few
        first = np.argsort(~usable, axis=1, kind="stable")      # usable candidates first, in search order
        rows = np.take_along_axis(found, first, 1)[:, :k].astype(np.int64)
        for q in np.flatnonzero(usable.sum(axis=1) < k):        # came back short: this query searched exactly
            kept = exact_search(self.mu, vectors[q], k + 1)[0]
            rows[q] = kept[kept != exclude[q]][:k]
        # gather the rows found, then widen: never a float64 copy of the whole index
        distances = np.linalg.norm(self.mu[rows].astype(np.float64) - vectors.astype(np.float64)[:, None, :], axis=-1)
        order = np.argsort(distances, axis=1, kind="stable")   # exact distances decide the order
        return np.take_along_axis(rows, order, 1), np.take_along_axis(distances, order, 1)

    def graph(self, k: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest other galaxies of every indexed galaxy: rows (N, k) and distances (N, k)."""
        from tqdm import tqdm

        n = len(self.mu)
        rows = np.empty((n, min(k, n - 1)), dtype=np.int64)
        distances = np.empty(rows.shape, dtype=np.float64)
        for start in tqdm(range(0, n, QUERY_CHUNK), desc=f"{k} neighbours of {n} galaxies ({self.method})",
                          unit="chunk", disable=not progress or n < 2 * QUERY_CHUNK):
            stop = min(start + QUERY_CHUNK, n)
            rows[start:stop], distances[start:stop] = self.nearest(self.mu[start:stop], k, np.arange(start, stop))
        return rows, distances


def exact_search(mu: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Rows (Q, k) of the k nearest rows of ``mu`` (N, d) to each of ``vectors`` (Q, d), nearest first, by
    exact Euclidean distance (ties: the lower row first). NumPy, in blocks of index rows so that at most
    ``NUMPY_BLOCK_ELEMENTS`` float64 numbers are held at once."""
    mu = np.asarray(mu, dtype=np.float32)
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n, k = len(mu), min(int(k), len(mu))
    # one block: its (Q, block) distances and a (block, d) float64 difference per query
    block = max(k, NUMPY_BLOCK_ELEMENTS // (max(len(vectors), 1) * max(mu.shape[1], 1)))
    best_rows = np.empty((len(vectors), 0), dtype=np.int64)
    best = np.empty((len(vectors), 0))
    for start in range(0, n, block):
        part = mu[start:start + block].astype(np.float64)
        # squared distances as sums of squared differences, one query at a time: no cancellation
        # (the |a|^2 - 2ab + |b|^2 expansion loses digits for near neighbours far from the origin)
        squared = np.stack([((part - v) ** 2).sum(axis=1) for v in vectors])
        rows = np.concatenate([best_rows, np.broadcast_to(np.arange(start, start + len(part)), squared.shape)], axis=1)
        squared = np.concatenate([best, squared], axis=1)
        if squared.shape[1] > k:
            keep = np.argpartition(squared, k - 1, axis=1)[:, :k]
            rows, squared = np.take_along_axis(rows, keep, 1), np.take_along_axis(squared, keep, 1)
        best_rows, best = rows, squared
    order = np.lexsort((best_rows, best), axis=1)     # by distance, then row
    return np.take_along_axis(best_rows, order, 1)


def build(mu: np.ndarray, method: str = "auto", exact_max_rows: int = EXACT_MAX_ROWS) -> NeighbourIndex:
    """The index of the rows of ``mu`` (N, latent_dim): exact below ``exact_max_rows`` rows, else HNSW."""
    mu = np.ascontiguousarray(mu, dtype=np.float32)
    if mu.ndim != 2 or len(mu) < 2:
        raise NeighbourIndexError(f"the index needs at least 2 galaxies (an (N, latent_dim) array), got shape {mu.shape}")
    if not np.all(np.isfinite(mu)):
        raise NeighbourIndexError("the latents contain non-finite values; re-encode the images")
    method = method_for(len(mu), exact_max_rows) if method == "auto" else method
    if method == "exact":
        return NeighbourIndex(mu, "exact")
    if method != "hnsw":
        raise NeighbourIndexError(f"unknown neighbour method {method!r} (exact, hnsw, auto)")
    faiss = _faiss()
    hnsw = faiss.IndexHNSWFlat(mu.shape[1], HNSW_M)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)          # one insertion order: the same graph on every run
    try:
        hnsw.add(mu)
    finally:
        faiss.omp_set_num_threads(threads)
    return NeighbourIndex(mu, "hnsw", hnsw)


# ----------------------------------------------------------------------------- stored in the run
def index_key(latents_name: str, standardised: bool = False) -> str:
    """'latents/mu.npy' -> 'latents_mu' (+ '_standardised')."""
    stem = str(latents_name)
    stem = stem[: -len(".npy")] if stem.endswith(".npy") else stem
    return stem.replace("/", "_").replace("\\", "_") + ("_standardised" if standardised else "")


def stored_names(latents_name: str, standardised: bool = False) -> tuple[str, str]:
    """Run-relative names of (the neighbour graph, the HNSW index file)."""
    key = index_key(latents_name, standardised)
    return f"{INDEX_DIR}/{key}_graph.npz", f"{INDEX_DIR}/{key}.faiss"


class RunNeighbours:
    """The index of one latents file of a run and the stored neighbour graph of its galaxies (read
    from the run on first use: a single query needs neither the graph nor, for the exact method, a file)."""

    def __init__(self, run: Path, latents_name: str, mu: np.ndarray, method: str, graph_name: str, index_name: str,
                 index: NeighbourIndex | None = None, graph: tuple[np.ndarray, np.ndarray] | None = None):
        self.run, self.latents_name, self.mu, self.method = run, latents_name, mu, method
        self._graph_name, self._index_name = graph_name, index_name
        self._index, self._graph = index, graph

    @property
    def index(self) -> NeighbourIndex:
        """The search index: the stored HNSW file, or the exact index rebuilt (cheap: it keeps ``mu``)."""
        if self._index is None:
            if self.method == "hnsw":
                self._index = NeighbourIndex(self.mu, "hnsw", _faiss().read_index(str(self.run / self._index_name)))
            else:
                self._index = NeighbourIndex(self.mu, "exact")
        return self._index

    @property
    def n_samples_fit_(self) -> int:
        return len(self.mu)

    def _stored_graph(self) -> tuple[np.ndarray, np.ndarray]:
        if self._graph is None:
            with np.load(self.run / self._graph_name) as stored:
                self._graph = stored["rows"].astype(np.int64), stored["distances"].astype(np.float64)
        return self._graph

    def neighbours(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and distances (N, k) of every galaxy's k nearest others, from the stored graph."""
        rows, distances = self._stored_graph()
        if k > rows.shape[1]:
            raise NeighbourIndexError(f"{self.run / self._graph_name}: holds {rows.shape[1]} neighbours per galaxy, "
                                      f"{k} asked for")
        return rows[:, :k], distances[:, :k]

    def nearest(self, vectors, k: int, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        return self.index.nearest(vectors, k, exclude)

    def nearest_of_rows(self, rows, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest other galaxies of indexed galaxies ``rows``: the answer of ``nearest(mu[rows], k,
        exclude=rows)``, read from the stored graph when it holds k neighbours (no index to load or search:
        a query by name at 10^5+ galaxies reads no HNSW file), else searched. The distances are recomputed
        from ``mu`` in float64 as ``NeighbourIndex.nearest`` computes them (the graph stores float32)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        k = int(k)
        graph_rows = self._stored_graph()[0]
        if not 1 <= k <= graph_rows.shape[1]:
            return self.nearest(self.mu[rows], k, rows)
        found = graph_rows[rows, :k]
        distances = np.linalg.norm(self.mu[found].astype(np.float64) - self.mu[rows].astype(np.float64)[:, None, :],
                                   axis=-1)
        order = np.argsort(distances, axis=1, kind="stable")
        return np.take_along_axis(found, order, 1), np.take_along_axis(distances, order, 1)


def run_neighbours(run, latents_name: str, mu: np.ndarray, k: int = GRAPH_K, stage: str = "VAE_model.neighbours",
                   standardised: bool = False, exact_max_rows: int = EXACT_MAX_ROWS,
                   progress: bool = False) -> RunNeighbours:
    """The neighbours of the latents file RUN/``latents_name`` (searched as ``mu``: the file's vectors, or
    them standardised when ``standardised``): taken from RUN/neighbours/ when current (its provenance
    record: same latents file, same method and size, at least k neighbours), else built, stored with a
    provenance record (input: the latents file) and returned. ``GRAPH_K`` neighbours at least are kept."""
    from . import provenance

    run = Path(run)
    mu = np.ascontiguousarray(mu, dtype=np.float32)
    graph_name, index_name = stored_names(latents_name, standardised)
    method = method_for(len(mu), exact_max_rows)
    k_graph = min(max(int(k), GRAPH_K), len(mu) - 1)
    saved = provenance.read_record(run, graph_name)
    settings = saved.get("settings") if saved else None
    current = (settings is not None and settings.get("method") == method and settings.get("n") == len(mu)
               and settings.get("latent_dim") == mu.shape[1] and settings.get("k", 0) >= k_graph
               and provenance.problem(run, graph_name, stage) is None
               and (method == "exact" or provenance.problem(run, index_name, stage) is None))
    if current:
        return RunNeighbours(run, latents_name, mu, method, graph_name, index_name)
    index = build(mu, method)
    rows, distances = index.graph(k_graph, progress)
    (run / INDEX_DIR).mkdir(parents=True, exist_ok=True)
    outputs = [graph_name]
    if method == "hnsw":
        _faiss().write_index(index._hnsw, str(run / index_name))
        outputs.append(index_name)
    rows, distances = rows.astype(np.int32), distances.astype(np.float32)
    _atomic_savez(run / graph_name, rows=rows, distances=distances)
    record = {"method": method, "n": len(mu), "k": k_graph, "latent_dim": int(mu.shape[1]), "latents": latents_name,
              "standardised": standardised, "exact_max_rows": exact_max_rows}
    if method == "hnsw":
        record.update(hnsw_m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, ef_search=HNSW_EF_SEARCH)
    provenance.record(run, outputs, [provenance.Input.file(run / latents_name)], stage, record)
    # as stored (float32 distances): a stage gives the same answer whether it built the graph or read it
    return RunNeighbours(run, latents_name, mu, method, graph_name, index_name, index,
                         (rows.astype(np.int64), distances.astype(np.float64)))


def _atomic_savez(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


__all__ = ["EXACT_MAX_ROWS", "GRAPH_K", "NeighbourIndexError", "NeighbourIndex", "build", "method_for", "exact_search",
           "index_key", "stored_names", "RunNeighbours", "run_neighbours"]
