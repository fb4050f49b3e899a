"""Find the image files of a folder and validate each one (the checks of ``imageio.validate_image``).

Used by ``make_datatxt.py`` (the training list) and ``transfer/make_pairs.py`` (both surveys' images).
"""
from __future__ import annotations

import os
from pathlib import Path

from VAE_model.imageio import is_image_file, validate_image


def find_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))


def _check(args) -> tuple[str, str | None]:
    path, image_size = args
    return path, validate_image(path, image_size)


def validate_all(paths: list[Path], image_size: int | None, workers: int | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Split files into (accepted paths, [(path, reason)]); parallel over CPU cores, with progress."""
    from tqdm import tqdm

    jobs = [(str(p.resolve()), image_size) for p in paths]
    workers = workers or os.cpu_count() or 1
    bar = dict(total=len(jobs), desc="validate images", unit="img")
    if workers > 1 and len(jobs) >= 200:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            results = list(tqdm(pool.imap(_check, jobs, chunksize=32), **bar))
    else:
        results = [_check(job) for job in tqdm(jobs, **bar)]
    accepted = [path for path, reason in results if reason is None]
    rejected = [(path, reason) for path, reason in results if reason is not None]
    return accepted, rejected
