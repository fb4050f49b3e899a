"""The image data path: train.txt lists, the decode-once cache and the batch indices (no torch: the
torch side, uint8 batches to the device and augmentation, is VAE_model/batches.py).

Decode once: the images of an image list (``train.txt``) are loaded with the one loader
(``imageio.load_image``), stretched to [0, 1] and stored as uint8 (N, 3, S, S) under
``RUN/cache/<list>_<S>px/`` in shards of fixed size (``shards.py``: ``shard_00000.npy``, ... of
``shard_images`` images each, ~1 GiB per shard by default, ``GALAXY_VAE_CACHE_SHARD_MB``) with a
``meta.json`` written last. The meta (``cache_meta``) records the list's SHA-1, the size and
modification time of every listed image (``provenance.image_set_identity``), the image size and the
stretch and, for a framed run (make_datatxt --frame), the framing and its crop boxes
(``readers.read_framing``); the cache is rebuilt automatically when any of them changes (a cutout replaced on disk
under the same name is decoded again; a deleted one stops the build with its name); an interrupted
build resumes, keeping the shards it had written. Every later read (training, latent extraction,
adaptation) indexes that cache like an array (``shards.ShardedArray``), so epochs never re-read
FITS files. uint8 quantisation (1/255 of the stretched range) is the same as the 8-bit JPEG
cutouts Galaxy Zoo volunteers saw.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np

from .imageio import STRETCH, ImageError, load_image
from .imagelist import DataError, read_image_list, write_image_list
from .readers import read_framing, write_train_list  # noqa: F401  (write_train_list kept importable from here)
from .provenance import image_set_identity
from .shards import LAYOUT_KEYS, META, ShardedArray, read_meta, write_shards

CACHE_VERSION = 3            # 3: sharded folder (2 and before: one .npy, rebuilt and removed)
SHARD_MB = 1024              # default bytes per cache shard file, in MiB (GALAXY_VAE_CACHE_SHARD_MB overrides)
SHARD_MB_ENV = "GALAXY_VAE_CACHE_SHARD_MB"


def image_name(path: str) -> str:
    """Galaxy name from an image path: ``imageio.image_stem``, the one path-to-name rule."""
    from .imageio import image_stem

    return image_stem(path)


def list_digest(paths: list[str]) -> str:
    """SHA-1 of an image list's paths in order (what a cache or a latent cache was made from)."""
    return hashlib.sha1("\n".join(paths).encode()).hexdigest()


def _same_content(saved: dict, wanted: dict) -> bool:
    """A cache is current when everything but the list's spelling (relative/absolute path) and the shard
    layout (``shards.LAYOUT_KEYS``, plus the array's shape fields) matches."""
    ignored = {"list", "n_images", "item_shape", "dtype", *LAYOUT_KEYS}

    def content(meta):
        return {k: v for k, v in meta.items() if k not in ignored}
    return content(saved) == content(wanted)


def cache_meta(paths: list[str], list_path: str | Path, image_size: int, framing=None) -> dict:
    """What a cache's pixels are made from, the one place it is built: a cache whose saved meta differs
    (but for the list's spelling) is rebuilt. A setting that changes the pixels is one more key here.
    ``framing`` (readers.read_framing): a framed run's meta names its framing and crop boxes, so another
    framing rebuilds the cache; an unframed run's meta is as before."""
    meta = {"version": CACHE_VERSION, "list": str(list_path), "list_sha1": list_digest(paths),
            "images": image_set_identity(paths), "image_size": image_size, "scale": 255, "stretch": STRETCH}
    if framing is not None:
        meta["framing"] = framing.identity
    return meta


def cache_folder(list_path: str | Path, image_size: int, cache_dir: str | Path) -> Path:
    """RUN/cache/<list stem>_<S>px: the folder of a list's cache (its shards and meta.json)."""
    return Path(cache_dir) / f"{Path(list_path).stem}_{image_size}px"


