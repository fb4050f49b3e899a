"""Image lists (``train.txt`` and the pair lists): one image path per line.

The list format alone, with no torch and no provenance, so that both the data path (data.py) and
the provenance check (provenance.py, which re-reads a list to see whether its images changed) use
this one reader without importing each other.
"""
from __future__ import annotations

from pathlib import Path

from .errors import GalaxyVAEError
from .files import write_text


class DataError(GalaxyVAEError, ValueError):
    """Unusable image list or cache; str() is one line naming the file."""


def read_image_list(path: str | Path) -> list[str]:
    """Paths listed one per line (blank lines and '#' comments ignored)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: image list not found; run make_datatxt.py first")
    lines = [line.strip() for line in path.read_text().splitlines()]
    paths = [line for line in lines if line and not line.startswith("#")]
    if not paths:
        raise DataError(f"{path}: image list is empty")
    return paths


def write_image_list(paths, path: str | Path) -> None:
    """Write one path per line; an unchanged list is left untouched (its time stamp drives re-runs)."""
    path = Path(path)
    text = "".join(f"{p}\n" for p in paths)
    if path.exists() and path.read_text() == text:
        return
    write_text(text, path)
