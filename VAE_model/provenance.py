"""Provenance: every file a stage writes records what it was made from, and every read checks it.

A stage that writes ``RUN/<file>`` also writes ``RUN/provenance/<file>.json``:

    {"file": "latents/mu.npy", "identity": {"size": .., "mtime_ns": .., "sha256": ..},
     "stage": "analysis/decals_2_2.py", "command": "...", "settings": {...}, "git_commit": "...",
     "inputs": [{"name": "best.pt", "kind": "file", "path": "...", "identity": {...}},
                {"name": "images of train.txt", "kind": "images", "path": "...", "identity": {"n": .., "stat_sha1": ..}}]}

Identities: a run file or table is known by its SHA-256 (cheap: checkpoints are a few MB); an image
set by the size and modification time (ns) of every image it lists (hashing 10^5 cutouts at every
read would not be cheap); a folder of images by the same over the files found in it.

``check(run, name)`` (called by the typed readers in ``VAE_model/readers.py``) raises one line when
the file is missing, has no record, was changed after it was written, or when one of its inputs has
changed since: ``runs/demo/latents/mu.npy is out of date: runs/demo/best.pt changed since it was made;
re-run analysis/decals_2_2.py``. Direct inputs are enough: each of them is checked the same way when
the stage that reads it runs.

Command line (used by the Makefile, so make re-runs what the provenance check finds out of date):

    python -m VAE_model.provenance stale runs/demo        # prints the out-of-date files, one a line
    python -m VAE_model.provenance check runs/demo latents/mu.npy
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from stat import S_ISREG
import sys
import time
from pathlib import Path

from .errors import MissingInputError, StaleInputError

RECORD_DIR = "provenance"
_DIGESTS: dict[tuple[str, int, int], str] = {}   # (path, size, mtime_ns) -> sha256, per process


# ----------------------------------------------------------------------------- identities
def file_digest(path: str | Path) -> str:
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def file_identity(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        # a directory input (e.g. a sub-run): known by the identities of the files in it
        return folder_identity(path, lambda p: True)
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_digest(path)}


# ----------------------------------------------------------------------------- one stat per image per stage
_MEMO: dict | None = None   # image-set and folder identities taken in this stage (None: not in a stage)


@contextlib.contextmanager
def identity_memo():
    """Within the block (one stage: ``memoised`` wraps a stage's main), each image set and each folder
    is stat'ed once: every later identity of the same set (a typed reader's check of another record
    listing the same images, the cache's check, the record the stage writes) reuses it. Outside a
    block nothing is kept, so a process that changes images between two calls still sees the change."""
    global _MEMO
    outer = _MEMO
    _MEMO = {} if outer is None else outer
    try:
        yield
    finally:
        _MEMO = outer


def memoised(main):
    """Decorate a stage's main(argv): the whole stage runs inside ``identity_memo``."""
    import functools

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        with identity_memo():
            return main(*args, **kwargs)

    return wrapped


def _stat(path: str) -> os.stat_result:
    """os.stat of an image, once per stage: a folder's listing and the image list naming the same files
    share it. An OSError (a missing file) is not kept."""
    if _MEMO is None:
        return os.stat(path)
    # absolute paths (the image lists make_datatxt writes, a folder walked from its absolute path) are the
    # key as they are: os.path.abspath on each of 10^5 paths was a third of a later query's time
    key = ("stat", path if os.path.isabs(path) else os.path.abspath(path))
    if key not in _MEMO:
        _MEMO[key] = os.stat(path)
    return _MEMO[key]


def _remembered(key, compute) -> dict:
    if _MEMO is None:
        return compute()
    if key not in _MEMO:
        _MEMO[key] = compute()
    return dict(_MEMO[key])


def image_set_identity(paths, root: str | Path | None = None) -> dict:
    """Size and modification time of every image, folded into one digest (a missing file counts too).
    Names are taken relative to ``root`` when given (so a folder's identity does not depend on how
    its path is spelled). Taken once per set within a stage (``identity_memo``)."""
    paths = tuple(str(p) for p in paths)
    return _remembered(("images", None if root is None else str(root), paths), lambda: _image_set_identity(paths, root))


def _image_set_identity(paths, root) -> dict:
    lines = []     # hashed as one string: the same digest as a line at a time, less per-image overhead
    for path in paths:
        name = os.path.relpath(path, root) if root is not None else path
        try:
            info = _stat(path)
            lines.append(f"{name}\t{info.st_size}\t{info.st_mtime_ns}\n")
        except OSError:
            lines.append(f"{name}\tmissing\n")
    return {"n": len(paths), "stat_sha1": hashlib.sha1("".join(lines).encode()).hexdigest()}


def folder_identity(folder: str | Path, keep) -> dict:
    """The files under ``folder`` for which ``keep(path)`` is true, by relative name, size and time
    (listed and stat'ed once per stage, ``identity_memo``)."""
    folder = Path(folder)

    def compute():
        found = []   # one stat per file: it both says "a file" and gives the size and time
        # os.walk rather than Path.rglob (~25 us a file, 4x the stat: 1.7 s of a query at 64k images); like
        # rglob it lists linked files but does not descend into linked folders. Names relative to the folder,
        # sorted: the order of the full paths, which share the folder's prefix.
        top = os.path.abspath(folder)     # walked from its absolute path: the paths are stat keys as they are
        for root, _, files in os.walk(top) if folder.is_dir() else []:
            prefix = os.path.relpath(root, top)
            prefix = "" if prefix == "." else prefix + os.sep
            for name in files:
                path = os.path.join(root, name)
                if keep(path):
                    try:
                        info = _stat(path)
                    except OSError:
                        continue
                    if S_ISREG(info.st_mode):
                        found.append((prefix + name, info))
        found.sort(key=lambda item: item[0])
        lines = "".join(f"{name}\t{info.st_size}\t{info.st_mtime_ns}\n" for name, info in found)
        return {"n": len(found), "stat_sha1": hashlib.sha1(lines.encode()).hexdigest()}

    key = ("folder", os.path.abspath(folder), getattr(keep, "__module__", ""), getattr(keep, "__qualname__", repr(keep)))
    return _remembered(key, compute)


# ----------------------------------------------------------------------------- inputs
class Input:
    """One thing a result was made from: a file, the images an image list names, or a folder.

    Its identity is taken when the Input is made, i.e. when the stage has read it: a record written
    at the end of a long run still names the inputs as they were used, and a stage that records after
    every epoch does not stat every image again each time."""

    def __init__(self, kind: str, path: str | Path, identity: dict, name: str | None = None):
        self.kind, self.path, self.identity = kind, Path(path), identity
        self.name = name or str(path)

    @classmethod
    def file(cls, path, name: str | None = None) -> "Input":
        return cls("file", path, file_identity(path), name)

    @classmethod
    def images(cls, list_path, paths: list[str]) -> "Input":
        """The images listed in ``list_path`` (their sizes and times, not the list's text)."""
        return cls("images", list_path, image_set_identity(list(paths)), f"images listed in {list_path}")

    @classmethod
    def folder(cls, path, keep) -> "Input":
        return cls("folder", path, folder_identity(path, keep), f"image folder {path}")

    def describe(self, run: Path) -> dict:
        """The record entry; a path inside the run directory is kept relative to it (a run can move)."""
        inside = _inside(self.path, run)
        return {"name": self.name, "kind": self.kind, "path": inside or str(Path(self.path).absolute()),
                "in_run": inside is not None, "identity": self.identity}


def _inside(path: Path, run: Path) -> str | None:
    try:
        return str(Path(path).absolute().relative_to(run.absolute()))
    except ValueError:
        return None


# ----------------------------------------------------------------------------- records
def record_path(run: str | Path, name: str) -> Path:
    return Path(run) / RECORD_DIR / f"{name}.json"


def record(run: str | Path, outputs, inputs: list[Input], stage: str, settings: dict | None = None,
           stopped: str | None = None) -> None:
    """Write the provenance record of each output (run-relative names) once the outputs are written.

    ``stopped``: the stage wrote these files but did not finish (a non-finite loss, Ctrl-C, an error);
    the record says so, and ``problem`` gives that as the reason they cannot be used."""
    from .cli_args import git_commit
    from .files import write_json

    run = Path(run)
    described = [entry.describe(run) for entry in inputs]
    settings = dict(settings or {})
    for name in outputs:
        name = str(name)
        entry = {"file": name, "identity": file_identity(run / name), "stage": stage,
                 "command": settings.get("command", stage), "settings": settings,
                 "git_commit": settings.get("git_commit") or git_commit(),
                 "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "inputs": described}
        if stopped:
            entry["stopped"] = stopped
        write_json(entry, record_path(run, name))


def read_record(run: str | Path, name: str) -> dict | None:
    path = record_path(run, name)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _listed(path: Path) -> tuple[str, ...]:
    """The images an image list names, read once per stage while the list is unchanged (every record made
    from a list names it: a query checks train.txt's images for 6-9 records, 64k lines each at 64k)."""
    from .imagelist import read_image_list

    if _MEMO is None:
        return tuple(read_image_list(path))
    info = os.stat(path)
    key = ("list", os.path.abspath(path), info.st_size, info.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = tuple(read_image_list(path))
    return _MEMO[key]


def _unchanged(kind: str, recorded: dict, path: Path) -> bool | None:
    """Whether ``path`` still has the ``recorded`` identity (None: it no longer exists). A file is
    unchanged when its size and content are: its content is hashed only when its time stamp moved."""
    if kind == "images":
        return recorded == image_set_identity(_listed(path)) if path.exists() else None
    if kind == "folder":
        from .imageio import is_image_file

        return recorded == folder_identity(path, is_image_file) if path.is_dir() else None
    if not path.exists():
        return None
    if "sha256" not in recorded:                  # a directory input, known by its files
        return recorded == file_identity(path)
    stat = path.stat()
    if stat.st_size != recorded.get("size"):
        return False
    return stat.st_mtime_ns == recorded.get("mtime_ns") or file_digest(path) == recorded["sha256"]


def problem(run: str | Path, name: str, made_by: str, own_identity: bool = True, inputs: bool = True) -> str | None:
    """Why RUN/name cannot be used as it is (one line), or None when it is current.

    ``own_identity=False`` checks only the inputs (a checkpoint that a killed run may have written
    after its last record is still resumable, as long as what it was trained from is unchanged);
    ``inputs=False`` checks only the file itself (a settings file read for its settings, not its results)."""
    run = Path(run)
    path = run / name
    rerun = f"re-run `{made_by}`"
    saved = read_record(run, name)
    if not path.exists():
        if saved is not None:
            return f"{path}: not found, although {saved['stage']} wrote it ({saved.get('created_utc', '?')}): deleted since; {rerun}"
        return f"{path}: not found; run `{made_by}` first"
    if saved is None:
        return f"{path}: no provenance record ({record_path(run, name)} missing: made by an older version?); {rerun}"
    if own_identity and saved.get("stopped"):
        return f"{path}: written by a run of {saved['stage']} that did not finish ({saved['stopped']}); {rerun}"
    if own_identity and not _unchanged("file", saved["identity"], path):
        return f"{path}: changed after {saved['stage']} wrote it (another run or an edit by hand); {rerun}"
    for entry in saved["inputs"] if inputs else []:
        shown = run / entry["path"] if entry.get("in_run") else entry["path"]
        unchanged = _unchanged(entry["kind"], entry["identity"], Path(shown))
        if unchanged is None:
            return f"{path} is out of date: its input {shown} no longer exists; {rerun}"
        if not unchanged:
            what = {"images": f"one or more of the {entry['identity'].get('n')} images listed in {shown}",
                    "folder": f"the image folder {shown} (files added, removed or replaced)"}.get(
                        entry["kind"], f"{shown}")
            return f"{path} is out of date: {what} changed since it was made; {rerun}"
    return None


def check(run: str | Path, name: str, made_by: str, own_identity: bool = True) -> dict:
    """The provenance record of RUN/name; MissingInputError / StaleInputError (one line) otherwise."""
    reason = problem(run, name, made_by, own_identity)
    if reason is not None:
        if not (Path(run) / name).exists():
            raise MissingInputError(reason)
        raise StaleInputError(reason)
    return read_record(run, name)


def stale_files(run: str | Path) -> list[tuple[str, str]]:
    """(name, reason) for every recorded file of the run that is no longer current."""
    run = Path(run)
    root = run / RECORD_DIR
    found = []
    for path in sorted(root.rglob("*.json")) if root.is_dir() else []:
        name = str(path.relative_to(root))[: -len(".json")]
        saved = read_record(run, name)
        stage = saved.get("stage", "its stage") if saved else "its stage"
        reason = problem(run, name, stage) if (run / name).exists() else None
        if reason:
            found.append((name, reason))
    return found


@memoised
def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    stale = commands.add_parser("stale", help="print every out-of-date file of a run (run-relative), reasons on stderr")
    stale.add_argument("run")
    one = commands.add_parser("check", help="say whether one run file is current, and why not")
    one.add_argument("run")
    one.add_argument("file", help="run-relative name, e.g. latents/mu.npy")
    args = parser.parse_args(argv)
    run = Path(args.run)
    if not run.is_dir():
        print(f"error: {run}: {'is a file, not' if run.exists() else 'no such'} run directory", file=sys.stderr)
        return 2
    if args.command == "stale":
        for name, reason in stale_files(run):
            print(name)
            print(f"out of date: {reason}", file=sys.stderr)
        return 0
    saved = read_record(run, args.file)
    if saved is None and not (run / args.file).exists():
        print(f"{run / args.file}: not found, and no stage has written it in this run (no {record_path(run, args.file)})")
        return 1
    reason = problem(run, args.file, saved["stage"] if saved else "the stage that writes it")
    print(reason or f"{run / args.file}: current")
    return 1 if reason else 0


if __name__ == "__main__":
    sys.exit(main())
