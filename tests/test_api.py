"""The Python API (VAE_model.api): load a checkpoint, encode a folder, get the latents table back."""
from __future__ import annotations

import numpy as np
import pandas as pd

import Galaxy_VAE_n
from analysis import decals_2_2
from VAE_model import runfiles
from VAE_model.api import encode, load_vae


def test_encoding_a_folder_gives_the_stage_latents_table_and_lists_bad_files(tiny_run, tmp_path):
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--device", "cpu", "--image-size", "64", "--epochs", "1",
                              "--batch-size", "16", "--latent-dim", "5", "--quiet"]) == 0
    assert decals_2_2.main(["--run", str(tiny_run), "--device", "cpu", "--skip-classes", "--quiet"]) == 0
    stage = pd.read_parquet(tiny_run / runfiles.LATENT_TABLE_PARQUET)
    folder = tiny_run.parent / "images"
    (folder / "broken.fits").write_bytes(b"SIMPLE  =                    T")   # a truncated download
    model = load_vae(tiny_run / runfiles.BEST_CHECKPOINT, device="cpu")
    table = encode(model, folder, progress=False)
    assert [p for p, _ in table.attrs["skipped"]] == [str(folder / "broken.fits")]
    assert list(table["name"]) == list(stage["name"])
    mu_columns = [c for c in stage.columns if c.startswith("mu_")]
    assert len(mu_columns) == 5 and [c for c in table.columns if c.startswith("mu_")] == mu_columns
    assert np.allclose(table[mu_columns].to_numpy(), stage[mu_columns].to_numpy(), atol=1e-5)
    assert (table["model_sha256"] == stage["model_sha256"]).all()
    # the test cutouts carry RA/DEC cards: positions come through
    assert np.allclose(table["ra"], stage["ra"]) and table["dec"].notna().all()
