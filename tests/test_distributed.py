"""Distributed runs give the one-process result (CPU, gloo backend).

- torchrun with 2 processes trains to the same weights and loss history as 1 process with the
  same seed (every process walks the same global batches and takes its slice).
- latent extraction sharded over 2 processes returns the 1-process latents.

Tolerances: the two runs add the same numbers in a different order (a gradient is summed per slice
and then averaged by all-reduce), so float32 results differ in the last bits. Adam divides each
gradient by its own running RMS, which can turn such noise into an update difference of order lr
for a weight whose gradient is near zero; measured: max |weight difference| ~1e-6 after 6 steps at
lr 1e-3. We accept 1e-4 (a tenth of one Adam step); the bug this guards against (slices of unequal
size averaged with equal weight) gave 2e-3. Losses: relative 1e-5.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from VAE_model.data import write_train_list
from VAE_model.features import encode_arrays
from VAE_model.models import VAE, VAEConfig
from VAE_model.runtime import DistInfo, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WEIGHT_ATOL = 1e-4
LOSS_RTOL = 1e-5
# tiny_run holds 48 images -> 43 for training. Batch 21 gives global batches of 21, 21 and 1:
# the 2 processes get slices of 11 and 10 images, and in the last batch one of them gets none.
TRAIN = ["--image-size", "64", "--epochs", "2", "--batch-size", "21", "--lr", "1e-3", "--latent-dim", "8",
         "--quiet", "--device", "cpu", "--seed", "3"]


def subprocess_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(process: subprocess.Popen, timeout: float = 150) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        output, _ = process.communicate()
        raise AssertionError(f"timed out after {timeout} s:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]
    return output


def test_torchrun_two_processes_train_like_one(tiny_run):
    one = tiny_run.parent / "one_process"
    one.mkdir()
    write_train_list(one, (tiny_run / "train.txt").read_text().split())
    script = str(ROOT / "Galaxy_VAE_n.py")
    # --run-dir: torchrun's own --run-path would make a bare --run ambiguous
    two_processes = start([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           script, "--run-dir", str(tiny_run), *TRAIN])
    one_process = start([sys.executable, script, "--run", str(one), *TRAIN])
    log_two, log_one = finish(two_processes), finish(one_process)
    assert "2 process(es)" in log_two and "1 process(es)" in log_one

    state_two, state_one = load_checkpoint(tiny_run / "checkpoint.pt"), load_checkpoint(one / "checkpoint.pt")
    assert state_two["args"]["world_size"] == 2 and state_one["args"]["world_size"] == 1
    assert state_two["epoch"] == state_one["epoch"] == 2
    for name, weight in state_one["model"].items():
        difference = (state_two["model"][name] - weight).abs().max().item()
        assert difference < WEIGHT_ATOL, f"{name}: 2-process weights differ by {difference:.2e}"
    assert any((state_one["model"][n] - w).abs().max() > 1e-3 for n, w in VAE(VAEConfig(8, 64)).state_dict().items()), \
        "training did not move the weights"
    for row_two, row_one in zip(state_two["history"], state_one["history"], strict=True):
        for key in ("train_loss", "train_mse_sum", "train_kl", "val_loss", "val_mse_sum", "val_kl"):
            assert np.isclose(row_two[key], row_one[key], rtol=LOSS_RTOL, atol=0), (key, row_two[key], row_one[key])


def _encode_worker(rank: int, world_size: int, init_file: str, folder: str) -> None:
    """One process of the sharded extraction (run by torch.multiprocessing.spawn)."""
    import torch.distributed as tdist

    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = VAE(VAEConfig(latent_dim=8, image_size=64))
        model.load_state_dict(torch.load(Path(folder) / "weights.pt"))
        images = np.load(Path(folder) / "images.npy", mmap_mode="r")
        mu, logvar = encode_arrays(model, images, torch.device("cpu"), batch_size=7,
                                   dist=DistInfo(rank=rank, world_size=world_size))
        np.save(Path(folder) / f"mu_{rank}.npy", mu)
        np.save(Path(folder) / f"logvar_{rank}.npy", logvar)
    finally:
        tdist.destroy_process_group()


def test_sharded_latent_extraction_matches_one_process(tmp_path):
    import torch.multiprocessing as mp

    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=8, image_size=64))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    # 22 images in batches of 7: 7, 7, 7, 1 -> uneven slices, and an empty slice in the last batch
    images = np.random.default_rng(0).integers(0, 256, (22, 3, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    mu_one, logvar_one = encode_arrays(model, images, torch.device("cpu"), batch_size=7)

    old_threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"          # inherited by the spawned processes
    try:
        mp.spawn(_encode_worker, args=(2, str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True)
    finally:
        if old_threads is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = old_threads
    for rank in (0, 1):   # every process ends with all the rows (all_reduce), equal to one process's
        mu, logvar = np.load(tmp_path / f"mu_{rank}.npy"), np.load(tmp_path / f"logvar_{rank}.npy")
        assert mu.shape == (22, 8) and np.all(np.abs(mu).sum(axis=1) > 0)
        np.testing.assert_allclose(mu, mu_one, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(logvar, logvar_one, rtol=1e-5, atol=1e-5)
