"""The Python API: load a trained VAE, encode image files or a folder, get the latents table back.

    from VAE_model.api import load_vae, encode
    model = load_vae("runs/demo/best.pt")              # rebuilt from the checkpoint alone
    table = encode(model, "my_cutouts/")               # a file, a folder (searched recursively) or a list of either
    table.to_parquet("my_latents.parquet")
    table.attrs["skipped"]                             # [(path, reason)] of files that could not be used

The table has the columns of ``RUN/latents/latents.parquet`` (analysis/decals_2_2.py): image_index,
name, iauname (the file stem), path, ra, dec (deg, from the FITS WCS or RA/DEC cards when known),
mu_00.., logvar_00.., model_sha256 (the checkpoint that made them). Images go through the one loader
(``imageio.load_image``) and the cache's uint8 quantisation, so the latents are those the pipeline
stages compute for the same files.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GalaxyVAEError


def load_vae(checkpoint: str | Path, device: str = "auto"):
    """The VAE of a checkpoint (eval mode) on ``device`` ('auto': CUDA when present, else CPU)."""
    from .provenance import file_digest
    from .runtime import load_model, pick_device

    model = load_model(checkpoint, pick_device(device))
    model.checkpoint_sha256 = file_digest(checkpoint)
    return model


def image_positions(paths: list[str]) -> pd.DataFrame | None:
    """image_index, ra, dec (deg) of the images whose header gives a sky position (WCS centre or RA/DEC)."""
    from .imageio import image_position

    rows = []
    for i, path in enumerate(paths):
        ra, dec, _ = image_position(path)
        if np.isfinite(ra) and np.isfinite(dec):
            rows.append({"image_index": i, "ra": float(ra), "dec": float(dec)})
    return pd.DataFrame(rows, columns=["image_index", "ra", "dec"]) if rows else None


def latents_table(mu: np.ndarray, logvar: np.ndarray, paths: list[str], model_sha256: str,
                  positions: pd.DataFrame | None = None, pose: np.ndarray | None = None) -> pd.DataFrame:
    """One row per image: image_index, name, iauname, path, ra, dec, mu_00.., logvar_00.., model_sha256;
    with a pose-separated VAE also its pose (pose_dx_px, pose_dy_px, pose_angle_deg, pose_mirror), the
    content latents staying in mu_*."""
    from .data import image_name

    names = [image_name(p) for p in paths]
    table = pd.DataFrame({"image_index": np.arange(len(paths)), "name": names, "iauname": names,
                          "path": [str(p) for p in paths]})
    table = table.merge(positions if positions is not None else
                        pd.DataFrame(columns=["image_index", "ra", "dec"], dtype=float).astype({"image_index": int}),
                        on="image_index", how="left")
    width = max(2, len(str(mu.shape[1] - 1)))
    columns = {f"mu_{k:0{width}d}": mu[:, k] for k in range(mu.shape[1])}
    columns.update({f"logvar_{k:0{width}d}": logvar[:, k] for k in range(logvar.shape[1])})
    if pose is not None:
        from .pose import POSE_FIELDS

        columns.update({field: pose[:, k] for k, field in enumerate(POSE_FIELDS)})
    table = pd.concat([table, pd.DataFrame(columns)], axis=1)
    table["model_sha256"] = model_sha256
    return table


class EncodeInputError(GalaxyVAEError, FileNotFoundError):
    """A path given to ``encode`` that is neither a file nor a folder; str() is one line."""


def _image_paths(files) -> tuple[list[str], list[tuple[str, str]]]:
    """The image files ``encode`` reads: (paths, [(path, reason)] left out of folders). Accepts a file, a
    folder (searched recursively, links followed, one image per galaxy as in make_datatxt) or a list of
    either; a path that does not exist raises EncodeInputError."""
    from .image_scan import find_images, one_image_per_galaxy

    items = [files] if isinstance(files, (str, os.PathLike)) else files
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, (str, os.PathLike)) for i in items):
        raise EncodeInputError(f"encode: expected a file, a folder or a list of them, got {type(files).__name__}"
                               + (" holding other things" if isinstance(items, (list, tuple)) else ""))
    missing = [str(i) for i in items if not os.path.exists(i)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise EncodeInputError(f"{missing[0]}: no such file or folder{more}")
    paths, left_out = [], []
    for item in items:
        if os.path.isdir(item):
            found, problems = find_images(item)
            kept, skipped, duplicates = one_image_per_galaxy(found)
            paths += [str(p) for p in kept]
            left_out += problems + duplicates + skipped
        else:
            paths.append(str(item))
    return paths, left_out


def encode(model, files, batch_size: int = 256, progress: bool = True) -> pd.DataFrame:
    """The latents table of image files: a file, a folder or a list of either (str or Path). Files that
    cannot be used, and what a folder's search left out, are listed in ``table.attrs["skipped"]`` as
    (path, reason); a path that does not exist raises EncodeInputError (one line)."""
    from .features import encode_arrays, encode_pose_arrays
    from .similarity import load_images_uint8

    paths, left_out = _image_paths(files)
    images, ok, errors = load_images_uint8(paths, model.config.image_size, progress, model.config.framing)
    skipped = left_out + list(zip([p for p, good in zip(paths, ok) if not good], errors))
    if not ok.any():
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise EncodeInputError(f"{files}: no usable image to encode{first}")
    device = next(model.parameters()).device
    mu, logvar = encode_arrays(model, images[ok], device, batch_size=batch_size, progress=progress)
    pose = encode_pose_arrays(model, images[ok], device, batch_size)
    kept = [p for p, good in zip(paths, ok) if good]
    table = latents_table(mu, logvar, kept, getattr(model, "checkpoint_sha256", "unknown"), image_positions(kept),
                          pose)
    table.attrs["skipped"] = skipped
    return table
