"""Nothing silent (issue 18, provenance and stage-contract cases): each test failed on the code before.

The stage contract (VAE_model/stage.py) records every output a stage writes with what it read; a
stage that stops (an error, a non-finite loss, Ctrl-C) says so in the record and in one line.
"""
from __future__ import annotations

import errno
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cutouts, one_error_line, write_hand_made_latents

import Galaxy_VAE_n
import make_datatxt
from analysis import decals_2_2, decals_3, decals_4
from VAE_model import provenance, runfiles
from VAE_model.errors import GalaxyVAEError, NotEnoughDataError, RunPathError
from VAE_model.readers import write_train_list

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["--device", "cpu", "--image-size", "64", "--batch-size", "8", "--lr", "1e-3", "--latent-dim", "4",
         "--epochs", "1", "--quiet"]


def small_run(tmp_path, n: int) -> Path:
    paths = make_cutouts(tmp_path / "images", n, 64)
    run = tmp_path / "run"
    run.mkdir()
    write_train_list(run, paths, image_size=64)
    return run


# ----------------------------------------------------------------------------- case 1
def test_training_on_one_image_is_refused_naming_the_counts(tmp_path, capsys):
    run = small_run(tmp_path, 1)
    assert Galaxy_VAE_n.main(["--run", str(run), *TRAIN]) == 1
    line = one_error_line(capsys)
    assert "1 image(s)" in line and "1 held out" in line and "0 to train on" in line
    assert not (run / runfiles.BEST_CHECKPOINT).exists() and not (run / runfiles.CACHE_DIR).exists()


# ----------------------------------------------------------------------------- case 9
def test_pair_metrics_refuse_too_few_test_pairs_and_json_never_holds_nan(tmp_path):
    from VAE_model.adaptation import MIN_TEST_PAIRS, pair_metrics
    from VAE_model.files import write_json

    rng = np.random.default_rng(0)
    mu = rng.normal(size=(12, 4))
    split = np.array(["train"] * 11 + ["test"])
    with pytest.raises(NotEnoughDataError, match="1 test pair"):
        pair_metrics(mu, mu, split)
    split = np.array(["train"] * (12 - MIN_TEST_PAIRS) + ["test"] * MIN_TEST_PAIRS)
    metrics = pair_metrics(mu, mu + 0.01, split)          # no labels: no RF score
    write_json(metrics, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and json.loads(text)["classification"]["mean_accuracy_decals"] is None


# ----------------------------------------------------------------------------- case 11
def test_provenance_stale_on_a_missing_run_is_one_line_and_fails(tmp_path):
    result = subprocess.run([sys.executable, "-m", "VAE_model.provenance", "stale", str(tmp_path / "no_such_run")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'no_such_run'}: no such run directory"]


# ----------------------------------------------------------------------------- case 15
def test_latent_extraction_waits_for_no_training_it_refuses_while_the_run_is_locked(tmp_path, capsys):
    import socket

    run = small_run(tmp_path, 4)
    # a live process (this test's parent) holds the run's lock, as Galaxy_VAE_n.py does while training
    (run / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                           "command": "Galaxy_VAE_n.py"}))
    assert decals_2_2.main(["--run", str(run), "--device", "cpu", "--skip-classes", "--quiet"]) == 1
    assert f"in use by process {os.getppid()}" in one_error_line(capsys)
    assert not (run / runfiles.LATENT_MU).exists()


# ----------------------------------------------------------------------------- case 17
def test_a_run_stopped_by_a_nan_loss_is_named_as_such_not_as_an_edit_by_hand(tmp_path, monkeypatch, capsys):
    from VAE_model import training

    run = small_run(tmp_path, 4)
    assert Galaxy_VAE_n.main(["--run", str(run), *TRAIN]) == 0
    real_loss = training.vae_loss
    monkeypatch.setattr(training, "vae_loss", lambda *a, **k: tuple(v * float("nan") for v in real_loss(*a, **k)))
    assert Galaxy_VAE_n.main(["--run", str(run), *TRAIN, "--beta", "0.5"]) == 1
    assert "non-finite loss" in one_error_line(capsys)
    stale = dict(provenance.stale_files(run))
    assert runfiles.TRAIN_ARGS in stale
    assert "did not finish" in stale[runfiles.TRAIN_ARGS] and "non-finite loss" in stale[runfiles.TRAIN_ARGS]
    assert not any("edit by hand" in reason for reason in stale.values())


