"""One typed reader per run-directory file: each checks the file once (present, its provenance
current, its shape consistent) and returns it; a stage never opens a run file any other way.

Every reader raises ``MissingInputError`` or ``StaleInputError`` (both ``GalaxyVAEError``) with one
line naming the file and the stage to (re-)run, e.g.
``runs/demo/latents/mu.npy is out of date: runs/demo/best.pt changed since it was made; re-run
`analysis/decals_2_2.py --run runs/demo```.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import provenance
from . import runfiles as rf
from .errors import StaleInputError
from .imagelist import read_image_list
from .stage import note_input

# the stage that writes each file (the command a message tells the user to run)
MAKE_DATATXT = "make_datatxt.py"
TRAIN = "Galaxy_VAE_n.py"
SELECT = "analysis/decals_1.py"
MATCH = "analysis/decals_2_1.py"
LATENTS = "analysis/decals_2_2.py"
MAPS = "analysis/decals_3.py"
OUTLIERS = "analysis/decals_4.py"
PAIRS = "transfer/make_pairs.py"
NO_TRANSFER = "transfer/no_tf.py"
ADAPT = "transfer/adapt.py"
EVALUATE = "transfer/evaluate.py"


def _command(stage: str, run) -> str:
    return f"{stage} --run {run}"


def checked(run, name: str, stage: str, as_input: bool = True) -> Path:
    """RUN/name after its provenance check (the path). The stage running on ``run`` (VAE_model/stage.py)
    records it among its inputs, unless ``as_input=False`` (a file read for a hint, not a result made
    from it, e.g. the main run's settings that the latent-size study copies)."""
    provenance.check(run, name, _command(stage, run))
    path = Path(run) / name
    if as_input:
        note_input(run, provenance.Input.file(path))
    return path


# ----------------------------------------------------------------------------- images
def read_train_list(run, name: str = rf.TRAIN_TXT, stage: str = MAKE_DATATXT) -> list[str]:
    """The image paths of RUN/train.txt (or another list a stage wrote), current with the images on disk."""
    path = checked(run, name, stage)
    paths = read_image_list(path)
    note_input(run, provenance.Input.images(path, paths))
    return paths


def train_list_input(list_path, paths: list[str]) -> list[provenance.Input]:
    """What a result made from an image list depends on: the list file and the images it names
    (``paths``, as the stage read them)."""
    return [provenance.Input.file(list_path), provenance.Input.images(list_path, paths)]


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_path(run, name: str = rf.BEST_CHECKPOINT, stage: str = TRAIN) -> Path:
    """A checkpoint of the run (best.pt, transfer/<method>/best.pt, ...), current with what it was trained on."""
    return checked(run, name, stage)


def load_run_model(run, name: str = rf.BEST_CHECKPOINT, device="cpu", stage: str = TRAIN):
    from .runtime import load_model

    return load_model(checkpoint_path(run, name, stage), device)


def external_checkpoint(run, path) -> Path:
    """A checkpoint given by flag: a run file is checked like any other; one outside the run is taken as given."""
    path = Path(path)
    try:
        name = str(path.resolve().relative_to(Path(run).resolve()))
    except ValueError:
        if not path.exists():
            from .errors import MissingInputError

            raise MissingInputError(f"{path}: checkpoint not found")
        return path
    return checked(run, name, TRAIN)


# ----------------------------------------------------------------------------- latents
@dataclass
class Latents:
    """mu and logvar (N, latent_dim) of every image of train.txt; names row i = image i."""

    mu: np.ndarray
    logvar: np.ndarray
    names: pd.DataFrame          # image_index, name, path
    config: dict                 # latents_config.json (checkpoint, image_size, latent_dim, ...)

    @property
    def latent_dim(self) -> int:
        return int(self.mu.shape[1])


def read_latents(run) -> Latents:
    """RUN/latents/: current with best.pt and train.txt, mu/logvar/names of one length."""
    import json

    mu = np.load(checked(run, rf.LATENT_MU, LATENTS))
    logvar = np.load(checked(run, rf.LATENT_LOGVAR, LATENTS))
    names = pd.read_csv(checked(run, rf.LATENT_NAMES, LATENTS), dtype={"name": str, "path": str})
    config = json.loads(checked(run, rf.LATENT_CONFIG_JSON, LATENTS).read_text())
    if not (mu.ndim == 2 and mu.shape == logvar.shape and len(names) == len(mu)):
        raise StaleInputError(f"{Path(run) / rf.LATENTS_DIR}: mu {mu.shape}, logvar {logvar.shape} and names "
                              f"({len(names)} rows) disagree; re-run `{_command(LATENTS, run)}`")
    return Latents(mu, logvar, names, config)


def check_latents_model(latents: Latents, checkpoint, run) -> None:
    """The latents must come from ``checkpoint`` (a stage that also encodes or reconstructs with a model
    would otherwise mix two models)."""
    made_with = latents.config.get("checkpoint_sha256")
    if made_with != provenance.file_digest(checkpoint):
        raise StaleInputError(f"{Path(run) / rf.LATENT_MU}: made with another model than {checkpoint}; "
                              f"re-run `{_command(LATENTS, run)} --checkpoint {checkpoint}` or use that model")


def mock_truth_path(mock_dir) -> Path | None:
    """The mock survey's truth table, or None on real data (--mock-dir none, or no truth table there)."""
    if mock_dir is None or str(mock_dir).lower() == "none":
        return None
    path = Path(mock_dir) / rf.MOCK_TRUTH
    return path if path.exists() else None


def latents_inputs(run) -> list[provenance.Input]:
    return [provenance.Input.file(Path(run) / name) for name in (rf.LATENT_MU, rf.LATENT_NAMES)]


def read_class_features(run, question: str) -> tuple[np.ndarray, pd.DataFrame]:
    """mu (n, latent_dim) of the galaxies of one class question and their table (image_index, iauname, label)."""
    folder = rf.LATENT_CLASSES_DIR
    mu = np.load(checked(run, f"{folder}/{question}_mu.npy", LATENTS))
    labels = pd.read_csv(checked(run, f"{folder}/{question}_labels.csv", LATENTS))
    return mu, labels


# ----------------------------------------------------------------------------- tables
def read_table(run, name: str, stage: str, columns=(), dtype=None) -> pd.DataFrame:
    """A CSV of the run, current, with the columns its readers rely on."""
    path = checked(run, name, stage)
    table = pd.read_csv(path, dtype=dtype)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise StaleInputError(f"{path}: lacks column(s) {', '.join(missing)} (written by an older version?); "
                              f"re-run `{_command(stage, run)}`")
    return table


def read_class_index(run) -> pd.DataFrame:
    return read_table(run, rf.CLASS_INDEX_CSV, MATCH, ("image_index", "question", "label"))


def read_catalog_index(run) -> pd.DataFrame:
    return read_table(run, rf.CATALOG_INDEX_CSV, MATCH, ("iauname", "image_index"), dtype={"iauname": str})


def read_pairs(run) -> pd.DataFrame:
    return read_table(run, rf.TRANSFER_PAIRS_CSV, PAIRS, ("pair_id", "decals_iauname", "bass_iauname", "split"),
                      dtype={"decals_iauname": str, "bass_iauname": str, "split": str})


def read_json(run, name: str, stage: str) -> dict:
    import json

    return json.loads(checked(run, name, stage).read_text())
