"""Part I, step 2.2: latent features (mu, logvar) of every image in train.txt with the trained VAE.

The encoder runs batched, without gradients, in mixed precision on CUDA, on the decode-once
image cache (the same uint8 arrays the model was trained on). ``mu`` is the feature vector
used by the later stages; ``logvar`` is kept for uncertainty-aware uses. Under torchrun each
process encodes its share of every batch and rank 0 writes the files.

Per-class features are written per class question (a galaxy may belong to several questions,
one label each): ``latents/classes/<question>_mu.npy`` (n, latent_dim) with row i described by
row i of ``latents/classes/<question>_labels.csv`` (image_index, iauname, label). Load them with
``VAE_model.readers.read_class_features(run, question)``. Without selection/class_index.csv (images
only, no catalog) the latents of all images are written and the per-class files are not.
Every output records its provenance (RUN/provenance/): the checkpoint, train.txt and its images.

READS   RUN/best.pt (Galaxy_VAE_n.py; or --checkpoint), RUN/train.txt, RUN/cache/ (built if absent)
        RUN/images.csv (make_datatxt.py: RA/Dec; without it, the FITS headers are read)
        RUN/selection/class_index.csv (analysis/decals_2_1.py; not with --skip-classes)
WRITES  RUN/latents/mu.npy, logvar.npy        float32 (N, latent_dim), row i = line i of train.txt
        RUN/latents/names.csv                 image_index, name (file stem), path
        RUN/latents/latents.parquet           the same as one table (row groups of 100,000 galaxies):
                                              image_index, name, iauname, path, ra, dec
                                              (deg, from the FITS header when known: RUN/images.csv,
                                              make_datatxt's reading of it), mu_00.., logvar_00..,
                                              model_sha256 (the checkpoint that made them); with a
                                              pose-separated VAE (--pose moments) mu_* is the content and
                                              pose_dx_px, pose_dy_px, pose_angle_deg, pose_mirror its pose
        RUN/latents/classes/<question>_mu.npy, <question>_labels.csv
        RUN/latents/latents_config.json       flags, checkpoint, image_size, latent_dim, device, timing

Next: analysis/decals_3.py (PCA / t-SNE / UMAP maps).

    python analysis/decals_2_2.py --run runs/demo
    torchrun --nproc_per_node=4 -- analysis/decals_2_2.py --run runs/decals --batch-size 2048
    (the ``--`` keeps torchrun from reading ``--run`` as an abbreviation of its own ``--run-path``)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from VAE_model.cli_args import (add_amp_argument, add_batch_size_argument, add_quiet_argument, add_runtime_arguments,
                                cli_main, describe_args)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--checkpoint", default=None, help="trained VAE (default: RUN/best.pt)")
    add_batch_size_argument(parser, 1024, "images per encoder batch at most: fewer when a quarter of the free "
                            "memory (GPU or RAM) holds fewer (batch_size_for_memory)")
    add_amp_argument(parser)
    parser.add_argument("--skip-classes", action="store_true",
                        help="only encode all images; do not write per-class features (no class_index.csv needed)")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd
import torch

from VAE_model import provenance, readers, runfiles
from VAE_model.api import image_positions, latents_table
from VAE_model.data import image_cache, image_name, read_image_list
from VAE_model.errors import StaleInputError
from VAE_model.features import encode_arrays, encode_pose_arrays
from VAE_model.morph_classes import CLASS_QUESTIONS
from VAE_model.similarity import run_image_positions
from VAE_model.runtime import (barrier, cleanup_distributed, init_distributed, load_model, pick_device, pick_precision,
                               run_lock, seed_everything, write_json)
from VAE_model.stage import Stage, note_output


def class_feature_paths(run_dir: str | Path, question: str) -> tuple[Path, Path]:
    """(RUN/latents/classes/<question>_mu.npy, RUN/latents/classes/<question>_labels.csv)."""
    folder = Path(run_dir) / runfiles.LATENT_CLASSES_DIR
    return folder / f"{question}_mu.npy", folder / f"{question}_labels.csv"


def write_class_features(run_dir: str | Path, mu: np.ndarray, classes: pd.DataFrame) -> dict[str, int]:
    """Split mu by class question (built-in questions and --label-column labels alike) through the
    class index; returns galaxies per question."""
    counts = {}
    present = list(dict.fromkeys(classes["question"].astype(str)))
    for question in [q for q in CLASS_QUESTIONS if q in present] + [q for q in present if q not in CLASS_QUESTIONS]:
        rows = classes[classes["question"] == question].sort_values("image_index")
        mu_path, labels_path = class_feature_paths(run_dir, question)
        mu_path.parent.mkdir(parents=True, exist_ok=True)
        note_output(run_dir, *(str(Path(runfiles.LATENT_CLASSES_DIR) / p.name) for p in (mu_path, labels_path)))
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
        raise StaleInputError(f"{Path(run_dir) / runfiles.CLASS_INDEX_CSV}: does not match the current "
                              f"train.txt ({int(stale.sum())} rows); re-run `analysis/decals_2_1.py --run {run_dir}`")


# Memory the encoder needs per image of a batch, at 256 px: measured 5.6 MB (peak RSS growth of
# features.encode_arrays on CPU, float32, 32 x 256 px images; 1.4 MB at 128 px, 0.41 MB at 64 px: it
# scales with the pixel count). 6 MB leaves room for the batch's uint8 and float copies.
ENCODE_BYTES_PER_IMAGE_256 = 6e6
MEMORY_FRACTION = 0.25      # of the memory available when the stage starts: other processes share the machine


def available_memory_bytes(device) -> int:
    """Free memory where the batch will live: the GPU's (CUDA), else the machine's MemAvailable."""
    if torch.device(device).type == "cuda":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def batch_size_for_memory(image_size: int, requested: int, device, available_bytes: int | None = None) -> int:
    """The encoder batch: ``requested`` at most, and no more images than fit in MEMORY_FRACTION of the
    free memory (ENCODE_BYTES_PER_IMAGE_256 scaled by the pixel count); at least 1. At 256 px the old
    fixed 1,024 held ~6 GB; on a machine with 8 GB free this gives 341."""
    available = available_memory_bytes(device) if available_bytes is None else available_bytes
    per_image = ENCODE_BYTES_PER_IMAGE_256 * (image_size / 256) ** 2
    return int(max(1, min(requested, MEMORY_FRACTION * available // per_image)))


def header_positions(run, paths: list[str]) -> pd.DataFrame | None:
    """image_index, ra, dec of the images with a known position: from make_datatxt's RUN/images.csv (the
    headers read once) when it lists every image, else from the FITS headers (api.image_positions)."""
    listed = run_image_positions(run, paths)
    if listed is None:
        return image_positions(paths)
    ra, dec = listed
    known = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    if not len(known):
        return None
    return pd.DataFrame({"image_index": known, "ra": ra[known], "dec": dec[known]})


PARQUET_ROWS_PER_GROUP = 100_000   # latents.parquet row groups: ~25 MB each at 32 latent dimensions


def write_latents_parquet(path: Path, mu: np.ndarray, logvar: np.ndarray, paths: list[str], model_sha256: str,
                          positions: pd.DataFrame | None, pose: np.ndarray | None = None,
                          rows_per_group: int = PARQUET_ROWS_PER_GROUP) -> None:
    """RUN/latents/latents.parquet written one row group of ``rows_per_group`` galaxies at a time (the
    table api.latents_table makes), so the whole table is never held in pandas at once and a reader can
    take row groups lazily (pyarrow.parquet.ParquetFile.iter_batches)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        for start in range(0, len(paths), rows_per_group):
            stop = min(start + rows_per_group, len(paths))
            part = None
            if positions is not None:
                chosen = positions["image_index"].between(start, stop - 1)
                part = positions[chosen].assign(image_index=positions["image_index"][chosen] - start)
            table = latents_table(mu[start:stop], logvar[start:stop], paths[start:stop], model_sha256, part,
                                  None if pose is None else pose[start:stop])
            table["image_index"] += start
            arrow = pa.Table.from_pandas(table, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, arrow.schema)
            writer.write_table(arrow.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)


