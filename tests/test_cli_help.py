"""Every script in the repository answers --help with a usage text and exit status 0.

Scripts are discovered, not listed: any .py file with an ``if __name__ == "__main__":`` guard outside
tests/ and hidden or virtual-environment folders, so a new stage is covered the day it is added.
Scripts of the library package (VAE_model/) run as ``python -m VAE_model.<name>``; the others as
``python path/to/script.py`` from an unrelated working directory (results must not depend on it).
All run in parallel once per session (each imports torch, ~2 s).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {"tests", "runs", "data", "node_modules", "__pycache__"}
LIBRARY = "VAE_model"


def discover_scripts() -> list[str]:
    scripts = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(part.startswith(".") or part in SKIP_DIRS or "venv" in part for part in parts[:-1]):
            continue
        text = path.read_text(errors="replace")
        if '__name__ == "__main__"' in text or "__name__ == '__main__'" in text:
            scripts.append("/".join(parts))
    return scripts


SCRIPTS = discover_scripts()


def help_command(script: str) -> list[str]:
    if script.startswith(LIBRARY + "/"):
        return [sys.executable, "-m", script[:-3].replace("/", "."), "--help"]
    return [sys.executable, str(ROOT / script), "--help"]


def run_help(script: str, cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    if script.startswith(LIBRARY + "/"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(help_command(script), cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@lru_cache(maxsize=1)
def all_help_results() -> dict[str, subprocess.CompletedProcess]:
    with tempfile.TemporaryDirectory(prefix="cli_help_") as cwd:
        with ThreadPoolExecutor(max_workers=max(2, min(6, os.cpu_count() or 2))) as pool:
            results = dict(zip(SCRIPTS, pool.map(lambda script: run_help(script, cwd), SCRIPTS)))
        left_behind = sorted(os.listdir(cwd))
    assert not left_behind, f"--help wrote files into the working directory: {left_behind}"
    return results


def test_scripts_are_discovered():
    for expected in ("Galaxy_VAE_n.py", "make_datatxt.py", "bench/benchmark.py"):
        assert expected in SCRIPTS
    assert not any(script.startswith("tests/") for script in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_exits_zero_with_usage(script):
    result = all_help_results()[script]
    assert result.returncode == 0, f"{script} --help exited {result.returncode}:\n{result.stderr[-2000:]}"
    assert "usage:" in result.stdout.lower(), f"{script} --help printed no usage text"
    assert "Traceback" not in result.stderr
