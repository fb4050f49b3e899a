"""Every result traceable to current inputs: the silent-wrong-result cases of issue 10, one test each.

Each test failed on the code before provenance (the stage used the stale file without a word);
now the stage refuses with one line naming the out-of-date file and the stage to re-run.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import blob_image, one_error_line

import Galaxy_VAE_n
from analysis import decals_2_2, decals_4, decals_6
from VAE_model import provenance, runfiles
from VAE_model.data import image_cache, write_train_list
from VAE_model.errors import RunLockedError
from VAE_model.imageio import ImageError, write_fits_cutout
from VAE_model.runtime import run_lock

TRAIN = ["--device", "cpu", "--image-size", "64", "--batch-size", "16", "--lr", "1e-3", "--latent-dim", "4",
         "--epochs", "1", "--quiet"]


@pytest.fixture
def trained(tiny_run):
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), *TRAIN]) == 0
    assert decals_2_2.main(["--run", str(tiny_run), "--device", "cpu", "--skip-classes", "--quiet"]) == 0
    return tiny_run


def test_cache_decodes_a_replaced_cutout_again_and_names_a_deleted_one(tiny_run):
    paths = (tiny_run / runfiles.TRAIN_TXT).read_text().split()
    first = np.array(image_cache(tiny_run / runfiles.TRAIN_TXT, 64, tiny_run / runfiles.CACHE_DIR, progress=False)[3])
    # same name, other galaxy: the cache must not serve the old pixels
    write_fits_cutout(paths[3], blob_image(np.random.default_rng(99), 64), {"RA": 1.0, "DEC": 2.0})
    os.utime(paths[3], ns=(1, 1))   # even with an old time stamp: the size/time pair changed
    again = np.array(image_cache(tiny_run / runfiles.TRAIN_TXT, 64, tiny_run / runfiles.CACHE_DIR, progress=False)[3])
    assert not np.array_equal(first, again)
    os.remove(paths[5])
    with pytest.raises(ImageError, match=re.escape(Path(paths[5]).name)):
        image_cache(tiny_run / runfiles.TRAIN_TXT, 64, tiny_run / runfiles.CACHE_DIR, progress=False)
    assert not list((tiny_run / runfiles.CACHE_DIR).rglob(".*.tmp")), "temporary cache file left behind"


def test_a_replaced_image_makes_train_txt_and_everything_after_it_out_of_date(trained, capsys):
    paths = (trained / runfiles.TRAIN_TXT).read_text().split()
    write_fits_cutout(paths[0], blob_image(np.random.default_rng(5), 64), {"RA": 1.0, "DEC": 2.0})
    assert Galaxy_VAE_n.main(["--run", str(trained), *TRAIN]) == 1
    line = one_error_line(capsys)
    assert "train.txt is out of date" in line and "make_datatxt.py" in line
    stale = dict(provenance.stale_files(trained))
    assert {runfiles.TRAIN_TXT, runfiles.BEST_CHECKPOINT} <= set(stale)


def test_latents_of_an_older_model_are_refused_after_retraining(trained, capsys):
    # retrain (another latent size) without re-running decals_2_2
    # (a later flag wins: --latent-dim 6 overrides TRAIN's 4, and TRAIN keeps its --epochs 1)
    assert Galaxy_VAE_n.main(["--run", str(trained), *TRAIN, "--latent-dim", "6"]) == 0
    capsys.readouterr()
    assert decals_4.main(["--run", str(trained), "--mock-dir", "none", "--quiet"]) == 1
    line = one_error_line(capsys)
    assert "latents/mu.npy is out of date" in line and "best.pt" in line and "decals_2_2.py" in line
    name = (trained / runfiles.TRAIN_TXT).read_text().split()[0]
    assert decals_6.main(["--run", str(trained), "--model", "part1", "--image", name, "--quiet",
                          "--device", "cpu"]) == 1
    assert "decals_2_2.py" in one_error_line(capsys)
    assert Path(runfiles.LATENT_MU) in [Path(n) for n, _ in provenance.stale_files(trained)]


def test_resume_refuses_a_new_validation_fraction_and_keeps_args_and_split(trained, capsys):
    before = {name: (trained / name).read_text() for name in (runfiles.TRAIN_ARGS, runfiles.SPLIT_JSON)}
    assert Galaxy_VAE_n.main(["--run", str(trained), *TRAIN, "--resume", "--val-fraction", "0.3"]) == 1
    line = one_error_line(capsys)
    assert "val_fraction" in line
    assert {name: (trained / name).read_text() for name in before} == before


def test_resume_refuses_a_changed_image_list(trained, capsys):
    paths = (trained / runfiles.TRAIN_TXT).read_text().split()
    write_train_list(trained, paths[:-4], image_size=64)       # make_datatxt ran again on fewer images
    assert Galaxy_VAE_n.main(["--run", str(trained), *TRAIN, "--resume", "--epochs", "2"]) == 1
    line = one_error_line(capsys)
    assert "image list" in line and "train/validation split" in line


def test_a_second_training_in_the_same_run_directory_names_the_pid_holding_it(tiny_run, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tiny_run / ".lock"
        import socket

        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "command": "Galaxy_VAE_n.py"}))
        assert Galaxy_VAE_n.main(["--run", str(tiny_run), *TRAIN]) == 1
        line = one_error_line(capsys)
        assert f"process {holder.pid}" in line
        assert not (tiny_run / runfiles.BEST_CHECKPOINT).exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died (kill -9): its lock is taken over
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), *TRAIN]) == 0
    assert not (tiny_run / ".lock").exists()


def test_run_lock_is_exclusive_within_one_process_too(tmp_path):
    with run_lock(tmp_path):
        lock = json.loads((tmp_path / ".lock").read_text())
        assert lock["pid"] == os.getpid()
        other = subprocess.run([sys.executable, "-c", f"from VAE_model.runtime import run_lock\n"
                                f"with run_lock({str(tmp_path)!r}): pass"], capture_output=True, text=True)
        assert other.returncode != 0 and "RunLockedError" in other.stderr and str(os.getpid()) in other.stderr
    with pytest.raises(RunLockedError):
        (tmp_path / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": None}))
        with run_lock(tmp_path):
            pass


@pytest.mark.parametrize("flags, flag", [
    (["--latent-dim", "0"], "--latent-dim"), (["--latent-dim", "-3"], "--latent-dim"),
    (["--epochs", "0"], "--epochs"), (["--beta", "-1"], "--beta"), (["--beta", "calibrate"], "--beta"),
    (["--val-fraction", "1.0"], "--val-fraction"),
    (["--batch-size", "0"], "--batch-size"), (["--lr", "0"], "--lr"), (["--image-size", "100"], "--image-size")])
def test_bad_training_arguments_stop_before_any_work_naming_the_flag(tiny_run, capsys, flags, flag):
    with pytest.raises(SystemExit) as stop:
        Galaxy_VAE_n.main(["--run", str(tiny_run), *TRAIN, *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("usage:") is False and f"argument {flag}" in err[-1]
    assert not (tiny_run / runfiles.TRAIN_ARGS).exists() and not (tiny_run / runfiles.CACHE_DIR).exists()


def test_unusable_run_paths_give_one_line_and_leave_no_temporary_files(tiny_run, tmp_path, capsys):
    a_file = tmp_path / "not_a_dir"
    a_file.write_text("x")
    assert Galaxy_VAE_n.main(["--run", str(a_file), *TRAIN]) == 1
    assert "is a file, not a run directory" in one_error_line(capsys)

    (tiny_run / runfiles.BEST_CHECKPOINT).mkdir()
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), *TRAIN]) == 1
    assert "best.pt: is a directory" in one_error_line(capsys)
    assert not list(tiny_run.glob(".*.tmp")) and not list(tiny_run.glob(".best.pt.*"))

    if os.geteuid() != 0:   # root writes anywhere: the read-only case only means something for a user
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o500)
        assert Galaxy_VAE_n.main(["--run", str(read_only), *TRAIN]) == 1
        assert "not writable" in one_error_line(capsys)


def test_provenance_command_line_lists_what_is_out_of_date(trained):
    assert provenance.main(["check", str(trained), runfiles.LATENT_MU]) == 0
    paths = (trained / runfiles.TRAIN_TXT).read_text().split()
    write_fits_cutout(paths[1], blob_image(np.random.default_rng(7), 64), {"RA": 1.0, "DEC": 2.0})
    out = subprocess.run([sys.executable, "-m", "VAE_model.provenance", "stale", str(trained)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert runfiles.TRAIN_TXT in out and runfiles.BEST_CHECKPOINT in out


def test_a_folder_is_the_same_input_however_its_path_is_spelled(tiny_run, monkeypatch):
    # make_datatxt records the folder as given on the command line (often relative); a stage run
    # later checks it by its absolute path: the two must agree
    folder = tiny_run.parent / "images"
    monkeypatch.chdir(tiny_run.parent)
    paths = (tiny_run / runfiles.TRAIN_TXT).read_text().split()
    write_train_list(tiny_run, paths, 64, folder="images")
    monkeypatch.chdir(folder)
    assert provenance.problem(tiny_run, runfiles.TRAIN_TXT, "make_datatxt.py") is None
    (folder / "new.fits").write_bytes((folder / Path(paths[0]).name).read_bytes())   # a file added to the folder
    assert "image folder" in provenance.problem(tiny_run, runfiles.TRAIN_TXT, "make_datatxt.py")
