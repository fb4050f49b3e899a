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
CLASSIFY = "analysis/decals_5.py"
SCORECARD = "analysis/decals_7.py"


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


def write_train_list(run, paths, image_size: int | None = None, folder=None, summary: dict | None = None,
                     name: str = rf.TRAIN_TXT, also_recorded=()) -> Path:
    """Write RUN/train.txt (or ``name``) with its summary and provenance, as one stage (make_datatxt.py):
    the list stays current while the images it names (and, when given, the scanned ``folder``'s files)
    keep their sizes and times. ``also_recorded``: other run files written from the same scan (the
    rejected list, the image table)."""
    from .files import write_json
    from .imageio import is_image_file
    from .imagelist import write_image_list
    from .stage import Stage

    run = Path(run)
    paths = [str(p) for p in paths]
    summary = {"n_accepted": len(paths), "list": str(run / name), "image_size": image_size, **(summary or {})}
    with Stage(run, MAKE_DATATXT, settings=summary) as stage:
        output = stage.output(name)
        write_image_list(paths, output)
        if name == rf.TRAIN_TXT:
            write_json(summary, stage.output(rf.DATATXT_SUMMARY))
        stage.wrote(*also_recorded)
        stage.uses(provenance.Input.images(output, paths))
        if folder is not None:
            stage.uses(provenance.Input.folder(folder, is_image_file))
    return output


@dataclass
class ListFraming:
    """How the images of one image list are framed (make_datatxt.py --frame, ``VAE_model/framing.py``).

    ``frames[i]``: what the loader crops image i with: the CropBox recorded for it in images.csv, or, for
    an image the table does not hold (e.g. the other survey's image of a transfer pair), the run's
    framing rule measured on that image. ``identity``: the settings and a digest of the frames, for the
    decode-once cache's meta (another framing rebuilds the cache)."""
    settings: dict
    frames: list
    identity: dict


def model_framing(list_path, paths: list[str]) -> str:
    """VAEConfig.framing of a model trained on an image list: its run's framing rule as JSON ("" when the
    run does not frame), so that files encoded later by the model are framed as its training images were."""
    from .framing import Framing

    framing = read_framing(list_path, paths)
    return "" if framing is None else Framing.from_settings(framing.settings).to_json()


def read_framing(list_path, paths: list[str]) -> ListFraming | None:
    """The framing of an image list: from RUN/images.csv of the run the list belongs to (the list's
    folder, or the folder above for a list in a run's sub-folder such as transfer/decals_pairs.txt),
    checked current and recorded as an input of the running stage. None when that run does not frame its
    images (no images.csv there, or one written without --frame: nothing changes for such runs)."""
    import csv
    import hashlib
    import os

    from .framing import CropBox, Framing

    list_path = Path(list_path)
    for run in (list_path.parent, list_path.parent.parent):
        table_path = run / rf.IMAGES_CSV
        if table_path.is_file():
            break
    else:
        return None
    with open(table_path, newline="") as handle:
        header = next(csv.reader(handle), [])
    if "crop_side_px" not in header:
        return None
    table = read_table(run, rf.IMAGES_CSV, MAKE_DATATXT, ("path", "crop_x_px", "crop_y_px", "crop_side_px"),
                       dtype={"path": str})
    settings = (provenance.read_record(run, rf.IMAGES_CSV) or {}).get("settings", {}).get("framing") or {}
    framing = Framing.from_settings(settings)
    if not framing.active:
        return None
    boxes = {os.path.abspath(path): CropBox(float(x), float(y), int(side))
             for path, x, y, side in table[["path", "crop_x_px", "crop_y_px", "crop_side_px"]].itertuples(index=False)
             if np.isfinite(side)}
    frames = [boxes.get(os.path.abspath(p), framing) for p in paths]
    digest = hashlib.sha1()
    for path, frame in zip(paths, frames):
        digest.update(f"{path}\t{frame}\n".encode())
    return ListFraming(framing.settings(), frames, {"settings": framing.settings(), "frames_sha1": digest.hexdigest(),
                                                    "n_recorded_boxes": sum(isinstance(f, CropBox) for f in frames)})


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
        note_input(run, provenance.Input.file(path))
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


def mock_true_types(truth_path, paths) -> np.ndarray:
    """The mock's true morphology type of each image (matched by galaxy name), None where the truth has none."""
    from .imageio import image_stem

    truth = pd.read_parquet(truth_path, columns=["decals_iauname", "morph_type"])
    kind = dict(zip(truth["decals_iauname"], truth["morph_type"]))
    return np.array([kind.get(image_stem(p)) for p in paths], dtype=object)


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


