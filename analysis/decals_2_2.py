"""Part I, step 2.2: latent features (mu, logvar) of every image in train.txt with the trained VAE.

The encoder runs batched, without gradients, in mixed precision on CUDA, on the decode-once
image cache (the same uint8 arrays the model was trained on). ``mu`` is the feature vector
used by the later stages; ``logvar`` is kept for uncertainty-aware uses. Under torchrun each
process encodes its share of every batch and rank 0 writes the files.

Per-class features are written per class question (a galaxy may belong to several questions,
one label each): ``latents/classes/<question>_mu.npy`` (n, latent_dim) with row i described by
row i of ``latents/classes/<question>_labels.csv`` (image_index, iauname, label). Load them with
``analysis.decals_2_2.load_class_features(run, question)``.

READS   RUN/best.pt (Galaxy_VAE_n.py; or --checkpoint), RUN/train.txt, RUN/cache/ (built if absent)
        RUN/selection/class_index.csv (analysis/decals_2_1.py; not with --skip-classes)
WRITES  RUN/latents/mu.npy, logvar.npy        float32 (N, latent_dim), row i = line i of train.txt
        RUN/latents/names.csv                 image_index, name (file stem), path
        RUN/latents/classes/<question>_mu.npy, <question>_labels.csv
        RUN/latents/latents_config.json       flags, checkpoint, image_size, latent_dim, device, timing

Next: analysis/decals_3.py (PCA / t-SNE / UMAP maps).

    python analysis/decals_2_2.py --run runs/demo
    torchrun --nproc_per_node=4 -- analysis/decals_2_2.py --run runs/decals --batch-size 2048
    (the ``--`` keeps torchrun from reading ``--run`` as an abbreviation of its own ``--run-path``)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


import numpy as np
import pandas as pd
import torch

from VAE_model import runfiles
from VAE_model.data import DataError, image_cache, image_name, read_image_list
from VAE_model.features import encode_arrays
from VAE_model.imageio import ImageError
from VAE_model.morph_classes import CLASS_QUESTIONS
from VAE_model.runtime import (CheckpointError, add_runtime_arguments, barrier, cleanup_distributed,
                               describe_args, init_distributed, load_model, pick_device, pick_precision,
                               seed_everything, write_json)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--checkpoint", default=None, help="trained VAE (default: RUN/best.pt)")
    parser.add_argument("--batch-size", type=int, default=1024, help="images per encoder batch (default: %(default)s)")
    parser.add_argument("--amp", choices=["auto", "on", "off"], default="auto", help="mixed precision (auto: on CUDA)")
    parser.add_argument("--skip-classes", action="store_true",
                        help="only encode all images; do not write per-class features (no class_index.csv needed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def class_feature_paths(run_dir: str | Path, question: str) -> tuple[Path, Path]:
    """(RUN/latents/classes/<question>_mu.npy, RUN/latents/classes/<question>_labels.csv)."""
    folder = Path(run_dir) / runfiles.LATENT_CLASSES_DIR
    return folder / f"{question}_mu.npy", folder / f"{question}_labels.csv"


def load_class_features(run_dir: str | Path, question: str) -> tuple[np.ndarray, pd.DataFrame]:
    """mu (n, latent_dim) of the galaxies of one class question and their table (image_index, iauname, label)."""
    mu_path, labels_path = class_feature_paths(run_dir, question)
    made_by = f"analysis/decals_2_2.py --run {run_dir}"
    return np.load(runfiles.require(mu_path, made_by)), pd.read_csv(runfiles.require(labels_path, made_by))


def write_class_features(run_dir: str | Path, mu: np.ndarray, classes: pd.DataFrame) -> dict[str, int]:
    """Split mu by class question through the class index; returns galaxies per question."""
    counts = {}
    for question in CLASS_QUESTIONS:
        rows = classes[classes["question"] == question].sort_values("image_index")
        mu_path, labels_path = class_feature_paths(run_dir, question)
        mu_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(mu_path, mu[rows["image_index"].to_numpy(dtype=int)])
        rows[["image_index", "iauname", "label"]].to_csv(labels_path, index=False)
        counts[question] = len(rows)
    return counts


def check_class_index(classes: pd.DataFrame, paths: list[str], run_dir) -> None:
    """The class index must point at the current train.txt (same rows, same files)."""
    rows = classes["image_index"].to_numpy(dtype=int)
    stale = (rows < 0) | (rows >= len(paths))
    if not stale.any():
        stale = np.array([paths[i] != str(p) for i, p in zip(rows, classes["image_path"])], dtype=bool)
    if stale.any():
        raise runfiles.MissingInputError(f"{Path(run_dir) / runfiles.CLASS_INDEX_CSV}: does not match the current "
                                         f"train.txt ({int(stale.sum())} rows); rerun `analysis/decals_2_1.py --run {run_dir}`")


def extract(checkpoint: str | Path, list_path: str | Path, cache_dir: str | Path, device: torch.device,
            amp: str = "auto", batch_size: int = 1024, dist=None, progress: bool = True):
    """(mu, logvar, paths, model config) of every image in the list; the cache is built by rank 0 only."""
    from VAE_model.runtime import DistInfo

    dist = dist or DistInfo()
    model = load_model(checkpoint, device)
    image_size = model.config.image_size
    paths = read_image_list(list_path)
    if dist.is_main:
        cache = image_cache(list_path, image_size, cache_dir, progress=progress)
    barrier(dist)
    if not dist.is_main:
        cache = image_cache(list_path, image_size, cache_dir, progress=False)
    mu, logvar = encode_arrays(model, cache, device, pick_precision(device, amp), batch_size=batch_size,
                               progress=progress, dist=dist)
    return mu, logvar, paths, model.config


def main(argv=None) -> int:
    args = parse_args(argv)
    run = args.run
    device = pick_device(args.device)
    dist = init_distributed(device)
    seed_everything(args.seed)
    checkpoint = args.checkpoint or str(Path(run) / runfiles.BEST_CHECKPOINT)
    try:
        runfiles.require(Path(run) / runfiles.TRAIN_TXT, f"make_datatxt.py --run {run}")
        runfiles.require(checkpoint, f"Galaxy_VAE_n.py --run {run}")
        classes = None
        if not args.skip_classes:
            index_path = runfiles.require(Path(run) / runfiles.CLASS_INDEX_CSV, f"analysis/decals_2_1.py --run {run}")
            classes = pd.read_csv(index_path)
        start = time.perf_counter()
        mu, logvar, paths, config = extract(checkpoint, Path(run) / runfiles.TRAIN_TXT, Path(run) / runfiles.CACHE_DIR,
                                            device, args.amp, args.batch_size, dist, progress=not args.quiet)
        seconds = time.perf_counter() - start
        if classes is not None:
            check_class_index(classes, paths, run)
    except (runfiles.MissingInputError, CheckpointError, DataError, ImageError) as error:
        print(f"error: {error}", file=sys.stderr)
        cleanup_distributed(dist)
        return 1
    if dist.is_main:
        np.save(runfiles.run_path(run, runfiles.LATENT_MU), mu)
        np.save(runfiles.run_path(run, runfiles.LATENT_LOGVAR), logvar)
        pd.DataFrame({"image_index": np.arange(len(paths)), "name": [image_name(p) for p in paths], "path": paths}) \
            .to_csv(runfiles.run_path(run, runfiles.LATENT_NAMES), index=False)
        per_question = write_class_features(run, mu, classes) if classes is not None else {}
        write_json(describe_args(args, checkpoint_path=str(checkpoint), image_size=config.image_size,
                                 latent_dim=config.latent_dim, n_images=len(paths), device_used=str(device),
                                 precision=pick_precision(device, args.amp).describe(), world_size=dist.world_size,
                                 seconds=round(seconds, 2), class_galaxies_per_question=per_question),
                   runfiles.run_path(run, runfiles.LATENT_CONFIG_JSON))
        classes_note = f", per-class features for {sum(per_question.values())} (question, galaxy) pairs" if per_question else ""
        print(f"done: mu and logvar ({len(paths)} x {config.latent_dim}) in {seconds:.1f} s "
              f"({len(paths) / max(seconds, 1e-9):.0f} images/s, {device}){classes_note}; in {Path(run) / runfiles.LATENTS_DIR}")
    cleanup_distributed(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
