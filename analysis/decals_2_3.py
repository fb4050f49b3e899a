"""Part I, step 2.3: how large must the latent vector be? Train one VAE per latent size and compare.

The study runs BEFORE the main model (Galaxy_VAE_n.py --latent-dim auto takes its choice from
RUN/latent_size/latent_size.json). For every size k in --latent-sizes a VAE is trained in its own
sub-run RUN/latent_size/z<k>/ on the same decode-once cache and the same training/validation
split the main run uses: RUN/split.json when the main run exists, else the split Galaxy_VAE_n.py
will make (data.split_indices with the same --seed and --val-fraction). Settings (architecture,
epochs, batch size, learning rate, image size, beta, augmentation, validation fraction): flags,
else the main run's RUN/args.json when there is one, else the defaults of the VAEConfig and
TrainSettings dataclasses, the same source Galaxy_VAE_n.py takes its defaults from; channels-last
as in Galaxy_VAE_n.py. A sub-run whose checkpoint already holds the requested epochs is reused, a
shorter one is resumed (training.fit, resume=True). Each model (its best.pt, best validation
loss) is then measured on the held-out galaxies:

    val_mse_per_pixel   mean over validation images of the per-pixel MSE (stretched [0, 1] units)
    val_ssim            mean SSIM of the 3-band images (Wang et al. 2004 settings: Gaussian window
                        sigma 1.5, VAE_model.metrics), on at most --ssim-max evenly spaced validation galaxies
    rf_accuracy         mean over class questions of the 5-fold cross-validated random-forest accuracy
                        on the latents (mu) of the galaxies in RUN/selection/class_index.csv
                        (VAE_model.classify.score_table); skipped with a note when the class
                        index or the classifier module is absent

Rule for the chosen size (VAE_model.latent_size, where the reasons are given): two knees,
    MSE knee  the smallest size whose validation MSE per pixel is within --tolerance (a fraction: 0.05 = 5%)
              of the best MSE of the sweep
    RF knee   the smallest size whose mean random-forest accuracy is within --rf-tolerance (0.01,
              one point) of the best accuracy of the sweep
and the chosen size is the smallest size that passes both tests (the MSE test alone when the
accuracy is not measured). Reconstruction alone can flatten before the morphology information in
the latents does; the latents exist for the downstream stages, so both have a say.

READS   RUN/train.txt, RUN/cache (built if absent), RUN/split.json and RUN/args.json (Galaxy_VAE_n.py; optional)
        RUN/selection/class_index.csv (analysis/decals_2_1.py; optional)
WRITES  RUN/latent_size/z<k>/         checkpoint.pt, best.pt, loss_history.csv, args.json per size
        RUN/latent_size/latent_size.csv   latent_dim, val_mse_per_pixel, val_ssim, rf_accuracy, epochs, seed, ...
        RUN/latent_size/latent_size.png   the three measures against latent size, chosen size marked
        RUN/latent_size/latent_size.json  chosen size, both knees, the rule, the split, per-question
                                          accuracies, configuration (read by Galaxy_VAE_n.py --latent-dim auto)
        RUN/latent_size/reconstructions_by_size.png   the galaxies below, input and each model's reconstruction
        RUN/latent_size/reconstructions.npz   the same validation galaxies reconstructed by every model:
                                          originals (n,3,S,S), recon_<k> (n,3,S,S), names, image_index,
                                          latent_sizes   (for outliers/visualization.ipynb)

    python analysis/decals_2_3.py --run runs/demo
    python analysis/decals_2_3.py --run runs/demo --latent-sizes 4,8,16,32,64 --epochs 20 --image-size 64   # demo
    python Galaxy_VAE_n.py --run runs/demo --latent-dim auto ...                # then the main model
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from VAE_model.cli_args import (add_amp_argument, add_quiet_argument, add_runtime_arguments, cli_main, comma_list,
                                describe_args, kl_weight, non_negative_float)
from VAE_model.config import ARCHITECTURES, LEGACY_ARCH, POSE_MODES, TrainSettings, VAEConfig, kl_weight_value
from VAE_model.latent_size import MSE_TOLERANCE, RF_TOLERANCE

DEFAULT_LATENT_SIZES = "8,16,24,32,40,64"
# the reference defaults, used when the main run left no args.json: from the dataclasses that
# Galaxy_VAE_n.py takes its defaults from (one source)
_MODEL, _TRAIN = VAEConfig(), TrainSettings()
TRAINING_DEFAULTS = {"arch": _MODEL.arch, "pose": _MODEL.pose, "image_size": _MODEL.image_size, "epochs": _TRAIN.epochs,
                     "batch_size": _TRAIN.batch_size, "lr": _TRAIN.lr, "beta": _TRAIN.beta, "augment": _TRAIN.augment,
                     "val_fraction": _TRAIN.val_fraction, "pool_views": _TRAIN.pool_views}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--latent-sizes", default=DEFAULT_LATENT_SIZES,
                        help="comma-separated latent sizes to train (default: %(default)s)")
    parser.add_argument("--tolerance", type=non_negative_float, default=MSE_TOLERANCE,
                        help="MSE knee: fraction above the best validation MSE counted as levelled off "
                             "(0.05 = 5%%; default: %(default)s)")
    parser.add_argument("--rf-tolerance", type=float, default=RF_TOLERANCE,
                        help="RF knee: accuracy below the best (0.01 = one point) counted as levelled off (default: %(default)s)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default=None, help="decoder (default: the main run's, else VAEConfig's)")
    parser.add_argument("--pose", choices=POSE_MODES, default=None,
                        help="pose separation (see Galaxy_VAE_n.py --pose) (default: the main run's, else VAEConfig's)")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help=f"held-out fraction when there is no RUN/split.json yet (default: the main run's, else "
             f"{TRAINING_DEFAULTS['val_fraction']})")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per model (default: the main run's)")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the main run's)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the main run's)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image side in px, divisible by 64 (default: the main run's args.json or checkpoint.pt)")
    parser.add_argument("--beta", type=kl_weight, default=None,
                        help="weight of the KL term, or 'calibrated' (default: the main run's)")
    parser.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                        help="disable random flips/rotations (default: as the main run)")
    parser.add_argument("--pool-views", action="store_const", const=True, default=None,
                        help="pose-separated VAE: the four views pooled in training (default: as the main run)")
    parser.add_argument("--folds", type=int, default=5,
                        help="cross-validation folds of the classification score (default: %(default)s)")
    parser.add_argument("--questions", default=None,
                        help="comma list of the class_index.csv questions the classification score averages "
                             "(default: all; each costs a 5-fold forest per latent size)")
    parser.add_argument("--ssim-max", type=int, default=2000,
                        help="validation galaxies (evenly spaced) used for SSIM; MSE uses all (default: %(default)s)")
    parser.add_argument("--n-show", type=int, default=8,
                        help="validation galaxies saved in reconstructions.npz (default: %(default)s)")
    add_amp_argument(parser)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers on CUDA (default: %(default)s)")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import readers, runfiles
from VAE_model.data import DataError, image_cache, image_name, split_indices
from VAE_model.features import encode_arrays, reconstruct_arrays
from VAE_model.latent_size import choose_latent_size
from VAE_model.metrics import reconstruction_metrics
from VAE_model.plots import save_image_grid
from VAE_model.runtime import load_checkpoint, load_model, pick_device, pick_precision, seed_everything, write_json
from VAE_model.stage import Stage
from VAE_model.training import fit, settings_mismatch


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"--latent-sizes {text!r}: expected comma-separated integers") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--latent-sizes {text!r}: need at least one size >= 1")
    return sizes


def main_run_settings(run: str | Path, args: argparse.Namespace) -> dict:
    """Training settings of the sweep: flags, else the main run's args.json, else (image size)
    make_datatxt.py's summary, else the dataclass defaults. Returns the dict, with where each value
    came from."""
    # the main run's flags are settings to copy, not results made from the images (readers.read_settings)
    recorded = readers.read_settings(run, runfiles.TRAIN_ARGS, readers.TRAIN) or {}
    if recorded:
        recorded.setdefault("arch", LEGACY_ARCH)     # a main run from before --arch trained the light model
        recorded.setdefault("pose", "none")          # and one from before --pose the plain VAE
    if recorded.get("image_size") is None and (Path(run) / runfiles.DATATXT_SUMMARY).exists():
        # as Galaxy_VAE_n.py: the size make_datatxt.py validated the images at
        recorded["image_size"] = readers.read_json(run, runfiles.DATATXT_SUMMARY, readers.MAKE_DATATXT).get("image_size")
    settings, source = {}, {}
    for key, default in TRAINING_DEFAULTS.items():
        flag = getattr(args, key)
        if flag is not None:
            settings[key], source[key] = flag, "flag"
        elif recorded.get(key) is not None:
            settings[key], source[key] = recorded[key], "main run"
        else:
            settings[key], source[key] = default, "default"
    settings["source"] = source
    return settings


def read_split(run: str | Path, n_images: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """The main run's split (RUN/split.json) when it exists, else the one Galaxy_VAE_n.py will make
    with the same seed and validation fraction (data.split_indices). Returns (train, val, description)."""
    path = readers.current_or_none(run, runfiles.SPLIT_JSON, readers.TRAIN)
    if path is None:
        train_idx, val_idx = split_indices(n_images, val_fraction, seed)
        return train_idx, val_idx, {"source": "data.split_indices (no current main run; Galaxy_VAE_n.py makes the "
                                              "same split with this seed and --val-fraction)",
                                    "seed": seed, "val_fraction": val_fraction}
    split = json.loads(path.read_text())
    train_idx, val_idx = np.asarray(split["train"], dtype=np.int64), np.asarray(split["val"], dtype=np.int64)
    if len(train_idx) == 0 or max(train_idx.max(initial=-1), val_idx.max(initial=-1)) >= n_images:
        raise DataError(f"{path}: split does not fit the {n_images} images of train.txt; rerun Galaxy_VAE_n.py")
    return train_idx, val_idx, {"source": str(path), "seed": split.get("seed"), "val_fraction": split.get("val_fraction")}


def checkpoint_epoch(sub_run: Path, config: VAEConfig, settings: TrainSettings) -> int:
    """Epochs already trained in a sub-run (0 when none, -1 when trained with other settings: it is
    retrained from scratch); a checkpoint of another model is an error."""
    path = sub_run / runfiles.CHECKPOINT
    if not path.exists() or not (sub_run / runfiles.BEST_CHECKPOINT).exists():
        return 0
    state = load_checkpoint(path)
    if VAEConfig.from_dict(state["model_config"]) != config:
        raise ValueError(f"{path}: holds another model ({state['model_config']}); delete {sub_run} to retrain")
    if settings_mismatch(state.get("settings", {}), settings):
        return -1
    return int(state["epoch"])


def train_or_reuse(sub_run: Path, cache, train_idx, val_idx, config: VAEConfig, settings: TrainSettings,
                   device, precision, record: dict, progress: bool, log=print) -> tuple[int, str]:
    """Train the model of one latent size, or reuse/resume it. Returns (epochs trained, status)."""
    done = checkpoint_epoch(sub_run, config, settings)
    if done < 0:
        log(f"latent {config.latent_dim}: {sub_run} was trained with other settings; training from scratch")
    elif done >= settings.epochs:
        log(f"latent {config.latent_dim}: reused {sub_run / runfiles.CHECKPOINT} ({done} epochs)")
        return done, "reused"
    sub_run.mkdir(parents=True, exist_ok=True)
    write_json(record, sub_run / runfiles.TRAIN_ARGS)
    log(f"latent {config.latent_dim}: training epochs {max(done, 0) + 1}-{settings.epochs} in {sub_run}")
    _, history = fit(sub_run, cache, train_idx, val_idx, config, settings, device, precision, resume=done > 0,
                     args_record=record, progress=progress, log=lambda message: None)
    return len(history), "resumed" if done > 0 else "trained"


# ----------------------------------------------------------------------------- classification score
def read_class_index(run: str | Path, n_images: int) -> tuple[pd.DataFrame | None, str]:
    """Labelled galaxies with an image (image_index into train.txt), or (None, reason)."""
    path = Path(run) / runfiles.CLASS_INDEX_CSV
    if not path.exists():
        return None, f"{path} not found (run analysis/decals_2_1.py --run {run}); classification score skipped"
    table = readers.read_class_index(run)
    table = table[(table["image_index"] >= 0) & (table["image_index"] < n_images)]
    if table.empty:
        return None, f"{path}: no galaxy with an image in train.txt; classification score skipped"
    return table.reset_index(drop=True), f"{len(table)} labelled (question, galaxy) rows from {path}"


def encode_indices(model, cache, indices: np.ndarray, device, precision, chunk: int = 4096) -> np.ndarray:
    """mu of cache[indices] (in the order given), read in sorted chunks from the memmap."""
    indices = np.asarray(indices, dtype=np.int64)
    mu = np.zeros((len(indices), model.config.latent_dim), np.float32)
    for start in range(0, len(indices), chunk):
        part = indices[start:start + chunk]
        order = np.argsort(part)
        images = np.ascontiguousarray(cache[part[order]])
        chunk_mu, _ = encode_arrays(model, images, device, precision)
        mu[start + order] = chunk_mu
    return mu


def classification_score(model, cache, class_index: pd.DataFrame, device, precision, folds: int,
                         seed: int, questions: list[str] | None = None) -> tuple[float, dict[str, float], str]:
    """Mean random-forest accuracy over class questions (and per question) on the latents mu.

    The protocol (classes smaller than the folds dropped, stratified folds seeded by ``seed``,
    200 trees) is VAE_model.classify's (score_table), shared by every classification score.
    """
    try:
        from VAE_model.classify import score_table
    except ImportError:
        return float("nan"), {}, "VAE_model.classify not available; classification score skipped"
    unknown = sorted(set(questions or ()) - set(class_index["question"]))
    if unknown:
        raise ValueError(f"--questions {','.join(unknown)}: not a question of class_index.csv "
                         f"({', '.join(dict.fromkeys(class_index['question']))})")
    images = np.unique(class_index["image_index"].to_numpy())
    mu = encode_indices(model, cache, images, device, precision)
    local = class_index.assign(image_index=np.searchsorted(images, class_index["image_index"].to_numpy()))
    scores = score_table(mu, local, folds=folds, seed=seed, models=("random_forest",), questions=questions)
    if scores.empty:
        return float("nan"), {}, "no class question could be cross-validated; classification score skipped"
    per_question = dict(zip(scores["question"], scores["accuracy_mean"].astype(float)))
    return float(np.mean(list(per_question.values()))), per_question, \
        f"random forest, {folds}-fold CV, mean over {len(per_question)} questions ({', '.join(per_question)})"


# ----------------------------------------------------------------------------- figure
def save_latent_size_plot(table: pd.DataFrame, chosen: int, tolerance: float, path: str | Path,
                          rf_tolerance: float = RF_TOLERANCE) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = table["latent_dim"].to_numpy()
    panels = [("val_mse_per_pixel", "validation MSE per pixel"), ("val_ssim", "validation SSIM"),
              ("rf_accuracy", "random-forest accuracy\n(mean over class questions)")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    for ax, (column, label) in zip(axes, panels):
        values = table[column].to_numpy(dtype=float)
        if np.isfinite(values).any():
            ax.plot(sizes, values, "o-")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        ax.axvline(chosen, color="tab:red", linestyle="--", linewidth=1, label=f"chosen: {chosen}")
        ax.set_xscale("log", base=2)
        ax.set_xlim(sizes.min() / 1.3, sizes.max() * 1.3)
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("latent size")
        ax.set_ylabel(label)
    best = table["val_mse_per_pixel"].min()
    axes[0].axhline(best * (1 + tolerance), color="grey", linestyle=":", linewidth=1,
                    label=f"best + {100 * tolerance:g}%")
    axes[0].legend(fontsize=7)
    accuracy = table["rf_accuracy"].to_numpy(dtype=float)
    if np.isfinite(accuracy).any():
        axes[2].axhline(np.nanmax(accuracy) - rf_tolerance, color="grey", linestyle=":", linewidth=1,
                        label=f"best - {rf_tolerance:g}")
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def save_reconstructions_by_size(recon: dict, table: pd.DataFrame, path: str | Path) -> Path:
    """Rows: the validation galaxies, then their reconstruction by each latent size."""
    sizes = [int(k) for k in recon["latent_sizes"]]
    mse = dict(zip(table["latent_dim"], table["val_mse_per_pixel"]))
    rows = [list(recon["originals"])] + [list(recon[f"recon_{k}"]) for k in sizes]
    labels = ["input"] + [f"latent {k}\nMSE {mse[k]:.4f}" for k in sizes]
    return save_image_grid(rows, path, row_labels=labels, col_labels=[str(n)[:16] for n in recon["names"]],
                           title="validation galaxies reconstructed by VAEs of different latent size")


# ----------------------------------------------------------------------------- the study
def latent_size_study(args: argparse.Namespace, log=print) -> dict:
    run = Path(args.run)
    with Stage(run, "analysis/decals_2_3.py", args, resume="re-run the same command: the latent sizes already trained are reused") as stage:
        sizes = parse_sizes(args.latent_sizes)
        questions = comma_list(args.questions)
        paths = readers.read_train_list(run)
        list_path = run / runfiles.TRAIN_TXT
        training = main_run_settings(run, args)
        device = pick_device(args.device)
        precision = pick_precision(device, args.amp)
        seed_everything(args.seed)
        cache = image_cache(list_path, int(training["image_size"]), run / runfiles.CACHE_DIR, progress=not args.quiet)
        train_idx, val_idx, split = read_split(run, len(cache), float(training["val_fraction"]), args.seed)
        eval_idx = val_idx if len(val_idx) else train_idx   # no held-out set: say so in the JSON
        settings = TrainSettings(epochs=int(training["epochs"]), batch_size=int(training["batch_size"]),
                                 lr=float(training["lr"]), beta=kl_weight_value(training["beta"]), augment=bool(training["augment"]),
                                 pool_views=bool(training["pool_views"]),
                                 val_fraction=float(training["val_fraction"]), seed=args.seed, workers=args.workers, channels_last=_TRAIN.channels_last)
        record = describe_args(args, device=str(device), precision=precision.describe(), latent_sizes=sizes,
                               training=training, n_train=len(train_idx), n_val=len(val_idx))
        stage.settings = record
        class_index, class_note = read_class_index(run, len(cache))
        log(f"classification: {class_note}")
        log(f"latent sizes {sizes}: {settings.epochs} epochs, batch {settings.batch_size}, lr {settings.lr:g}, "
            f"{training['image_size']} px, {training['arch']} decoder, {len(train_idx)} train / {len(val_idx)} validation images, {device}")
        # SSIM (11x11 Gaussian filtering of five maps) costs more than the MSE: an evenly spaced subset keeps it
        # cheap on large surveys
        n_ssim = max(1, min(args.ssim_max, len(eval_idx)))
        ssim_idx = eval_idx[np.unique(np.linspace(0, len(eval_idx) - 1, n_ssim).astype(int))]
        show = np.sort(eval_idx[:args.n_show])   # the galaxies Galaxy_VAE_n.py shows in reconstructions.png
        recon = {"originals": cache[show].astype(np.float32) / 255.0,
                 "names": np.array([image_name(paths[i]) for i in show]), "image_index": show,
                 "latent_sizes": np.array(sizes)}
        rows, per_question = [], {}
        for k in sizes:
            sub_run = run / runfiles.LATENT_SIZE_SUBRUN.format(latent_dim=k)
            config = VAEConfig(latent_dim=k, image_size=int(training["image_size"]), arch=str(training["arch"]),
                               pose=str(training["pose"]), framing=readers.model_framing(list_path, paths))
            epochs, status = train_or_reuse(sub_run, cache, train_idx, val_idx, config, settings, device, precision,
                                            dict(record, latent_dim=k), progress=not args.quiet, log=log)
            stage.wrote(*(sub_run / name for name in (runfiles.TRAIN_ARGS, runfiles.CHECKPOINT, runfiles.BEST_CHECKPOINT,
                                                      runfiles.LOSS_CSV) if (sub_run / name).exists()))
            model = load_model(sub_run / runfiles.BEST_CHECKPOINT, device)
            best_epoch = int(load_checkpoint(sub_run / runfiles.BEST_CHECKPOINT)["epoch"])
            mse = reconstruction_metrics(model, cache, eval_idx, device, batch_size=256, ssim=False,
                                         precision=precision, progress=not args.quiet)["mse_per_pixel"]
            ssim = reconstruction_metrics(model, cache, ssim_idx, device, batch_size=256, precision=precision)["ssim"]
            recon[f"recon_{k}"] = reconstruct_arrays(model, recon["originals"], device)
            if class_index is not None:
                accuracy, per_question[k], note = classification_score(model, cache, class_index, device, precision,
                                                                       args.folds, args.seed, questions)
            else:
                accuracy, note = float("nan"), class_note
            rows.append({"latent_dim": k, "val_mse_per_pixel": float(mse.mean()), "val_ssim": float(ssim.mean()),
                         "rf_accuracy": accuracy, "epochs": epochs, "best_epoch": best_epoch, "seed": args.seed,
                         "status": status})
            log(f"latent {k:3d}: val MSE/pixel {rows[-1]['val_mse_per_pixel']:.5f}  SSIM {rows[-1]['val_ssim']:.3f}  "
                f"RF accuracy {accuracy:.3f}  ({status}, {epochs} epochs)")
        table = pd.DataFrame(rows)
        choice = choose_latent_size(table["latent_dim"], table["val_mse_per_pixel"],
                                    table["rf_accuracy"] if class_index is not None else None,
                                    args.tolerance, args.rf_tolerance)
        chosen = choice["chosen_latent_dim"]
        best = table.loc[table["val_mse_per_pixel"].idxmin()]
        table.to_csv(runfiles.run_path(run, runfiles.LATENT_SIZE_CSV), index=False)
        save_latent_size_plot(table, chosen, args.tolerance, runfiles.run_path(run, runfiles.LATENT_SIZE_PNG),
                              args.rf_tolerance)
        np.savez_compressed(runfiles.run_path(run, runfiles.LATENT_SIZE_RECON_NPZ), **recon)
        save_reconstructions_by_size(recon, table, runfiles.run_path(run, runfiles.LATENT_SIZE_RECON_PNG))
        best_rf = table.loc[table["rf_accuracy"].idxmax()] if table["rf_accuracy"].notna().any() else None
        summary = {"chosen_latent_dim": chosen, "mse_knee": choice["mse_knee"], "rf_knee": choice["rf_knee"],
                   "rule": choice["rule"], "rule_note": choice["note"], "mse_tolerance": args.tolerance,
                   "rf_tolerance": args.rf_tolerance,
                   "best_rf_latent_dim": None if best_rf is None else int(best_rf["latent_dim"]),
                   "best_rf_accuracy": None if best_rf is None else float(best_rf["rf_accuracy"]),
                   "arch": str(training["arch"]), "pose": str(training["pose"]), "image_size": int(training["image_size"]), "split": split,
                   "best_latent_dim": int(best["latent_dim"]), "best_val_mse_per_pixel": float(best["val_mse_per_pixel"]),
                   "threshold_val_mse_per_pixel": float(best["val_mse_per_pixel"]) * (1 + args.tolerance),
                   "evaluated_on": "validation" if len(val_idx) else "training (no validation split)",
                   "n_evaluated": len(eval_idx), "n_evaluated_ssim": len(ssim_idx),
                   "classification": note if class_index is not None else class_note,
                   "rf_accuracy_per_question": {str(k): v for k, v in per_question.items()},
                   "results": rows, "config": record}
        write_json(summary, runfiles.run_path(run, runfiles.LATENT_SIZE_JSON))
        return summary


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        summary = latent_size_study(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"rule: {summary['rule']}")
    print(f"done: chosen latent size {summary['chosen_latent_dim']} (MSE knee {summary['mse_knee']}, RF knee "
          f"{summary['rf_knee']}; best MSE/pixel {summary['best_val_mse_per_pixel']:.5f} at {summary['best_latent_dim']}); "
          f"results in {Path(args.run) / runfiles.LATENT_SIZE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
