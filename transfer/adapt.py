"""Part II, step 3: adapt the Part I (DECaLS) VAE to BASS+MzLS by fine-tuning on both surveys.

Starts from the Part I model and minimises, on the TRAIN pairs only,

    L = vae_loss(DECaLS batch) + vae_loss(BASS+MzLS batch) + lambda * alignment(mu_DECaLS, mu_BASS)
        [+ w * consistency(both batches), for the consistency methods]

  --method mmd     (reference) alignment = multi-kernel RBF MMD^2 between the two batches' mu
                   (Gaussian kernels at median-heuristic x {0.25, 0.5, 1, 2, 4}; biased estimator
                   by default, see VAE_model.adaptation.mmd2). The two batches are drawn
                   independently: the method does not need pairs.
  --method paired  alignment = mean squared distance between the mu of the two images of one
                   galaxy (uses the pairs; both images get the same flips/rotation).
  --method consistency      "invariant training alone": no alignment term; each image of both
                   (independent, unpaired) batches is also seen through the nuisance transforms of
                   VAE_model/nuisance.py (any rotation, mirror, shift, blur up to the BASS+MzLS -
                   DECaLS PSF difference, noise, per-band flux scatter) and the consistency term of
                   Part I's invariant training (training.consistency_loss, weight --consistency) pulls
                   the content latents of each image and its copy together. Does not need pairs.
  --method consistency_mmd  "invariant training + MMD": the consistency term and the MMD term
                   (weight --lambda). Does not need pairs.
The reconstruction terms keep Part I quality; the guards below are reported before and after.
A held-out part of the train pairs (--val-fraction) picks the best epoch (never the test pairs).

Reference setting (real data): lambda 0.1, Adam lr 1e-5, batch 128 per survey, 20 epochs.
The demo uses a larger learning rate and fewer epochs (see the Makefile).

READS   RUN/best.pt (or --checkpoint), RUN/transfer/pairs.csv + decals_pairs.txt + bass_pairs.txt
        (transfer/make_pairs.py), RUN/train.txt + RUN/split.json (Part I validation, for the guards)
WRITES  RUN/transfer/<method>/checkpoint.pt     every epoch, atomic (training checkpoint format)
        RUN/transfer/<method>/best.pt           lowest held-out adaptation loss; runtime.load_model reads it
        RUN/transfer/<method>/history.csv|.png  per-epoch losses, held-out distance ratio (epoch 0: Part I model)
        RUN/transfer/<method>/adapt_summary.json  configuration + quality guards before/after

Next: transfer/evaluate.py (metrics before/after, picks RUN/transfer/adapted.pt).

    python transfer/adapt.py --run runs/demo --method mmd
    python transfer/adapt.py --run runs/demo --method paired
    python transfer/adapt.py --run runs/demo --method consistency_mmd --lambda 100 --consistency 10
    python transfer/adapt.py --run runs/demo --method mmd --resume    # after an interruption
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from VAE_model.cli_args import (add_amp_argument, add_batch_size_argument, add_quiet_argument, add_runtime_arguments,
                                cli_main, describe_args, kl_weight, non_negative_float)
from VAE_model.config import (ADAPT_CONSISTENCY_WEIGHT, ADAPT_METHODS as METHODS, ADAPT_NUISANCE_SCALE,
                              DEFAULT_KERNEL_MULTIPLIERS)

# Collapse warnings: Part I reconstruction may degrade a little while the encoder moves; more than
# this factor, or latent variance below this fraction of Part I's, means Part I quality was lost.
MAX_MSE_INCREASE = 1.2
MIN_VARIANCE_FRACTION = 0.5


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--method", choices=METHODS, default="mmd",
                        help="'mmd' (reference, unpaired), 'paired' (uses the pairs), 'consistency' or "
                             "'consistency_mmd' (invariant training alone / + MMD, unpaired) (default: %(default)s)")
    parser.add_argument("--lambda", dest="align_weight", metavar="LAMBDA", type=float, default=0.1,
                        help="weight of the alignment term, MMD or paired (default: %(default)s)")
    parser.add_argument("--consistency", dest="consistency_weight", metavar="W", type=non_negative_float,
                        default=ADAPT_CONSISTENCY_WEIGHT,
                        help="weight of the consistency term, methods consistency and consistency_mmd "
                             "(default: %(default)s)")
    parser.add_argument("--nuisance-scale", type=non_negative_float, default=ADAPT_NUISANCE_SCALE,
                        help="multiplies the survey-like nuisances of the consistency term (seeing, depth, "
                             "calibration; 1 = Part I's) (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=20, help="(default: %(default)s)")
    add_batch_size_argument(parser, 128, "images per survey per step")
    parser.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--beta", type=kl_weight, default=None,
                        help="weight of the KL term, or 'calibrated' (default: the Part I model's, from its checkpoint)")
    parser.add_argument("--val-fraction", type=float, default=0.15,
                        help="train pairs held out to choose the best epoch (default: %(default)s)")
    parser.add_argument("--kernel-multipliers", type=float, nargs="+", default=list(DEFAULT_KERNEL_MULTIPLIERS),
                        help="MMD kernel bandwidths as multiples of the median heuristic (default: %(default)s)")
    parser.add_argument("--mmd-estimator", choices=["biased", "unbiased"], default="biased",
                        help="MMD^2 estimator: biased V-statistic (>= 0) or unbiased U-statistic (default: %(default)s)")
    parser.add_argument("--paired-distance", choices=["squared", "euclidean"], default="squared",
                        help="paired alignment: mean squared or mean (robust) Euclidean distance (default: %(default)s)")
    parser.add_argument("--no-augment", dest="augment", action="store_false", help="disable random flips/rotations")
    parser.add_argument("--checkpoint", default=None, help="Part I model to start from (default: RUN/best.pt)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/transfer/<method>/checkpoint.pt")
    add_amp_argument(parser)
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np

from VAE_model import provenance, readers, runfiles
from VAE_model.adaptation import (AdaptSettings, adapt, model_quality, pair_caches, part1_training_setting,
                                  part1_validation)
from VAE_model.errors import StaleInputError
from VAE_model.readers import read_pairs
from VAE_model.stage import Stage
from VAE_model.runtime import (load_checkpoint, load_model, pick_device, pick_precision, run_lock, seed_everything,
                               write_json)


def adaptation_split(train_pairs: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out subset of the train pairs (seeded) for choosing the best epoch."""
    order = np.random.default_rng([seed, 7]).permutation(train_pairs)
    n_val = int(round(len(order) * val_fraction)) if val_fraction > 0 else 0
    if val_fraction > 0 and len(order) >= 6:
        n_val = max(n_val, 2)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def save_history_png(history: list[dict], path, method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def curve(ax, key, label=None):
        rows = [row for row in history if row.get(key) is not None]
        if rows:
            ax.plot([row["epoch"] for row in rows], [row[key] for row in rows], marker=".", label=label)

    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for key, label in (("train_vae_decals", "train DECaLS"), ("train_vae_bass", "train BASS+MzLS"),
                       ("val_vae_decals", "held-out DECaLS"), ("val_vae_bass", "held-out BASS+MzLS")):
        curve(axes[0], key, label)
    axes[0].set_ylabel("VAE loss per image")
    curve(axes[1], "train_align", "train")
    curve(axes[1], "val_align", "held-out")
    if method in ("consistency", "consistency_mmd"):
        curve(axes[1], "train_consistency", "train consistency")
        curve(axes[1], "val_consistency", "held-out consistency")
    axes[1].set_ylabel({"mmd": "MMD^2", "paired": "paired alignment term", "consistency": "consistency term",
                        "consistency_mmd": "MMD^2 (align), consistency term"}[method])
    curve(axes[2], "val_distance_ratio")
    axes[2].set_ylabel("held-out paired / random distance")
    for ax in axes:
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"adaptation, method {method}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    seed_everything(args.seed)
    device = pick_device(args.device)
    precision = pick_precision(device, args.amp)
    run = args.run
    method_dir = Path(run) / runfiles.ADAPT_DIR.format(method=args.method)
    resume = f"continue with the same command and --resume (from {method_dir / 'checkpoint.pt'})"
    with run_lock(method_dir), Stage(run, "transfer/adapt.py", args, resume=resume) as stage:   # one per method folder
        checkpoint = readers.external_checkpoint(run, args.checkpoint) if args.checkpoint \
            else readers.checkpoint_path(run)
        last = runfiles.ADAPT_CHECKPOINT.format(method=args.method)
        if args.resume and (Path(run) / last).exists():
            # resume only from an adaptation of the Part I model and pairs that exist now
            provenance.check(run, last, f"transfer/adapt.py --run {run} --method {args.method} (without --resume)",
                             own_identity=False)
        beta = args.beta if args.beta is not None else part1_training_setting(checkpoint, "beta", 1.0)
        # the nuisance blur and noise are sized for the images' pixels, as in Part I's training
        pixel_scale = part1_training_setting(checkpoint, "pixel_scale_arcsec",
                                             AdaptSettings.pixel_scale_arcsec)
        settings = AdaptSettings(method=args.method, align_weight=args.align_weight,
                                 consistency_weight=args.consistency_weight, pixel_scale_arcsec=pixel_scale,
                                 nuisance_scale=args.nuisance_scale,
                                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=beta,
                                 augment=args.augment, seed=args.seed, kernel_multipliers=tuple(args.kernel_multipliers),
                                 mmd_estimator=args.mmd_estimator, paired_distance=args.paired_distance)
        model = load_model(checkpoint, device)
        pairs = read_pairs(run)
        decals_cache, bass_cache = pair_caches(run, model.config.image_size, len(pairs), progress=not args.quiet)
        part1 = part1_validation(run, model.config.image_size, progress=not args.quiet)
        split = pairs["split"].to_numpy()
        train_idx, val_idx = adaptation_split(np.flatnonzero(split == "train"), args.val_fraction, args.seed)
        test_idx = np.flatnonzero(split == "test")
        if len(train_idx) < 2:
            raise StaleInputError(f"{Path(run) / runfiles.TRANSFER_PAIRS_CSV}: only {len(train_idx)} train pairs; "
                                  "need at least 2")
        before = model_quality(model, decals_cache, test_idx, device, precision, *part1)
        record = describe_args(args, beta_used=beta, pixel_scale_arcsec_used=pixel_scale,
                               uses_pairs=settings.uses_pairs, source_checkpoint=str(Path(checkpoint).resolve()),
                               source_sha256=provenance.file_digest(checkpoint), device=str(device),
                               precision=precision.describe(), n_train_pairs=len(train_idx), n_val_pairs=len(val_idx))
        stage.settings = record
        best_name = runfiles.ADAPT_BEST.format(method=args.method)

        def record_outputs(history):   # after every epoch: the checkpoints stay usable if the run is killed
            outputs = [last, runfiles.ADAPT_HISTORY_CSV.format(method=args.method)]
            outputs += [best_name] if (Path(run) / best_name).exists() else []
            stage.record(outputs)

        weights = f"lambda {args.align_weight}" + (f", consistency {args.consistency_weight}"
                                                   if settings.uses_consistency else "")
        print(f"adapting ({args.method}, {weights}) on {len(train_idx)} train pairs "
              f"({len(val_idx)} held out), {model.config.image_size} px, {device} {precision.describe()}")
        model, history = adapt(run, model, decals_cache, bass_cache, train_idx, val_idx, settings, device, precision,
                               resume=args.resume, args_record=record, progress=not args.quiet,
                               on_epoch=record_outputs)
        best_path = Path(run) / best_name
        best = load_model(best_path, device)
        after = model_quality(best, decals_cache, test_idx, device, precision, *part1)
        warnings = []
        for key in ("recon_mse_per_pixel_part1_val", "recon_mse_per_pixel_test_decals"):
            if key in before and after[key] > MAX_MSE_INCREASE * before[key]:
                warnings.append(f"{key} rose from {before[key]:.5f} to {after[key]:.5f} (> x{MAX_MSE_INCREASE})")
        if after["latent_variance_test_decals"] < MIN_VARIANCE_FRACTION * before["latent_variance_test_decals"]:
            warnings.append(f"latent variance fell from {before['latent_variance_test_decals']:.4f} to "
                            f"{after['latent_variance_test_decals']:.4f} (collapse?)")
        adapted = [row for row in history if row["epoch"] >= 1]
        best_epoch = min(adapted, key=lambda row: row.get("val_loss", row["train_loss"]))["epoch"] if adapted else 0
        write_json({"method": args.method, "best_epoch": best_epoch, "best_checkpoint": str(best_path),
                    "quality_before": before, "quality_after": after, "warnings": warnings, "history": history,
                    "config": record}, runfiles.run_path(run, runfiles.ADAPT_SUMMARY_JSON.format(method=args.method)))
        if history:
            save_history_png(history, runfiles.run_path(run, runfiles.ADAPT_HISTORY_PNG.format(method=args.method)), args.method)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    mse_key = "recon_mse_per_pixel_part1_val" if "recon_mse_per_pixel_part1_val" in before else "recon_mse_per_pixel_test_decals"
    print(f"done ({args.method}): best epoch {best_epoch} -> {best_path}; DECaLS recon MSE/pixel "
          f"{before[mse_key]:.5f} -> {after[mse_key]:.5f}, latent variance {before['latent_variance_test_decals']:.3f} "
          f"-> {after['latent_variance_test_decals']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