def extract(checkpoint: str | Path, list_path: str | Path, cache_dir: str | Path, device: torch.device,
            amp: str = "auto", batch_size: int = 1024, dist=None, progress: bool = True):
    """(mu, logvar, paths, model config, batch size used) of every image in the list; the cache is built by
    rank 0 only. ``batch_size`` is an upper bound: the batch is sized by free memory (``batch_size_for_memory``)."""
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
    batch_size = batch_size_for_memory(image_size, batch_size, device)
    mu, logvar = encode_arrays(model, cache, device, pick_precision(device, amp), batch_size=batch_size,
                               progress=progress, dist=dist)
    # a pose-separated VAE's mu is the content; its measured pose goes into its own columns
    return mu, logvar, paths, model.config, encode_pose_arrays(model, cache, device, batch_size), batch_size


@cli_main
@provenance.memoised      # each image set stat'ed once in this stage
def main(argv=None) -> int:
    args = parse_args(argv)
    run = args.run
    device = pick_device(args.device)
    dist = init_distributed(device)
    seed_everything(args.seed)
    with contextlib.ExitStack() as stack:
        stack.callback(cleanup_distributed, dist)
        if dist.is_main and Path(run).is_dir():   # not while Galaxy_VAE_n.py writes the model (it holds the lock)
            stack.enter_context(run_lock(run))
        stage = stack.enter_context(Stage(run, "analysis/decals_2_2.py", args, active=dist.is_main))
        paths = readers.read_train_list(run)
        checkpoint = readers.external_checkpoint(run, args.checkpoint) if args.checkpoint \
            else readers.checkpoint_path(run)
        stage.uses(provenance.Input.file(checkpoint))
        classes = None
        if not args.skip_classes:
            if not (Path(run) / runfiles.CLASS_INDEX_CSV).exists():
                print(f"note: no {Path(run) / runfiles.CLASS_INDEX_CSV} (no catalog matched yet): "
                      "writing the latents of all images, no per-class features")
            else:
                with stage.inputs_only_for(runfiles.LATENT_CLASSES_DIR):   # the latents themselves do not depend on it
                    classes = readers.read_class_index(run)
                check_class_index(classes, paths, run)
        start = time.perf_counter()
        mu, logvar, paths, config, pose, batch_used = extract(checkpoint, Path(run) / runfiles.TRAIN_TXT, Path(run) / runfiles.CACHE_DIR,
                                            device, args.amp, args.batch_size, dist, progress=not args.quiet)
        seconds = time.perf_counter() - start
        if not dist.is_main:
            return 0
        np.save(runfiles.run_path(run, runfiles.LATENT_MU), mu)
        np.save(runfiles.run_path(run, runfiles.LATENT_LOGVAR), logvar)
        pd.DataFrame({"image_index": np.arange(len(paths)), "name": [image_name(p) for p in paths], "path": paths}) \
            .to_csv(runfiles.run_path(run, runfiles.LATENT_NAMES), index=False)
        per_question = write_class_features(run, mu, classes) if classes is not None else {}
        model_sha256 = provenance.file_digest(checkpoint)
        write_latents_parquet(runfiles.run_path(run, runfiles.LATENT_TABLE_PARQUET), mu, logvar, paths, model_sha256,
                              header_positions(run, paths), pose)
        stage.settings = describe_args(args, checkpoint_path=str(checkpoint), checkpoint_sha256=model_sha256,
                                       image_size=config.image_size, latent_dim=config.latent_dim, arch=config.arch,
                                       n_images=len(paths), device_used=str(device),
                                       precision=pick_precision(device, args.amp).describe(), world_size=dist.world_size,
                                       seconds=round(seconds, 2), class_galaxies_per_question=per_question,
                                       encode_batch_size=batch_used)
        write_json(stage.settings, runfiles.run_path(run, runfiles.LATENT_CONFIG_JSON))
    classes_note = f", per-class features for {sum(per_question.values())} (question, galaxy) pairs" if per_question else ""
    print(f"done: mu and logvar ({len(paths)} x {config.latent_dim}) in {seconds:.1f} s "
          f"({len(paths) / max(seconds, 1e-9):.0f} images/s, {device}){classes_note}; in {Path(run) / runfiles.LATENTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