def test_provenance_check_of_a_missing_file_gives_the_true_reason(tmp_path, capsys):
    run = small_run(tmp_path, 2)
    assert provenance.main(["check", str(run), runfiles.LATENT_MU]) == 1
    out = capsys.readouterr().out
    assert "its stage" not in out and "no stage has written it" in out
    (run / runfiles.TRAIN_TXT).unlink()      # written and recorded, then deleted
    assert provenance.main(["check", str(run), runfiles.TRAIN_TXT]) == 1
    out = capsys.readouterr().out
    assert "deleted since" in out and "make_datatxt.py" in out


# ----------------------------------------------------------------------------- tracebacks -> one line
def test_ctrl_c_during_training_stops_with_one_line_saying_how_to_resume(tmp_path, monkeypatch, capsys):
    from VAE_model import training

    run = small_run(tmp_path, 4)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_one_epoch", interrupted)
    assert Galaxy_VAE_n.main(["--run", str(run), *TRAIN, "--epochs", "3"]) == 130
    line = one_error_line(capsys)
    assert "interrupted (Ctrl-C)" in line and "--resume" in line
    assert not (run / ".lock").exists()
    # what the stopped run wrote is marked as such, so no later stage takes it for a finished run
    reason = provenance.problem(run, runfiles.TRAIN_ARGS, "Galaxy_VAE_n.py")
    assert "did not finish (interrupted (Ctrl-C); continue with the same command and --resume" in reason


def test_ctrl_c_during_the_mock_render_is_one_line(tmp_path, monkeypatch, capsys):
    import VAE_model.mock as mock

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mock, "build_mock_survey", interrupted)
    code = make_datatxt.main(["--mock", "10", "--mock-dir", str(tmp_path / "mock"), "--image-size", "64",
                              "--run", str(tmp_path / "run"), "--quiet"])
    assert code == 130
    line = one_error_line(capsys)
    assert "mock survey render" in line and "interrupted" in line


def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import torch

    from VAE_model.runtime import atomic_torch_save

    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"epoch": 1}, path)

    def disk_full(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(RunPathError, match="checkpoint.pt: cannot write \\(no space left on the disk"):
        atomic_torch_save({"epoch": 2}, path)

    def writer_failed(obj, handle):   # torch's own zip writer reports a failed write as a RuntimeError
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0\n"
                           "PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", writer_failed)
    monkeypatch.setattr("shutil.disk_usage", lambda path: type("usage", (), {"free": 0})())
    with pytest.raises(RunPathError, match="checkpoint.pt: cannot write \\(no space left on the disk"):
        atomic_torch_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_maps_of_three_galaxies_refuse_umap_in_one_line(tmp_path, capsys):
    run = small_run(tmp_path, 3)
    paths = (run / runfiles.TRAIN_TXT).read_text().split()
    write_hand_made_latents(run, np.random.default_rng(0).normal(size=(3, 4)), paths, 64)
    assert decals_3.main(["--run", str(run), "--methods", "pca,umap", "--thumbnails", "0"]) == 1
    line = one_error_line(capsys)
    assert "3 galaxies" in line and "UMAP" in line and "at least 4" in line


def test_outliers_of_one_galaxy_are_refused_in_one_line(tmp_path, capsys):
    run = small_run(tmp_path, 1)
    paths = (run / runfiles.TRAIN_TXT).read_text().split()
    write_hand_made_latents(run, np.zeros((1, 4)), paths, 64)
    assert decals_4.main(["--run", str(run), "--mock-dir", "none", "--quiet", "--device", "cpu"]) == 1
    line = one_error_line(capsys)
    assert "1 galaxy" in line and "at least 3" in line


