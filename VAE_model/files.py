"""The one way a file is written: to a temporary name beside it, flushed, then renamed over it.

A reader (another stage, a resumed run, ``make``) never sees half a file, and a write that fails
(full disk, read-only folder, a folder where the file should be) leaves the old file as it was,
no temporary file behind, and one line naming the file (``RunPathError``). Every writer of the
package goes through ``atomic_write``: JSON records, CSV tables, image lists, checkpoints, caches,
FITS cutouts, HTML pages. No torch here (the catalog stages and ``--help`` must not import it).
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
from pathlib import Path

from .errors import RunPathError


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "no space left on the disk; free some space and re-run"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free == 0
    except OSError:
        return False


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs):
    """``with atomic_write(path) as handle: ...`` writes ``path`` whole or not at all.

    ``mode='path'`` yields the temporary path instead of a handle, for writers that take a file name
    (numpy's memmap, astropy's ``writeto``). The temporary name is per process, so two writers of
    one file never write into each other's temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise RunPathError(f"{path}: is a directory, cannot write a file there")
        if mode == "path":
            yield tmp
        else:
            with open(tmp, mode, **open_kwargs) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise RunPathError(f"{path}: cannot write ({_reason(error)})") from None
    except RuntimeError as error:
        # torch.save reports a failed write (e.g. a full disk) as a RuntimeError of its C++ writer
        if "write" not in str(error).lower():
            raise
        reason = _reason(OSError(errno.ENOSPC, "")) if _disk_full(path) else _reason(error)
        raise RunPathError(f"{path}: cannot write ({reason})") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text(text: str, path: str | Path) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def copy_file(source: str | Path, target: str | Path) -> None:
    with atomic_write(target, "wb") as handle, open(source, "rb") as original:
        shutil.copyfileobj(original, handle)


def _finite_or_none(value):
    """JSON has no NaN: a value that could not be computed is written as null, never as NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def _json_default(value):
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _finite_or_none(float(value))
    if isinstance(value, np.ndarray):
        return _finite_or_none(value.tolist())
    if isinstance(value, Path) or type(value).__name__ == "device":   # a torch.device, without importing torch
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(data, path: str | Path) -> None:
    """``data`` as indented JSON (numpy scalars and arrays, paths and devices converted; NaN -> null)."""
    write_text(json.dumps(_finite_or_none(data), indent=2, default=_json_default, allow_nan=False) + "\n", path)


__all__ = ["atomic_write", "write_text", "copy_file", "write_json"]
