"""Shared tiny test data: fake FITS cutouts written by the tests themselves (no downloads)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from VAE_model.data import write_train_list

torch.set_num_threads(2)

from VAE_model.imageio import write_fits_cutout


def blob_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A galaxy-like elliptical Gaussian blob in nanomaggies plus sky noise, (3, size, size)."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    angle, axis_ratio = rng.uniform(0, np.pi), rng.uniform(0.3, 1.0)
    sigma = rng.uniform(0.06, 0.15) * size
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / axis_ratio
    profile = np.exp(-0.5 * (u ** 2 + v ** 2) / sigma ** 2)
    colours = rng.uniform(0.5, 2.0, size=3)
    image = colours[:, None, None] * 20.0 * profile[None] + rng.normal(0, 0.01, (3, size, size))
    return image.astype(np.float32)


def make_cutouts(folder: Path, n: int, size: int = 64, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"J{i:06d}+300000.0.fits"
        write_fits_cutout(path, blob_image(rng, size), {"SURVEY": "test", "RA": 180.0 + i * 0.01, "DEC": 30.0})
        paths.append(path)
    return paths


def one_error_line(capsys) -> str:
    """The one stderr line a script printed for bad input: 'error: ...', no traceback."""
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def tiny_run(tmp_path):
    """A run directory whose train.txt lists 48 fake 64 px cutouts."""
    images = tmp_path / "images"
    paths = make_cutouts(images, 48, 64)
    run = tmp_path / "run"
    run.mkdir()
    write_train_list(run, paths)
    return run


def write_hand_made_latents(run: Path, mu: np.ndarray, paths: list[str], image_size: int) -> None:
    """Latents made by hand for a test (e.g. one dimension that tells two classes apart), written with
    an untrained best.pt and the provenance records the stages would write, so readers take them."""
    import json

    import pandas as pd

    from VAE_model import provenance, runfiles
    from VAE_model.data import image_name
    from VAE_model.models import VAE, VAEConfig
    from VAE_model.runtime import atomic_torch_save

    config = VAEConfig(latent_dim=mu.shape[1], image_size=image_size)
    atomic_torch_save({"model": VAE(config).state_dict(), "model_config": config.to_dict()}, run / runfiles.BEST_CHECKPOINT)
    runfiles.run_path(run, runfiles.LATENT_MU)
    np.save(run / runfiles.LATENT_MU, mu.astype(np.float32))
    np.save(run / runfiles.LATENT_LOGVAR, np.zeros_like(mu, dtype=np.float32))
    pd.DataFrame({"image_index": range(len(paths)), "name": [image_name(str(p)) for p in paths],
                  "path": [str(p) for p in paths]}).to_csv(run / runfiles.LATENT_NAMES, index=False)
    (run / runfiles.LATENT_CONFIG_JSON).write_text(json.dumps({
        "image_size": image_size, "latent_dim": int(mu.shape[1]),
        "checkpoint_sha256": provenance.file_digest(run / runfiles.BEST_CHECKPOINT)}))
    provenance.record(run, [runfiles.BEST_CHECKPOINT], [provenance.Input.file(run / runfiles.TRAIN_TXT)], "Galaxy_VAE_n.py")
    provenance.record(run, [runfiles.LATENT_MU, runfiles.LATENT_LOGVAR, runfiles.LATENT_NAMES, runfiles.LATENT_CONFIG_JSON],
                      [provenance.Input.file(run / runfiles.BEST_CHECKPOINT)], "analysis/decals_2_2.py")