def shard_images(image_size: int) -> int:
    """Images per cache shard: ``GALAXY_VAE_CACHE_SHARD_MB`` (default 1024 MiB) of (3, S, S) uint8
    images, at least one (5,461 at 256 px, 87,381 at 64 px)."""
    megabytes = float(os.environ.get(SHARD_MB_ENV) or SHARD_MB)
    return max(1, int(megabytes * 2 ** 20) // (3 * image_size * image_size))


def quantise_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float image -> uint8, the cache's storage (scale 255, rounded)."""
    return np.round(np.asarray(image, dtype=np.float32) * 255.0).astype(np.uint8)


def _load_uint8(args) -> np.ndarray:
    path, image_size, frame = args
    return quantise_uint8(load_image(path, image_size, frame=frame))


def image_cache(list_path: str | Path, image_size: int, cache_dir: str | Path, workers: int | None = None,
                progress: bool = True, images_per_shard: int | None = None) -> ShardedArray:
    """The decode-once cache of an image list: a read-only uint8 array (N, 3, S, S) in shards.

    Built (in parallel over CPU cores) when absent or stale; an interrupted build resumes from the
    shards it had written. A file that fails to load stops the build with an ImageError naming it,
    before any training step sees a NaN. ``images_per_shard``: the shard size of a new build (default
    ``shard_images``); an existing current cache is used whatever its shard size.
    """
    paths = read_image_list(list_path)
    folder = cache_folder(list_path, image_size, cache_dir)
    # the crop of each image (make_datatxt --frame, recorded in the run's images.csv; None: unframed)
    framing = read_framing(list_path, paths)
    frames = framing.frames if framing is not None else [None] * len(paths)
    wanted = cache_meta(paths, list_path, image_size, framing)
    saved = read_meta(folder / META)
    if saved is not None and _same_content(saved, wanted):
        cache = ShardedArray(folder, saved)
        if cache.complete():      # every shard there, whole (else rebuilt below)
            return cache
    for suffix in (".npy", ".json"):   # a one-file cache of version <= 2 (59 GB at 300k at 256 px)
        (folder.parent / f"{folder.name}{suffix}").unlink(missing_ok=True)
    from tqdm import tqdm

    with tqdm(total=len(paths), desc=f"decode {len(paths)} images once", unit="img", disable=not progress) as bar:
        with _decoder(workers, len(paths)) as decode:
            def rows(start, stop):
                for image in decode([(p, image_size, frame) for p, frame in zip(paths[start:stop], frames[start:stop])]):
                    bar.update()
                    yield image
            return write_shards(folder, wanted, rows, len(paths), (3, image_size, image_size),
                                images_per_shard or shard_images(image_size), np.uint8,
                                same=_same_content, on_kept=bar.update)


def open_image_cache(path: str | Path) -> ShardedArray:
    """A built cache as it is (its folder or its meta.json), without the staleness check or a build: for
    readers that only look (the notebooks). ``shards.IncompleteShardsError`` if the build did not finish."""
    from .shards import open_shards

    return open_shards(path)


@contextlib.contextmanager
def _decoder(workers: int | None, n_images: int):
    """``decode(jobs)``: an iterator of the uint8 images of (path, size, frame) jobs, in order; over a pool of
    ``workers`` processes (default: the CPU cores, at most 8) for 64 images or more."""
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or n_images < 64:
        yield lambda jobs: map(_load_uint8, jobs)
        return
    from multiprocessing import get_context

    from .cli_args import ignore_interrupts

    # the workers ignore Ctrl-C: the main process alone stops (one line, no traceback per worker)
    with get_context("spawn").Pool(workers, initializer=ignore_interrupts) as pool:
        yield lambda jobs: pool.imap(_load_uint8, jobs, chunksize=16)


def make_batches(indices: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> list[np.ndarray]:
    """Split indices into global batches, shuffled by ``seed`` (one permutation per epoch)."""
    indices = np.asarray(indices)
    if shuffle:
        indices = np.random.default_rng(seed).permutation(indices)
    return [np.sort(indices[i:i + batch_size]) for i in range(0, len(indices), batch_size)]


def shard(batch: np.ndarray, rank: int, world_size: int) -> slice:
    """The contiguous part of a global batch that process ``rank`` handles (distributed sampler).

    Every process walks the same global batches and takes its own slice, so the averaged
    gradient equals the one-process gradient of the whole batch.
    """
    bounds = np.linspace(0, len(batch), world_size + 1).round().astype(int)
    return slice(bounds[rank], bounds[rank + 1])


def split_indices(n_images: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/validation split of ``range(n_images)`` by the seed.

    A split that leaves no image to train on is refused (DataError naming the counts): training on
    0 images would "finish" and save an untrained best.pt."""
    n_val = int(round(n_images * val_fraction)) if val_fraction > 0 else 0
    if val_fraction > 0:
        n_val = max(1, min(n_val, n_images - 1))   # at least one of each when there are two images
    if n_images - n_val < 1:
        held = f" with {n_val} held out for validation (--val-fraction {val_fraction:g})" if n_val else ""
        raise DataError(f"{n_images} image(s){held} leave 0 to train on; list more images "
                        f"(make_datatxt.py){' or give --val-fraction 0' if n_val else ''}")
    order = np.random.default_rng(seed).permutation(n_images)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


__all__ = ["DataError", "ImageError", "read_image_list", "write_image_list", "image_name", "image_cache", "list_digest",
           "cache_meta", "cache_folder", "open_image_cache", "shard_images",
           "quantise_uint8", "make_batches", "shard", "split_indices"]
