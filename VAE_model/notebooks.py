"""The notebooks a user opens, and their executed copies in the run directory.

The five notebooks of the repository (outliers/, transfer/) only read what the stages wrote and
draw; they are committed without outputs. A notebook finds its run directory in the environment
variable ``GALAXY_VAE_RUN`` (``run_directory``) and opens every run file through ``need``, which
names the stage to run when the file is missing and refuses it when its provenance record says it
is out of date.

``execute(run, notebook)`` runs one notebook against a run with nbclient (``GALAXY_VAE_RUN`` set,
as JupyterLab or the tests would) and writes

    RUN/notebooks/<name>.ipynb   the executed copy, figures included (opens in JupyterLab / VS Code)
    RUN/notebooks/<name>.html    the same as one static page (nbconvert; figures embedded)

with their provenance records: the inputs are the notebook file itself and every run file it read
through ``need``, so a copy is reported out of date (``python -m VAE_model.provenance stale RUN``,
and refused by analysis/report.py) as soon as the notebook or one of those files changes.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import provenance
from . import runfiles as rf
from .errors import GalaxyVAEError, MissingInputError
from .readers import ADAPT, EVALUATE, NO_TRANSFER, PAIRS

ROOT = Path(__file__).resolve().parent.parent      # the repository: the notebooks live in outliers/, transfer/
NOTEBOOKS_DIR = "notebooks"                         # RUN/notebooks/<name>.ipynb|.html
RUN_ENV = "GALAXY_VAE_RUN"
# set by execute(): the file where need() notes each run file the notebook read (its provenance inputs)
READS_ENV = "GALAXY_VAE_NOTEBOOK_READS"
STAGE = "analysis/notebooks.py"

# the stages whose files the notebooks read (the command a message tells the user to run): those of
# VAE_model/readers.py, and the latent-size study
LATENT_SIZE = "analysis/decals_2_3.py"
__all__ = ["ADAPT", "EVALUATE", "LATENT_SIZE", "NO_TRANSFER", "PAIRS", "NOTEBOOKS", "Notebook", "NotebookError",
           "execute", "need", "run_directory"]


class NotebookError(GalaxyVAEError):
    """A notebook cell raised while the notebook was executed; str() is the notebook and the error line."""


@dataclass(frozen=True)
class Notebook:
    name: str                                 # RUN/notebooks/<name>.ipynb
    source: str                               # the notebook in the repository (relative to its root)
    title: str
    needs: tuple[tuple[str, str], ...]        # (run file it cannot draw without, the stage that writes it)

    @property
    def path(self) -> Path:
        return ROOT / self.source

    @property
    def executed(self) -> str:
        return f"{NOTEBOOKS_DIR}/{self.name}.ipynb"

    @property
    def html(self) -> str:
        return f"{NOTEBOOKS_DIR}/{self.name}.html"


# In stage order; `needs` is what is checked before a kernel is started (the notebooks read more,
# optional files included, all through need()).
NOTEBOOKS = (
    Notebook("visualization", "outliers/visualization.ipynb", "Reconstructions by latent size",
             ((rf.LATENT_SIZE_CSV, LATENT_SIZE), (rf.LATENT_SIZE_RECON_NPZ, LATENT_SIZE))),
    Notebook("dataset_resu", "transfer/dataset_resu.ipynb", "Part II, step 1: DECaLS / BASS+MzLS pairs",
             ((rf.TRANSFER_PAIRS_CSV, PAIRS), (rf.TRANSFER_PAIRS_JSON, PAIRS))),
    Notebook("no_tf", "transfer/no_tf.ipynb", "Part II, step 2: the DECaLS model on BASS+MzLS images",
             ((rf.TRANSFER_METRICS_BEFORE, NO_TRANSFER), (rf.TRANSFER_DISTANCES_BEFORE, NO_TRANSFER))),
    Notebook("outline", "outliers/outline.ipynb", "The same galaxies in both surveys: most and least alike",
             ((rf.TRANSFER_METRICS_BEFORE, NO_TRANSFER), (rf.TRANSFER_DISTANCES_BEFORE, NO_TRANSFER))),
    Notebook("ts_resu2", "transfer/ts_resu2.ipynb", "Part II, steps 3-4: domain adaptation, before and after",
             ((rf.TRANSFER_BEFORE_AFTER_MD, EVALUATE), (rf.TRANSFER_ADAPTED_JSON, EVALUATE))),
)
BY_NAME = {notebook.name: notebook for notebook in NOTEBOOKS}


# ----------------------------------------------------------------------------- inside a notebook
def run_directory(root: str | Path = ROOT) -> Path:
    """The run a notebook reads: $GALAXY_VAE_RUN (default runs/demo), relative to the repository root."""
    run = Path(os.environ.get(RUN_ENV) or rf.DEFAULT_RUN)
    return run if run.is_absolute() else Path(root) / run


def current(run: str | Path, name: str, stage: str) -> Path:
    """RUN/name if it exists (else one line naming the stage to run) and, when its stage keeps a
    provenance record of it, that record is current (else one line naming the stage to re-run)."""
    run = Path(run)
    path = run / name
    command = f"{stage} --run {run}"
    if not path.exists():
        raise MissingInputError(f"{path}: not found; run `{command}` first")
    if provenance.read_record(run, name) is not None:
        provenance.check(run, name, command)
    return path


def need(run: str | Path, name: str, stage: str) -> Path:
    """A run file for a notebook cell (see ``current``), noted as an input of the executed copy."""
    path = current(run, name, stage)
    log = os.environ.get(READS_ENV)
    if log:
        with open(log, "a") as handle:
            handle.write(f"{name}\n")
    return path


# ----------------------------------------------------------------------------- executed copies
def check_inputs(run: str | Path, notebook: Notebook) -> None:
    """The files ``notebook`` cannot draw without, present and current (before a kernel is started)."""
    for name, stage in notebook.needs:
        current(run, name, stage)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def figure_count(nb) -> int:
    """Image outputs (PNG, JPEG or SVG) of an executed notebook."""
    return sum(1 for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
               if {"image/png", "image/jpeg", "image/svg+xml"} & set(output.get("data", {})))


# nbconvert's JupyterLab page without the scripts it would fetch from a CDN (require.js, MathJax, Mermaid:
# the notebooks use none of them), so the page opens offline like the explorer page
OFFLINE_TEMPLATE = """{%- extends "lab/index.html.j2" -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def html_exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})], template_file="offline.html.j2")


