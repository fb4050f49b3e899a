"""Training on a tiny set: the loss falls, outputs are written, a bad image stops with its name."""
import json

import numpy as np
import torch

import Galaxy_VAE_n
from VAE_model.data import write_train_list
from VAE_model.imageio import write_fits_cutout
from VAE_model.runtime import load_checkpoint, load_model

TINY = ["--image-size", "64", "--batch-size", "16", "--lr", "1e-3", "--latent-dim", "8", "--quiet", "--device", "cpu"]


def test_loss_falls_and_outputs_are_written(tiny_run):
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "4", *TINY]) == 0
    state = load_checkpoint(tiny_run / "checkpoint.pt")
    history = state["history"]
    assert len(history) == 4 and state["epoch"] == 4
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    for name in ("best.pt", "loss_history.csv", "loss_history.png", "reconstructions.png", "args.json", "split.json"):
        assert (tiny_run / name).exists(), name
    args = json.loads((tiny_run / "args.json").read_text())
    assert args["seed"] == 0 and args["latent_dim"] == 8 and "git_commit" in args
    split = json.loads((tiny_run / "split.json").read_text())
    assert not set(split["train"]) & set(split["val"]) and len(split["train"]) + len(split["val"]) == 48
    model = load_model(tiny_run / "best.pt")          # rebuilt from the checkpoint alone
    assert model.config.latent_dim == 8 and model.config.image_size == 64
    assert torch.isfinite(model(torch.rand(1, 3, 64, 64))[0]).all()


def test_bad_image_in_train_txt_stops_with_its_name(tiny_run, capsys):
    # a listed cutout truncated after the list was made (a NaN pixel is no longer an error: it is filled)
    bad = tiny_run.parent / "images" / "bad.fits"
    write_fits_cutout(bad, np.ones((3, 64, 64), np.float32), {})
    paths = (tiny_run / "train.txt").read_text().split()
    write_train_list(tiny_run, [*paths, str(bad)])
    bad.write_bytes(bad.read_bytes()[:4000])
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", *TINY]) == 1
    err = capsys.readouterr().err
    assert "train.txt is out of date" in err      # the list's images changed since it was made
    write_train_list(tiny_run, [*paths, str(bad)])   # listed again as it is now: the build names the file
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", *TINY]) == 1
    err = capsys.readouterr().err
    assert "bad.fits" in err and "truncated" in err
    assert not (tiny_run / "checkpoint.pt").exists()


def test_missing_train_txt_says_which_stage_to_run(tmp_path, capsys):
    assert Galaxy_VAE_n.main(["--run", str(tmp_path), "--epochs", "1", *TINY]) == 1
    assert "make_datatxt.py" in capsys.readouterr().err


def test_resume_with_other_settings_is_refused(tiny_run, capsys):
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", *TINY]) == 0
    changed = [a if a != "1e-3" else "5e-4" for a in TINY]
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "2", "--resume", *changed]) == 1
    err = capsys.readouterr().err
    assert "trained with other lr" in err and "checkpoint.pt" in err


def test_cache_is_reused_whether_the_list_is_named_by_relative_or_absolute_path(tiny_run, monkeypatch):
    from VAE_model.data import image_cache

    first = image_cache(tiny_run / "train.txt", 64, tiny_run / "cache", progress=False)
    stamp = (tiny_run / "cache" / "train_64px" / "meta.json").stat().st_mtime_ns
    monkeypatch.chdir(tiny_run.parent)
    again = image_cache("run/train.txt", 64, "run/cache", progress=False)
    assert (tiny_run / "cache" / "train_64px" / "meta.json").stat().st_mtime_ns == stamp
    assert np.array_equal(first, again)


def test_calibrated_beta_is_recorded_and_fine_tuning_takes_it_from_the_checkpoint(tiny_run):
    from VAE_model.adaptation.training import part1_training_setting

    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", "--beta", "calibrated", *TINY]) == 0
    assert load_checkpoint(tiny_run / "checkpoint.pt")["settings"]["beta"] == "calibrated"
    assert json.loads((tiny_run / "args.json").read_text())["beta"] == "calibrated"
    assert part1_training_setting(tiny_run / "best.pt", "beta", 1.0) == "calibrated"
    assert np.isfinite(load_checkpoint(tiny_run / "checkpoint.pt")["history"][0]["val_loss"])


def test_pool_views_encodes_the_four_views_in_training_and_is_recorded(tiny_run, monkeypatch, capsys):
    from VAE_model.models import VAE

    seen = []
    forward = VAE.forward

    def spy(self, images, noise=None, views=None):
        if self.training:
            seen.append(views)
        return forward(self, images, noise, views)

    monkeypatch.setattr(VAE, "forward", spy)
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", "--pose", "moments", *TINY]) == 0
    assert seen and all(v is not None for v in seen)          # default: one drawn view per galaxy
    seen.clear()
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "2", "--pose", "moments", "--resume", "--pool-views",
                              *TINY]) == 1
    assert "pool_views" in capsys.readouterr().err             # a resumed run keeps its training views
    assert Galaxy_VAE_n.main(["--run", str(tiny_run), "--epochs", "1", "--pose", "moments", "--pool-views", *TINY]) == 0
    assert seen and all(v is None for v in seen)              # the four views pooled, as encoding does
    assert load_checkpoint(tiny_run / "checkpoint.pt")["settings"]["pool_views"] is True
    assert json.loads((tiny_run / "args.json").read_text())["pool_views"] is True
