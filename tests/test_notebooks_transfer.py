"""The Part II notebooks run headless on the tiny transfer run (built once, shared with
tests/test_transfer.py) and fail the test if any cell raises."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_transfer import build_transfer_run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["transfer/dataset_resu.ipynb", "transfer/no_tf.ipynb", "outliers/outline.ipynb", "transfer/ts_resu2.ipynb"]


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory):
    return build_transfer_run(tmp_path_factory.mktemp("transfer"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_the_tiny_run(name, transfer_run, monkeypatch):
    assert transfer_run["codes"]["evaluate"] == 0
    monkeypatch.setenv("GALAXY_VAE_RUN", str(transfer_run["run"]))
    path = ROOT / name
    nb = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "outputs committed"
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure drawn"
