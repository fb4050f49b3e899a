"""The Part I notebooks run headless on a tiny run directory written by the test."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from VAE_model import runfiles

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "outliers" / "visualization.ipynb"


def fake_latent_size_results(run: Path, sizes=(2, 8), n: int = 3, size: int = 64) -> None:
    """What analysis/decals_2_3.py writes for the notebook: reconstructions.npz and latent_size.csv."""
    rng = np.random.default_rng(0)
    originals = rng.uniform(0, 1, (n, 3, size, size)).astype(np.float32)
    arrays = {"originals": originals, "names": np.array([f"J{i:06d}+300000.0" for i in range(n)]),
              "image_index": np.arange(n), "latent_sizes": np.array(sizes)}
    for k in sizes:
        arrays[f"recon_{k}"] = np.clip(originals + rng.normal(0, 0.1 / k, originals.shape), 0, 1).astype(np.float32)
    np.savez_compressed(runfiles.run_path(run, runfiles.LATENT_SIZE_RECON_NPZ), **arrays)
    pd.DataFrame({"latent_dim": list(sizes), "val_mse_per_pixel": [0.01, 0.005], "val_ssim": [0.5, 0.7],
                  "rf_accuracy": [np.nan, np.nan], "epochs": 1, "seed": 0}).to_csv(
        runfiles.run_path(run, runfiles.LATENT_SIZE_CSV), index=False)


def execute(notebook: Path, run: Path, monkeypatch):
    monkeypatch.setenv("GALAXY_VAE_RUN", str(run))
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(notebook.parent)}})
    client.execute()   # raises CellExecutionError if any cell fails
    return nb


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_visualization_notebook_draws_reconstructions_by_latent_size(tmp_path, monkeypatch):
    run = tmp_path / "run"
    fake_latent_size_results(run)
    nb = execute(NOTEBOOK, run, monkeypatch)
    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (run / runfiles.LATENT_SIZE_RECON_PNG).stat().st_size > 1000   # drawn into the run given by the variable


def test_visualization_notebook_fails_without_results(tmp_path, monkeypatch):
    with pytest.raises(CellExecutionError, match="decals_2_3.py"):
        execute(NOTEBOOK, tmp_path / "empty_run", monkeypatch)
