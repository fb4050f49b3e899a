"""The five notebooks: committed without outputs; executed by analysis/notebooks.py on the tiny run
into RUN/notebooks/<name>.ipynb (with figures) and .html, with provenance records that go out of date
when what a notebook read changes; and each names the stage to run when its inputs are missing.

The tiny run is the Part II run of tests/test_transfer.py (built once per session), copied, plus
latent-size results written here (the Part I notebook's input)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_transfer import build_transfer_run

from analysis import notebooks as notebooks_script
from VAE_model import provenance, runfiles
from VAE_model.notebooks import NOTEBOOKS, ROOT, kernel_manager
from VAE_model.shards import open_shards, write_shards

NAMES = [notebook.name for notebook in NOTEBOOKS]
# what each notebook must tell a user to run on an empty run directory (written out, not taken from the code)
FIRST_STAGE = {"visualization": "analysis/decals_2_3.py", "dataset_resu": "transfer/make_pairs.py",
               "no_tf": "transfer/no_tf.py", "outline": "transfer/no_tf.py", "ts_resu2": "transfer/evaluate.py"}


def fake_latent_size_results(run: Path, sizes=(2, 8), n: int = 3, size: int = 64) -> None:
    """What analysis/decals_2_3.py writes for the notebook: reconstructions.npz, latent_size.csv (with
    its provenance record, made from train.txt)."""
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
    provenance.record(run, [runfiles.LATENT_SIZE_CSV], [provenance.Input.file(run / runfiles.TRAIN_TXT)],
                      "analysis/decals_2_3.py")


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)   # copy2 keeps the time stamps, so the provenance records stay current
    return target


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The tiny run after `analysis/notebooks.py --run RUN` (exit status, run directory), with a broken
    kernelspec named python3 first on the Jupyter path (as a user's other Python may install one): the
    notebooks must still run in this Python."""
    built = build_transfer_run(tmp_path_factory.mktemp("transfer"))
    assert built["codes"]["evaluate"] == 0
    run = copy_run(built["run"], tmp_path_factory.mktemp("notebooks") / "run")
    fake_latent_size_results(run)
    assert provenance.stale_files(run) == []
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    (jupyter_path / "kernels" / "python3").mkdir(parents=True)
    (jupyter_path / "kernels" / "python3" / "kernel.json").write_text(
        '{"argv": ["false", "{connection_file}"], "display_name": "another Python", "language": "python"}')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter_path))
        code = notebooks_script.main(["--run", str(run)])
    return {"code": code, "run": run}


def outputs_of(nb) -> list:
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=NAMES)
def test_committed_notebook_has_no_outputs(notebook):
    nb = nbformat.read(notebook.path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{notebook.source}: outputs committed"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=NAMES)
def test_executed_copy_has_its_figures_and_html(notebook, executed):
    assert executed["code"] == 0
    run = executed["run"]
    nb = nbformat.read(run / notebook.executed, as_version=4)
    outputs = outputs_of(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure in the executed copy"
    assert all(cell.execution_count for cell in nb.cells if cell.cell_type == "code")
    html = (run / notebook.html).read_text()
    assert "data:image/png;base64," in html          # figures embedded: the page needs no kernel or files
    assert f"<title>{notebook.title}</title>" in html
    assert not re.findall(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?!data:)", html)   # nothing fetched: opens offline
    for output in (notebook.executed, notebook.html):
        assert provenance.problem(run, output, "analysis/notebooks.py") is None
    inputs = {entry["name"]: entry for entry in provenance.read_record(run, notebook.executed)["inputs"]}
    assert notebook.source in inputs                   # the notebook itself: editing it makes the copy old
    assert {name for name, _ in notebook.needs} <= set(inputs)


def test_visualization_reads_the_run_of_the_variable_and_writes_nothing_into_it(executed):
    from VAE_model import provenance

    # decals_2_3.py's figure of the same reconstructions keeps its record: the notebook drew its own elsewhere
    assert runfiles.LATENT_SIZE_RECON_PNG not in dict(provenance.stale_files(executed["run"]))
    assert provenance.stale_files(executed["run"]) == []


def test_executed_copy_is_out_of_date_when_what_it_read_changes(executed, tmp_path):
    run = copy_run(executed["run"], tmp_path / "run")
    assert provenance.stale_files(run) == []
    # the pairs' cache, read by outline.ipynb (no record of its own), rebuilt from changed images: its
    # meta.json, written last by every build, says so
    meta = run / runfiles.CACHE_META.format(list="decals_pairs", size=64)
    cache = open_shards(meta)
    made_from = {**cache.meta, "images": {"n": len(cache), "stat_sha1": "other images"}}
    write_shards(meta.parent, made_from, lambda start, stop: iter(255 - cache[start:stop]), len(cache),
                 cache.shape[1:], cache.shard_images)
    stale = dict(provenance.stale_files(run))
    assert set(stale) == {"notebooks/outline.ipynb", "notebooks/outline.html"}
    assert "decals_pairs_64px/meta.json changed" in stale["notebooks/outline.ipynb"]
    # a stage output it read, re-made: the copy is out of date, and re-executing refuses the old output
    (run / runfiles.TRANSFER_BEFORE_AFTER_MD).write_text("edited by hand\n")
    assert "notebooks/ts_resu2.ipynb" in dict(provenance.stale_files(run))
    assert notebooks_script.main(["--run", str(run), "--only", "ts_resu2"]) == 1


def test_script_names_the_stage_for_each_notebook_it_cannot_run(tmp_path, capsys):
    empty = tmp_path / "run"
    empty.mkdir()
    assert notebooks_script.main(["--run", str(empty)]) == 1
    err = capsys.readouterr().err
    for notebook in NOTEBOOKS:
        line = next(line for line in err.splitlines() if line.startswith(f"error: {notebook.source}:"))
        assert f"run `{FIRST_STAGE[notebook.name]} --run {empty}` first" in line
    assert not (empty / "notebooks").exists()


def test_each_notebook_names_the_stage_when_its_inputs_are_missing(tmp_path, monkeypatch):
    """Opened on an empty run (as a user would, in one kernel for speed): the first cell that reads the
    run stops with the file and the stage that writes it."""
    empty = tmp_path / "run"
    empty.mkdir()
    monkeypatch.setenv("GALAXY_VAE_RUN", str(empty))
    client = NotebookClient(nbformat.v4.new_notebook(), km=kernel_manager(), timeout=120,
                            resources={"metadata": {"path": str(ROOT)}})
    errors = {}
    with client.setup_kernel():
        for notebook in NOTEBOOKS:
            client.nb = nbformat.read(notebook.path, as_version=4)
            for index, cell in enumerate(client.nb.cells):
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as error:
                    errors[notebook.name] = error
                    break
    assert set(errors) == set(NAMES)
    for name, error in errors.items():
        assert error.ename == "MissingInputError", (name, error.ename, error.evalue)
        assert f"run `{FIRST_STAGE[name]} --run {empty}` first" in error.evalue, (name, error.evalue)


def test_report_links_the_executed_notebooks(executed, tmp_path):
    from analysis import report

    run = copy_run(executed["run"], tmp_path / "run")
    (run / "notebooks" / "no_tf.ipynb").unlink()          # one not executed: the report says how to make it
    page = report.Report(run)
    report.section_notebooks(page)
    section = "\n".join(page.lines)
    for notebook in NOTEBOOKS:
        if notebook.name == "no_tf":
            assert f"`analysis/notebooks.py --run {run} --only no_tf`" in section
        else:
            for link in (notebook.html, notebook.executed):
                assert f"]({link})" in section and (run / link).exists()
