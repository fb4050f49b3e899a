"""Find the image files of a folder and validate each one (the checks of ``imageio.inspect_image``).

Used by ``make_datatxt.py`` (the training list), the API (``api.encode``) and ``transfer/make_pairs.py``
(both surveys' images). Paths are made absolute without resolving symbolic links (``os.path.abspath``),
so a link ``<iauname>.fits -> store/img7.fits`` keeps its own name, which name matching relies on.

The search rules (each file that is not used is listed with the reason, never dropped in silence):

- **links**: linked sub-folders are searched (``DIR/dr8 -> /store/dr8``); a folder reached twice
  (a link loop, or two links to one store) is searched once; a dangling link is rejected.
- **names**: a path holding a line break or another control character is rejected (``train.txt``
  holds one path per line).
- **one image per galaxy** (``one_image_per_galaxy``): files are grouped by galaxy name
  (``imageio.image_stem``: ``J1.fits``, ``J1.fits.fz`` and ``J1.png`` are one galaxy). FITS come
  first, then PNG, then JPEG: the renders of a galaxy that has a FITS are skipped, whatever the
  FITS' own fate (a FITS rejected for masked pixels does not get in through its render). Two files
  of the same preferred format under one name (``dr5/J1.fits`` and ``dr8/J1.fits``) are both
  rejected, each naming the other: name matching could pair the catalog row with either.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from VAE_model.imageio import (DEFAULT_MAX_MASKED_FRACTION, FITS_SUFFIXES, ImageInfo, describe_image, image_stem,
                               is_image_file)

# format preference within a galaxy: the FITS holds the flux; a render is a display of it
FORMAT_RANK = (("FITS", FITS_SUFFIXES), ("PNG", (".png",)), ("JPEG", (".jpg", ".jpeg")))


def unusable_name(path: str | Path) -> str | None:
    """Why a path cannot go in an image list (one path per line), else None."""
    if any(ord(c) < 32 or ord(c) == 127 for c in str(path)):
        return "file name holds a line break or another control character (train.txt has one path per line): rename it"
    return None


def find_images(folder: str | Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files under ``folder``, links followed: (sorted paths, [(path, reason)] of dangling links,
    folders reached twice and unusable names). Raises FileNotFoundError when ``folder`` is not a folder."""
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    found, problems, seen = [], [], {}
    def unreadable(error: OSError) -> None:
        problems.append((str(error.filename), f"folder unreadable ({error.strerror})"))

    for here, dirs, files in os.walk(folder, followlinks=True, onerror=unreadable):
        real = os.path.realpath(here)
        if real in seen:   # a link loop, or a second link to a folder already searched
            problems.append((here, f"folder skipped: it is {real}, already searched as {seen[real]}"))
            dirs[:] = []
            continue
        seen[real] = here
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(here, name)
            if not os.path.exists(path):   # os.walk lists a dangling link as a file
                problems.append((path, f"dangling symbolic link (its target {os.readlink(path)} does not exist)"))
            elif is_image_file(name):
                reason = unusable_name(path)
                if reason:
                    problems.append((path, reason))
                else:
                    found.append(Path(path))
    return sorted(found), sorted(problems)


def _format_rank(path) -> tuple[int, str]:
    name = str(path).lower()
    for rank, (label, suffixes) in enumerate(FORMAT_RANK):
        if name.endswith(suffixes):
            return rank, label
    return len(FORMAT_RANK), "other"


def one_image_per_galaxy(paths: list) -> tuple[list[Path], list[tuple[str, str]], list[tuple[str, str]]]:
    """(kept paths, [(path, reason)] skipped renders, [(path, reason)] rejected duplicate names); see the module docstring."""
    groups: dict[str, list] = defaultdict(list)
    for path in paths:
        groups[image_stem(path)].append(path)
    kept, skipped, duplicates = [], [], []
    for name, group in groups.items():
        best = min(_format_rank(p)[0] for p in group)
        first = sorted(p for p in group if _format_rank(p)[0] == best)
        label = _format_rank(first[0])[1]
        if len(first) > 1:
            for path in first:
                others = ", ".join(str(o) for o in first if o != path)
                duplicates.append((str(path), f"galaxy name {name} is also the name of {others}: two {label} files "
                                              "of one name cannot be told apart by name matching; keep one (or rename)"))
        else:
            kept.append(first[0])
        for path in group:
            if _format_rank(path)[0] != best:
                skipped.append((str(path), f"skipped: {_format_rank(path)[1]} of galaxy {name}, which has a {label} "
                                           f"({', '.join(str(p) for p in first)}); one image per galaxy, "
                                           "FITS first, then PNG, then JPEG"))
    return sorted(kept), sorted(skipped), sorted(duplicates)


def _check(args) -> tuple[str, ImageInfo | None, str | None]:
    path, image_size, max_masked_fraction, frame = args
    info, reason = describe_image(path, image_size, max_masked_fraction, frame)
    return path, info, reason


def scan_images(paths: list, image_size: int | None, workers: int | None = None,
                max_masked_fraction: float = DEFAULT_MAX_MASKED_FRACTION,
                progress: bool = True, frame=None) -> tuple[list[ImageInfo], list[tuple[str, str]]]:
    """Validate files: ([ImageInfo of each usable one], [(path, reason)]); parallel over CPU cores.

    ``frame`` (``VAE_model/framing.py``): None, one Framing for every file, or {path: Framing} (a
    catalog radius per galaxy); each ImageInfo then holds its crop box, measured in the same read."""
    from tqdm import tqdm

    def frame_of(path):
        return frame.get(os.path.abspath(path)) if isinstance(frame, dict) else frame

    jobs = [(os.path.abspath(p), image_size, max_masked_fraction, frame_of(p)) for p in paths]
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
