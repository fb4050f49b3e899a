"""The pair data of a run: RUN/transfer/pairs.csv, the pair image caches, pair labels, Part I split.

READS   RUN/transfer/pairs.csv, decals_pairs.txt, bass_pairs.txt, pair_labels.csv (transfer/make_pairs.py),
        RUN/train.txt and RUN/split.json (Part I)
WRITES  RUN/cache/decals_pairs_<S>px/, bass_pairs_<S>px/ (decode-once caches in shards, via data.image_cache)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import provenance, readers, runfiles
from ..errors import StaleInputError


def pair_inputs(run_dir: str | Path) -> list[provenance.Input]:
    """What a result made from the pairs depends on: pairs.csv and the two image lists."""
    return [provenance.Input.file(Path(run_dir) / name)
            for name in (runfiles.TRANSFER_PAIRS_CSV, runfiles.TRANSFER_DECALS_LIST, runfiles.TRANSFER_BASS_LIST)]


def pair_caches(run_dir: str | Path, image_size: int, n_pairs: int, progress: bool = True):
    """The decode-once caches (uint8 (N, 3, S, S), sharded) of the DECaLS and BASS+MzLS pair images, row-aligned
    with pairs.csv: RUN/cache/decals_pairs_<S>px/ and bass_pairs_<S>px/."""
    from ..data import image_cache

    caches = []
    for name in (runfiles.TRANSFER_DECALS_LIST, runfiles.TRANSFER_BASS_LIST):
        list_path = readers.checked(run_dir, name, readers.PAIRS)
        cache = image_cache(list_path, image_size, Path(run_dir) / runfiles.CACHE_DIR, progress=progress)
        if len(cache) != n_pairs:
            raise StaleInputError(f"{list_path}: {len(cache)} images for {n_pairs} pairs; "
                                  f"re-run `transfer/make_pairs.py --run {run_dir}`")
        caches.append(cache)
    return caches[0], caches[1]


def read_pair_labels(run_dir: str | Path, pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """{class question: DECaLS class label per pair (NaN: none)} from RUN/transfer/pair_labels.csv."""
    path = Path(run_dir) / runfiles.TRANSFER_PAIR_LABELS_CSV
    if not path.exists():
        return {}
    table = pd.read_csv(readers.checked(run_dir, runfiles.TRANSFER_PAIR_LABELS_CSV, readers.PAIRS), dtype=object)
    table["pair_id"] = table["pair_id"].astype(int)
    table = pairs[["pair_id"]].merge(table, on="pair_id", how="left")
    return {column: table[column].to_numpy(dtype=object) for column in table.columns if column != "pair_id"}


def part1_validation(run_dir: str | Path, image_size: int, progress: bool = True):
    """(cache of RUN/train.txt, validation indices of RUN/split.json), or (None, None) if absent."""
    from ..data import image_cache

    run_dir = Path(run_dir)
    list_path, split_path = run_dir / runfiles.TRAIN_TXT, run_dir / runfiles.SPLIT_JSON
    if not (list_path.exists() and split_path.exists()):
        return None, None
    val = np.asarray(readers.read_json(run_dir, runfiles.SPLIT_JSON, readers.TRAIN)["val"], dtype=int)
    return image_cache(list_path, image_size, run_dir / runfiles.CACHE_DIR, progress=progress), val
