"""The run-directory layout: every file a stage reads or writes, named once.

A run directory (default ``runs/demo``) holds one experiment. Each stage finds its inputs
here by these fixed names and says which earlier stage to run when one is missing.
The mock survey (the embedded default data) lives outside the run directory, under
``data/mock`` by default, with the layout in ``MOCK_*`` below.
"""
from __future__ import annotations

from pathlib import Path

DEFAULT_RUN = "runs/demo"
DEFAULT_MOCK_DIR = "data/mock"

# --- mock survey layout (relative to the mock directory) -------------------------------
MOCK_DECALS_IMAGES = "decals"            # FITS cutouts, DECaLS-like
MOCK_BASS_IMAGES = "bass_mzls"           # FITS cutouts, BASS+MzLS-like
MOCK_DECALS_CATALOG = "gz_decals.parquet"
MOCK_BASS_CATALOG = "gz_bass_mzls.parquet"
MOCK_TRUTH = "truth.parquet"             # ground truth; training never reads it
MOCK_META = "mock_meta.json"
MOCK_EXAMPLES_PNG = "examples_by_class.png"

# --- stage outputs (relative to the run directory) -------------------------------------
# make_datatxt.py
TRAIN_TXT = "train.txt"
REJECTED_CSV = "rejected_images.csv"
DATATXT_SUMMARY = "datatxt_summary.json"
# Galaxy_VAE_n.py
TRAIN_ARGS = "args.json"
CHECKPOINT = "checkpoint.pt"             # last epoch, saved atomically every epoch
BEST_CHECKPOINT = "best.pt"              # best validation loss
LOSS_CSV = "loss_history.csv"
LOSS_PNG = "loss_history.png"
RECON_PNG = "reconstructions.png"
SPLIT_JSON = "split.json"                # train/validation indices into train.txt
CACHE_DIR = "cache"                      # decode-once image caches
# analysis/decals_1.py
SELECTION_DIR = "selection"
CLASS_COUNTS_CSV = "selection/class_counts.csv"
# analysis/decals_2_1.py
CLASS_INDEX_CSV = "selection/class_index.csv"
# analysis/decals_2_2.py
LATENTS_DIR = "latents"
LATENT_MU = "latents/mu.npy"
LATENT_LOGVAR = "latents/logvar.npy"
LATENT_NAMES = "latents/names.csv"
# analysis/decals_2_3.py
LATENT_SIZE_DIR = "latent_size"
# analysis/decals_3.py
MAPS_DIR = "maps"
# analysis/decals_4.py
OUTLIERS_DIR = "outliers"
# analysis/decals_5.py
CLASSIFICATION_DIR = "classification"
# analysis/decals_6.py
SIMILARITY_DIR = "similarity"
# transfer/
TRANSFER_DIR = "transfer"
REPORT_MD = "REPORT.md"


class MissingInputError(RuntimeError):
    """A stage's input is absent: the message names the file and the stage that writes it."""


def require(path: str | Path, made_by: str) -> Path:
    """Return ``path`` if it exists, else raise one clear line naming the stage to run first."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: not found; run `{made_by}` first")
    return path


def run_path(run_dir: str | Path, name: str) -> Path:
    """Path of a named run file, creating its parent folder."""
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