def read_outlier_scores(run, columns=(), paths: bool = False) -> pd.DataFrame:
    """RUN/outliers/outlier_scores.csv (analysis/decals_4.py), current, with image_index and ``columns``.
    The table keeps image_index and name, not each image's full path (GBs at 10^7 galaxies); ``paths``
    adds a "path" column from the run's train.txt, line image_index (the list the scores were made from)."""
    table = read_table(run, rf.OUTLIER_SCORES_CSV, OUTLIERS, ("image_index", *columns), dtype={"name": str})
    if paths:
        listed = read_train_list(run)
        index = table["image_index"].to_numpy(int)
        if len(index) and (index.min() < 0 or index.max() >= len(listed)):
            raise StaleInputError(f"{Path(run) / rf.OUTLIER_SCORES_CSV}: image_index beyond the {len(listed)} images "
                                  f"of train.txt; re-run `{_command(OUTLIERS, run)}`")
        table["path"] = np.asarray(listed, dtype=object)[index]
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


def read_settings(run, name: str, stage: str) -> dict | None:
    """A configuration another stage wrote (the main run's args.json), read for the settings it names:
    None when absent; refused when edited by hand or left by a run that did not finish. Not an input,
    and not refused when its own inputs changed since: a newer image list does not change which
    learning rate the main run was given."""
    import json

    path = Path(run) / name
    if not path.exists():
        return None
    reason = provenance.problem(run, name, _command(stage, run), inputs=False)
    if reason is not None:
        raise StaleInputError(reason)
    return json.loads(path.read_text())


def current_or_none(run, name: str, stage: str) -> Path | None:
    """RUN/name when it exists and is current (recorded as an input), else None: for a file a stage
    can do without (the main run's split, which the latent-size study otherwise draws the same way)."""
    path = Path(run) / name
    if not path.exists() or provenance.problem(run, name, _command(stage, run)) is not None:
        return None
    note_input(run, provenance.Input.file(path))
    return path


# ----------------------------------------------------------------------------- similarity search (analysis/decals_6.py)
SIMILARITY = "analysis/decals_6.py"


def _checked_if_recorded(run, name: str, stage: str) -> Path:
    """RUN/name, checked as every run file when decals_6 recorded it (older decals_6 runs stamped their
    latents with the model's SHA-256 instead; that stamp is checked by the caller)."""
    if provenance.read_record(run, name) is not None:
        return checked(run, name, stage)
    path = Path(run) / name
    note_input(run, provenance.Input.file(path))
    return path


def read_similarity_latents(run, key: str, checkpoint, made_by: str) -> np.ndarray:
    """decals_6's latents of the index for one model/orientation key (similarity/latents_<key>.npy):
    made with ``checkpoint`` as it is now (its SHA-256 stamp), one row per image of train.txt."""
    import json

    name = rf.SIMILARITY_LATENTS.format(model=key)
    path = Path(run) / name
    if not path.exists():
        from .errors import MissingInputError

        raise MissingInputError(f"{path}: not found; run `{made_by}` first")
    path = _checked_if_recorded(run, name, made_by)
    stamp_path = path.with_suffix(".json")
    recorded = json.loads(stamp_path.read_text()).get("checkpoint_sha256") if stamp_path.exists() else None
    if recorded is None or recorded != provenance.file_digest(checkpoint):
        raise StaleInputError(f"{path}: not made with the current {checkpoint} (stamp {stamp_path}); rerun `{made_by}`")
    return np.load(path)


def read_index_positions(run) -> pd.DataFrame | None:
    """RA/Dec decals_6 found for the index (similarity/index_positions.csv), None when it has not run."""
    if not (Path(run) / rf.SIMILARITY_POSITIONS_CSV).exists():
        return None
    return pd.read_csv(_checked_if_recorded(run, rf.SIMILARITY_POSITIONS_CSV, SIMILARITY))


def images_pixel_scale(run, image_size: int) -> float:
    """arcsec/pixel of the run's images after resizing to ``image_size``: the median native scale and side
    make_datatxt.py recorded in RUN/images.csv; the native Legacy Survey 0.262" when not recorded."""
    from .imageio import PIXEL_SCALE_ARCSEC

    if not (Path(run) / rf.IMAGES_CSV).exists():
        return PIXEL_SCALE_ARCSEC
    table = read_table(run, rf.IMAGES_CSV, MAKE_DATATXT, columns=("pixel_scale_arcsec", "shape"))
    scales = pd.to_numeric(table["pixel_scale_arcsec"], errors="coerce")
    sides = pd.to_numeric(table["shape"].astype(str).str.split("x").str[-1], errors="coerce")
    if not (scales.notna().any() and sides.notna().any()):
        return PIXEL_SCALE_ARCSEC
    return float(scales.median()) * float(sides.median()) / image_size