def kernel_manager():
    """A kernel of this Python (the one with the project's packages), even where a kernelspec named
    python3 installed elsewhere (a user's ~/.local/share/jupyter, a conda Python) would be found first."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


def execute(run: str | Path, notebook: Notebook, settings: dict | None = None, timeout_s: int = 600) -> dict:
    """Run ``notebook`` against ``run``; write RUN/notebooks/<name>.ipynb and .html with their
    provenance records. Returns {"ipynb", "html", "figures", "seconds", "inputs"}.

    MissingInputError / StaleInputError (one line, before any kernel) when a file it needs is absent
    or out of date; NotebookError with the cell's error line when a cell raises."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    run = Path(run)
    check_inputs(run, notebook)
    start = time.perf_counter()
    nb = nbformat.read(notebook.path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="galaxy_vae_notebook_") as scratch:
        reads_log = Path(scratch) / "reads.txt"
        env = {**os.environ, RUN_ENV: str(run.absolute()), READS_ENV: str(reads_log),
               # figures inline even where MPLBACKEND=Agg is set (CI, tests)
               "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        client = NotebookClient(nb, km=kernel_manager(), timeout=timeout_s,
                                resources={"metadata": {"path": str(notebook.path.parent)}},
                                # the kernel's start-up warnings (e.g. about its local TCP ports) are noise here
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])
        try:
            client.execute(env=env)
        except CellExecutionError as error:
            raise NotebookError(f"{notebook.source} on {run}: {error.ename}: {error.evalue}") from None
        except (CellTimeoutError, DeadKernelError, RuntimeError) as error:   # a cell over --timeout, a kernel that died
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise NotebookError(f"{notebook.source} on {run}: {type(error).__name__}: {first_line}") from None
        read = sorted(set(reads_log.read_text().splitlines())) if reads_log.exists() else []
    # the identities of what it read, taken now that it has read them
    inputs = [provenance.Input.file(notebook.path, name=notebook.source)]
    inputs += [provenance.Input.file(run / name, name=name) for name in read]
    nb.metadata["galaxy_vae"] = {"run": str(run), "source": notebook.source,
                                 "executed_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    html, _ = html_exporter().from_notebook_node(nb, resources={"metadata": {"name": notebook.title}})
    ipynb_path = rf.run_path(run, notebook.executed)
    _atomic_write(ipynb_path, nbformat.writes(nb))
    _atomic_write(run / notebook.html, html)
    provenance.record(run, [notebook.executed, notebook.html], inputs, STAGE,
                      {**(settings or {}), "notebook": notebook.source})
    return {"ipynb": ipynb_path, "html": run / notebook.html, "figures": figure_count(nb),
            "seconds": time.perf_counter() - start, "inputs": read}