def test_every_expected_error_is_a_galaxy_vae_error():
    from analysis.decals_2_1 import MatchError
    from VAE_model.classify import NotEnoughClassesError

    assert issubclass(MatchError, GalaxyVAEError) and issubclass(NotEnoughClassesError, GalaxyVAEError)


def test_every_script_main_is_wrapped_by_cli_main():
    from test_cli_help import SCRIPTS

    for script in SCRIPTS:
        text = (ROOT / script).read_text()
        if "def main(" in text and not script.startswith("VAE_model/"):
            # cli_main outermost; other decorators (a per-stage memo) may sit between it and main
            assert re.search(r"@cli_main\n(@[^\n]+\n)*def main\(", text), f"{script}: main is not wrapped by cli_main"


# ----------------------------------------------------------------------------- imports
def test_flags_provenance_and_the_catalog_stages_do_not_import_torch():
    code = ("import sys, importlib.util\n"
            "import VAE_model.cli_args, VAE_model.files, VAE_model.provenance, VAE_model.readers, VAE_model.stage\n"
            "for path in ('make_datatxt.py', 'analysis/decals_1.py', 'analysis/decals_2_1.py'):\n"
            "    spec = importlib.util.spec_from_file_location('m', path)\n"
            "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "print(sorted(m for m in ('torch', 'VAE_model.data') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"      # no torch, and provenance no longer pulls in data.py


def test_each_stage_depends_on_the_modules_it_uses_not_on_all_of_them():
    from VAE_model.deps import module_files

    training = module_files(ROOT / "Galaxy_VAE_n.py")
    assert "VAE_model/training.py" in training and "VAE_model/models.py" in training
    assert "VAE_model/explorer.py" not in training and "VAE_model/similarity.py" not in training
    assert "VAE_model/explorer.py" in module_files(ROOT / "analysis/explore.py")
    catalog = module_files(ROOT / "analysis/decals_1.py")
    assert "VAE_model/models.py" not in catalog and "VAE_model/morph_classes.py" in catalog
    makefile = (ROOT / "Makefile").read_text()
    assert "$(PKG)" not in makefile and "Galaxy_VAE_n.py $(call uses,Galaxy_VAE_n.py)" in makefile


# ----------------------------------------------------------------------------- the stage contract
def unrecorded_outputs(run: Path) -> list[str]:
    """Files of a run without a current provenance record (caches, records, locks and the Makefile's
    settings files are not results)."""
    missing = []
    for path in sorted(run.rglob("*")):
        name = path.relative_to(run)
        if not path.is_file() or name.parts[0] in (runfiles.CACHE_DIR, provenance.RECORD_DIR) or \
                any(part.startswith(".") for part in name.parts):
            continue
        saved = provenance.read_record(run, str(name))
        reason = provenance.problem(run, str(name), saved["stage"] if saved else "?")
        if reason is not None:
            missing.append(reason)
    return missing


def test_every_file_of_a_finished_tiny_run_has_a_current_provenance_record(tmp_path, capsys):
    make_cutouts(tmp_path / "images", 8, 64)
    run = tmp_path / "run"
    assert make_datatxt.main(["--images", str(tmp_path / "images"), "--image-size", "64", "--run", str(run),
                              "--quiet", "--workers", "1"]) == 0
    assert Galaxy_VAE_n.main(["--run", str(run), *TRAIN]) == 0
    assert decals_2_2.main(["--run", str(run), "--device", "cpu", "--skip-classes", "--quiet"]) == 0
    assert decals_3.main(["--run", str(run), "--methods", "pca", "--thumbnails", "4"]) == 0
    assert decals_4.main(["--run", str(run), "--mock-dir", "none", "--quiet", "--device", "cpu", "--n-estimators", "20",
                          "--top", "4"]) == 0
    assert unrecorded_outputs(run) == []
    assert (run / "maps" / "pca.png").is_file() and provenance.read_record(run, "maps/pca.png")["stage"] == "analysis/decals_3.py"
