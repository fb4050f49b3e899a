"""Interrupted training resumes where it stopped; checkpoints are never half-written or half-read.

- a run killed with SIGKILL during epoch 2 resumes with --resume from the epoch-1 checkpoint and ends
  where an uninterrupted run with the same seed ends;
- 2 epochs, then --resume to 4 epochs, equals 4 epochs straight; a temporary file left by an
  interrupted save beside the checkpoint is never loaded;
- a truncated or garbage checkpoint.pt gives a one-line error naming the file;
- a NaN loss stops training with a message, and the last good checkpoint stays as it was.

Tolerance: the runs do the same float32 operations in the same order on one thread each (every epoch
derives shuffling, augmentation and noise from (seed, epoch) alone), so the weights are expected to
be identical; we allow 1e-6 for library kernels that might pick another summation order.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import Galaxy_VAE_n
from VAE_model import training
from VAE_model.runtime import CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WEIGHT_ATOL = 1e-6
ARGS = ["--image-size", "64", "--batch-size", "8", "--lr", "1e-3", "--latent-dim", "8", "--quiet", "--device", "cpu",
        "--seed", "5"]


@pytest.fixture(autouse=True)
def one_thread():
    """In-process runs on one thread, like the subprocesses (OMP_NUM_THREADS=1), for equal numerics."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images200(tmp_path_factory):
    """An image list of 200 fake 64 px cutouts (23 steps of 8 per epoch) and its decode-once cache."""
    from conftest import make_cutouts

    root = tmp_path_factory.mktemp("resume")
    paths = make_cutouts(root / "images", 200, 64, seed=1)
    image_list = root / "images.txt"
    image_list.write_text("".join(f"{p}\n" for p in paths))
    from VAE_model.data import image_cache

    image_cache(image_list, 64, root / "cache", workers=1, progress=False)   # built once, copied into each run
    return root


def new_run(root: Path, name: str) -> Path:
    """A run directory whose cache is a copy of the shared one (same image list: no rebuild)."""
    run = root / name
    shutil.copytree(root / "cache", run / "cache")
    return run


def train(run: Path, root: Path, *extra: str) -> int:
    return Galaxy_VAE_n.main(["--run", str(run), "--image-list", str(root / "images.txt"), *ARGS, *extra])


@pytest.fixture(scope="module")
def uninterrupted(images200):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = new_run(images200, "uninterrupted")
    try:
        assert train(run, images200, "--epochs", "4") == 0
    finally:
        torch.set_num_threads(threads)
    return load_checkpoint(run / "checkpoint.pt")


def assert_same_weights(state: dict, reference: dict) -> None:
    assert state["epoch"] == reference["epoch"]
    for name, weight in reference["model"].items():
        difference = (state["model"][name] - weight).abs().max().item()
        assert difference <= WEIGHT_ATOL, f"{name}: resumed weights differ by {difference:.2e}"
    assert [row["train_loss"] for row in state["history"]] == pytest.approx(
        [row["train_loss"] for row in reference["history"]], rel=1e-6)


def test_sigkill_during_epoch_2_then_resume_ends_like_uninterrupted_run(images200, uninterrupted, capsys):
    run = new_run(images200, "killed")
    command = [sys.executable, str(ROOT / "Galaxy_VAE_n.py"), "--run", str(run), "--image-list",
               str(images200 / "images.txt"), *ARGS, "--epochs", "4"]
    process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists():                  # epoch 1 finished and saved
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.005)
    time.sleep(0.1)                                              # into epoch 2 (23 steps, >= 0.3 s)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    state = load_checkpoint(run / "checkpoint.pt")              # complete: saves are atomic
    assert state["epoch"] == 1, "the kill should land in epoch 2"
    assert train(run, images200, "--epochs", "4", "--resume") == 0
    assert "resumed from" in capsys.readouterr().out
    assert_same_weights(load_checkpoint(run / "checkpoint.pt"), uninterrupted)


def test_resume_after_two_epochs_ends_like_four_straight_and_ignores_temporary_files(images200, uninterrupted):
    run = new_run(images200, "two_plus_two")
    assert train(run, images200, "--epochs", "2") == 0
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 2
    # what a save killed half-way leaves behind (atomic_torch_save writes .<name>.<pid>.tmp, then renames)
    (run / ".checkpoint.pt.99999.tmp").write_bytes(b"PK\x03\x04 half of a checkpoint")
    assert train(run, images200, "--epochs", "4", "--resume") == 0
    assert_same_weights(load_checkpoint(run / "checkpoint.pt"), uninterrupted)


def test_resume_with_only_a_temporary_file_starts_from_scratch(tiny_run, capsys):
    (tiny_run / ".checkpoint.pt.12345.tmp").write_bytes(b"garbage")
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", "--resume", *ARGS]) == 0
    assert "no checkpoint" in capsys.readouterr().out
    assert load_checkpoint(tiny_run / "checkpoint.pt")["epoch"] == 1


def test_garbage_or_truncated_checkpoint_gives_an_error_naming_the_file(tiny_run, uninterrupted, tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(1000))
    truncated = tmp_path / "truncated.pt"
    torch.save(uninterrupted, truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path in (garbage, truncated, empty):
        with pytest.raises(CheckpointError, match=path.name):
            load_checkpoint(path)
    not_ours = tmp_path / "not_ours.pt"
    torch.save({"weights": torch.zeros(3)}, not_ours)
    with pytest.raises(CheckpointError, match="not_ours.pt"):
        load_checkpoint(not_ours)

    (tiny_run / "checkpoint.pt").write_bytes(truncated.read_bytes())
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "2", "--resume", *ARGS]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "checkpoint.pt" in err and "Traceback" not in err


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_run, monkeypatch, capsys):
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", *ARGS]) == 0
    saved = {name: hashlib.sha1((tiny_run / name).read_bytes()).hexdigest() for name in ("checkpoint.pt", "best.pt")}

    real_loss, calls = training.vae_loss, []

    def loss_nan_at_third_step(*args, **kwargs):
        loss, mse, kl = real_loss(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), mse, kl

    monkeypatch.setattr(training, "vae_loss", loss_nan_at_third_step)
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "3", "--resume", *ARGS]) == 1
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "epoch 2 step 2" in err and "Traceback" not in err
    for name, digest in saved.items():           # two optimizer steps ran in memory, nothing was saved
        assert hashlib.sha1((tiny_run / name).read_bytes()).hexdigest() == digest, name
    state = load_checkpoint(tiny_run / "checkpoint.pt")
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert all(torch.isfinite(weight).all() for weight in state["model"].values())
