"""Find the image files of a folder and validate each one (the checks of ``imageio.inspect_image``).

Used by ``make_datatxt.py`` (the training list) and ``transfer/make_pairs.py`` (both surveys' images).
Paths are made absolute without resolving symbolic links (``os.path.abspath``), so a link
``<iauname>.fits -> store/img7.fits`` keeps its own name, which name matching relies on.
"""
from __future__ import annotations

import os
from pathlib import Path

from VAE_model.imageio import DEFAULT_MAX_MASKED_FRACTION, ImageInfo, describe_image, is_image_file


def find_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))


def _check(args) -> tuple[str, ImageInfo | None, str | None]:
    path, image_size, max_masked_fraction = args
    info, reason = describe_image(path, image_size, max_masked_fraction)
    return path, info, reason


def scan_images(paths: list, image_size: int | None, workers: int | None = None,
                max_masked_fraction: float = DEFAULT_MAX_MASKED_FRACTION,
                progress: bool = True) -> tuple[list[ImageInfo], list[tuple[str, str]]]:
    """Validate files: ([ImageInfo of each usable one], [(path, reason)]); parallel over CPU cores."""
    from tqdm import tqdm

    jobs = [(os.path.abspath(p), image_size, max_masked_fraction) for p in paths]
    workers = workers or os.cpu_count() or 1
    bar = dict(total=len(jobs), desc="validate images", unit="img", disable=not progress)
    if workers > 1 and len(jobs) >= 200:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            results = list(tqdm(pool.imap(_check, jobs, chunksize=32), **bar))
    else:
        results = [_check(job) for job in tqdm(jobs, **bar)]
    accepted = [info for _, info, reason in results if reason is None]
    rejected = [(path, reason) for path, _, reason in results if reason is not None]
    return accepted, rejected


def validate_all(paths: list, image_size: int | None, workers: int | None = None,
                 max_masked_fraction: float = DEFAULT_MAX_MASKED_FRACTION) -> tuple[list[str], list[tuple[str, str]]]:
    """Split files into (accepted absolute paths, links not resolved, [(path, reason)])."""
    accepted, rejected = scan_images(paths, image_size, workers, max_masked_fraction)
    return [info.path for info in accepted], rejected
