"""Which package modules a script uses: its imports of VAE_model, followed through the package.

The Makefile gives each stage these files as prerequisites, so a stage re-runs when code it runs
changed, and only then (editing explorer.py re-draws the explorer page, it does not retrain the VAE).
Read from the source (``ast``), imports inside functions included; nothing is imported or run, so
this needs no virtual environment.

    python3 -m VAE_model.deps analysis/decals_3.py     # prints VAE_model/... files, one a line
    python3 -m VAE_model.deps --make A.py B.py         # one line, A.py:file,file B.py:file,... (Makefile)
"""
from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

PACKAGE = "VAE_model"
ROOT = Path(__file__).resolve().parent.parent


def _module_file(module: str) -> Path | None:
    """VAE_model.x.y -> its .py file (or package __init__.py) under ROOT, None if not a package module."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path) -> str | None:
    """Dotted package that contains ``path`` (for relative imports), None outside VAE_model."""
    try:
        parts = path.resolve().relative_to(ROOT).with_suffix("").parts
    except ValueError:
        return None
    if not parts or parts[0] != PACKAGE:
        return None
    return ".".join(parts[:-1])   # a module's package; for __init__.py the package itself


@functools.lru_cache(maxsize=None)   # each file is parsed once, however many scripts import it
def imported_modules(path: Path) -> frozenset[str]:
    """Dotted names of the package modules ``path`` imports (``from VAE_model import x`` counts x)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)   # a sub-module imported by name
    return frozenset(name for name in found if _module_file(name) is not None)


def module_files(script: str | Path) -> list[str]:
    """Every package file ``script`` uses, directly or through other package modules (and their
    packages' __init__.py), as paths relative to the repository root."""
    seen: set[Path] = set()
    todo = [Path(script)]
    while todo:
        path = todo.pop()
        for module in imported_modules(path.resolve()):
            parts = module.split(".")
            for k in range(1, len(parts) + 1):      # importing a.b.c runs a/__init__ and a/b/__init__
                file = _module_file(".".join(parts[:k]))
                if file is not None and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return sorted(str(file.relative_to(ROOT)) for file in seen)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0])
        print("usage: python3 -m VAE_model.deps [--make] SCRIPT [SCRIPT ...]")
        return 0 if args else 2
    as_make = args[0] == "--make"
    scripts = args[1:] if as_make else args
    for script in scripts:
        if not Path(script).is_file():
            print(f"error: {script}: no such script", file=sys.stderr)
            return 1
    if as_make:   # one line for make's $(shell): script:file,file,... per script
        print(" ".join(f"{script}:{','.join(module_files(script))}" for script in scripts))
    else:
        print("\n".join(sorted({f for script in scripts for f in module_files(script)})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
