"""Which VAE gives morphology features? The variants' table: plain, pose-separated (trained on one
random view of each galaxy, or on the four views pooled: pose_pooled), consistency, pose-separated +
consistency, a contrastive encoder, the supervised CNN, pixel PCA, aligned-pixel PCA, morphology.

Each VAE variant is trained on the run's training split with the same settings and seeds
(Galaxy_VAE_n.py's trainer), the contrastive encoder (VAE_model/contrastive.py) for the plain VAE's
mean training time, the supervised CNN of analysis/decals_5.py (VAE_model/supervised.py: the VAE's
encoder trained end to end on the true type, --epochs epochs, on the probes' five folds; its
accuracy is given in the linear column, its head being a linear layer trained with its features, and
it is the ceiling that labels buy), and every feature set is scored by the feature scorecard (VAE_model/scorecard.py,
VAE_model/feature_sets.py) on all the run's galaxies: precision@10, linear probe and random forest
on the mock's TRUE type (truth.parquet, no volunteer noise), orientation/shift/survey ratios, and on
the mock's overlap galaxies the cross-survey retrieval and forest. Reconstruction MSE per pixel and
SSIM on the validation split for the VAEs (the MSE also within the inscribed circle, which a turned frame
keeps: the pose-separated VAE cannot draw the corners outside it). Every figure is given per seed and as mean +- sd.

READS   RUN/train.txt, RUN/cache/ (make_datatxt.py; the cache is built if absent)
        MOCK_DIR/truth.parquet and the BASS+MzLS images of the overlap galaxies (the mock); with
        --mock-dir none (real, label-free images) only the ratios and the reconstruction are scored
WRITES  RUN/feature_variants/<variant>_s<seed>/  each VAE's checkpoints and loss history
        RUN/feature_variants/scores.csv          long table: variant, seed, feature_set, metric, label, value, low, high, n
        RUN/feature_variants/summary.csv|.md     mean and sd over seeds, one row per feature set
        RUN/feature_variants/config.json         flags, seed list, timings

    python bench/feature_variants.py --run runs/demo --mock-dir data/mock          # make feature-variants
    python bench/feature_variants.py --run runs/demo --seeds 0 --epochs 5 --variants plain,pose
    python bench/feature_variants.py --run runs/sdss --mock-dir none --variants plain,pose --no-morphology
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from VAE_model.cli_args import add_quiet_argument, cli_main, kl_weight, non_negative_float, positive_int

VARIANTS = {   # name -> (pose mode, consistency weight multiplier: 1 = --consistency, four views pooled in training)
    "plain": ("none", 0.0, False),
    "pose": ("moments", 0.0, False),
    "pose_pooled": ("moments", 0.0, True),
    "consistency": ("none", 1.0, False),
    "pose_consistency": ("moments", 1.0, False),
}
EXTRA_VARIANTS = ("contrastive", "cnn")   # not VAEs: trained by their own functions
OUT_DIR = "feature_variants"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/demo", help="run directory with train.txt (default: %(default)s)")
    parser.add_argument("--mock-dir", default="data/mock", help="the mock survey (truth.parquet) (default: %(default)s)")
    parser.add_argument("--variants", default=",".join([*VARIANTS, *EXTRA_VARIANTS]),
                        help="comma list of %(default)s (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="comma list of training seeds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, folds and transforms (default: %(default)s)")
    parser.add_argument("--latent-dim", type=positive_int, default=32, help="(default: %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=25, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="(default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-3, help="(default: %(default)s)")
    parser.add_argument("--beta", type=kl_weight, default=0.01,
                        help="KL weight; 0.01 ~ the calibrated value at 64 px, see the Makefile's DEMO_BETA (default: %(default)s)")
    parser.add_argument("--consistency", type=non_negative_float, default=10.0,
                        help="weight of the consistency term for the consistency variants (default: %(default)s)")
    parser.add_argument("--invariance-galaxies", type=positive_int, default=1000,
                        help="galaxies whose transformed copies give the ratios (default: %(default)s)")
    parser.add_argument("--no-morphology", action="store_true", help="leave out the (slow) morphology feature set")
    parser.add_argument("--keep-scores", action="store_true",
                        help="keep the rows of scores.csv of variants not trained in this call (and the baselines, "
                             "which are then not scored again): a table built over several calls")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd
import torch

from VAE_model import feature_sets, readers, runfiles
from VAE_model.contrastive import train_contrastive
from VAE_model.data import image_cache, image_name, split_indices
from VAE_model.errors import MissingInputError
from VAE_model.feature_sets import Pairs
from VAE_model.metrics import reconstruction_metrics
from VAE_model.models import VAEConfig
from VAE_model.runtime import DistInfo, pick_precision, pick_device, seed_everything, write_json
from VAE_model.training import TrainSettings, fit


def truth_types(mock_dir, paths) -> np.ndarray | None:
    """The mock's true type of each listed image (by IAU name), None where the truth has none; None on
    real, label-free images (--mock-dir none)."""
    truth_path = readers.mock_truth_path(mock_dir)
    if truth_path is None:
        if str(mock_dir).lower() != "none":
            raise MissingInputError(f"{mock_dir}: no mock truth table ({runfiles.MOCK_TRUTH}); give the mock's "
                                    "folder, or --mock-dir none for label-free images (ratios and reconstruction only)")
        return None
    return readers.mock_true_types(truth_path, paths)


def overlap_pairs(mock_dir, paths, types: np.ndarray, image_size: int, cache_dir: Path, seed: int) -> Pairs | None:
    """DECaLS and BASS+MzLS images of the mock galaxies in both surveys (30% of them test rows)."""
    from VAE_model.data import write_image_list
    from VAE_model.imageio import validate_image

    truth = pd.read_parquet(readers.mock_truth_path(mock_dir), columns=["decals_iauname", "bass_iauname"])
    bass_name = dict(zip(truth["decals_iauname"], truth["bass_iauname"]))
    bass_dir = Path(mock_dir) / runfiles.MOCK_BASS_IMAGES
    rows, bass_paths = [], []
    for row, path in enumerate(paths):
        name = bass_name.get(image_name(path))
        candidate = bass_dir / f"{name}.fits" if isinstance(name, str) else None
        # north images with a blank band or too many masked pixels are left out, as make_pairs.py does
        if candidate is not None and candidate.exists() and validate_image(candidate, image_size) is None:
            rows.append(row)
            bass_paths.append(str(candidate))
    if len(rows) < 20:
        return None
    list_path = cache_dir / "bass_pairs.txt"
    write_image_list(bass_paths, list_path)
    bass_cache = image_cache(list_path, image_size, cache_dir / "bass_cache", progress=False)
    test = np.sort(np.random.default_rng(seed).choice(len(rows), int(0.3 * len(rows)), replace=False))
    return Pairs(decals=np.asarray(rows), bass=feature_sets.as_float(bass_cache[:]), labels=types[rows], test=test)


def train_variant(out: Path, cache, train_idx, val_idx, config: VAEConfig, settings: TrainSettings, device) -> tuple:
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model, history = fit(out, cache, train_idx, val_idx, config, settings, device, pick_precision(device, "off"),
                         DistInfo(), progress=False, log=lambda *_: None)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        quality = reconstruction_metrics(model.eval(), cache, val_idx, device)
    return model, seconds, {key: float(np.mean(values)) for key, values in quality.items()}


def cnn_accuracy(cache, types: np.ndarray, config: VAEConfig, epochs: int, batch_size: int, lr: float, seed: int,
                 fold_seed: int, device) -> tuple[float, float, float, int]:
    """(accuracy, low, high, n): the supervised CNN's 5-fold accuracy on the true type, on the folds and
    classes the probes use (``classify.planned_folds`` with the split seed)."""
    from VAE_model.classify import planned_folds
    from VAE_model.scorecard import wilson_interval
    from VAE_model.supervised import cross_validate_cnn

    known = np.flatnonzero(feature_sets.labelled(types))
    plan, labels, splits = planned_folds(types[known].astype(str), 5, fold_seed)
    rows = known[plan.keep]
    result = cross_validate_cnn(cache, rows, labels, splits, config, device, epochs, batch_size, lr, seed, plan.classes)
    accuracy = result["accuracy_mean"]
    return accuracy, *wilson_interval(accuracy, len(rows)), len(rows)


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    seed_everything(args.seed)
    device = pick_device("cpu")
    run = Path(args.run)
    out = run / OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = readers.read_train_list(run)
    summary = readers.read_json(run, runfiles.DATATXT_SUMMARY, readers.MAKE_DATATXT)
    image_size = int(summary["image_size"])
    cache = image_cache(run / runfiles.TRAIN_TXT, image_size, run / runfiles.CACHE_DIR, progress=not args.quiet)
    images = feature_sets.as_float(cache[:])
    train_idx, val_idx = split_indices(len(cache), 0.1, args.seed)
    types = truth_types(args.mock_dir, paths)
    pairs = None if types is None else overlap_pairs(args.mock_dir, paths, types, image_size, out, args.seed)
    if pairs is not None:
        pairs = Pairs(decals=images[pairs.decals], bass=pairs.bass, labels=pairs.labels, test=pairs.test)
    invariance_rows = np.sort(np.random.default_rng(args.seed).choice(
        len(images), min(args.invariance_galaxies, len(images)), replace=False))
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS) - set(EXTRA_VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join([*VARIANTS, *EXTRA_VARIANTS])}")
    seeds = [int(s) for s in args.seeds.split(",")]
    labelings = {} if types is None else {"true_type": types}
    rows, timings = [], {}
    if args.keep_scores and (out / "scores.csv").exists():
        previous = pd.read_csv(out / "scores.csv")
        rows = previous[~previous["variant"].isin(variants)].to_dict("records")

    def score(variant, seed, extractors, extra=None):
        scored = feature_sets.score_sets(extractors, images, labelings, invariance_rows, pairs, args.seed,
                                         progress=not args.quiet) if extractors else []
        for row in scored:
            rows.append({"variant": variant, "seed": seed, **row})
        for metric, value in (extra or {}).items():
            rows.append({"variant": variant, "seed": seed, "feature_set": variant, "metric": metric, "label": "",
                         "value": value, "low": np.nan, "high": np.nan, "n": len(val_idx)})
        pd.DataFrame(rows).to_csv(out / "scores.csv", index=False)

    baselines = {"pixel_pca": feature_sets.pca_features(images, args.latent_dim, seed=args.seed),
                 "aligned_pca": feature_sets.pca_features(images, args.latent_dim, aligned=True, seed=args.seed)}
    if not args.no_morphology:
        baselines["morphology"] = feature_sets.morphology_features()
    if not any(row["variant"] == "baselines" for row in rows):
        score("baselines", args.seed, baselines)
    for seed in seeds:
        for variant in variants:
            if variant in EXTRA_VARIANTS:
                continue
            pose, weight, pool_views = VARIANTS[variant]
            config = VAEConfig(latent_dim=args.latent_dim, image_size=image_size, pose=pose)
            settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                                     seed=seed, workers=0, consistency=weight * args.consistency,
                                     pool_views=pool_views)
            model, seconds, quality = train_variant(out / f"{variant}_s{seed}", cache, train_idx, val_idx, config,
                                                    settings, device)
            timings[f"{variant}_s{seed}"] = seconds
            print(f"{variant} seed {seed}: {seconds:.0f} s, val MSE/pixel {quality['mse_per_pixel']:.5f}, "
                  f"SSIM {quality['ssim']:.3f}")
            score(variant, seed, {variant: feature_sets.vae_features(model)},
                  {"val_mse_per_pixel": quality["mse_per_pixel"], "val_mse_inner": quality["mse_per_pixel_inner"],
                   "val_ssim": quality["ssim"],
                   "train_seconds": seconds})
        if "contrastive" in variants:
            plain_times = [t for k, t in timings.items() if k.startswith("plain_")] or \
                [r["value"] for r in rows if r["variant"] == "plain" and r["metric"] == "train_seconds"]
            budget = float(np.mean(plain_times)) if plain_times else 60.0 * args.epochs / 25
            config = VAEConfig(latent_dim=args.latent_dim, image_size=image_size)
            start = time.perf_counter()
            model, _ = train_contrastive(cache, train_idx, config, device, seconds=budget, seed=seed,
                                         progress=not args.quiet)
            timings[f"contrastive_s{seed}"] = time.perf_counter() - start
            print(f"contrastive seed {seed}: {timings[f'contrastive_s{seed}']:.0f} s")
            score("contrastive", seed, {"contrastive": feature_sets.contrastive_features(model)},
                  {"train_seconds": timings[f"contrastive_s{seed}"]})
        if "cnn" in variants and types is not None:
            start = time.perf_counter()
            accuracy = cnn_accuracy(cache, types, VAEConfig(latent_dim=args.latent_dim, image_size=image_size),
                                    args.epochs, args.batch_size, args.lr, seed, args.seed, device)
            timings[f"cnn_s{seed}"] = time.perf_counter() - start
            print(f"cnn seed {seed}: {timings[f'cnn_s{seed}']:.0f} s, 5-fold accuracy {accuracy[0]:.3f}")
            rows.append({"variant": "cnn", "seed": seed, "feature_set": "cnn", "metric": "linear",
                         "label": "true_type", "value": accuracy[0], "low": accuracy[1], "high": accuracy[2],
                         "n": accuracy[3]})
            score("cnn", seed, {}, {"train_seconds": timings[f"cnn_s{seed}"]})
    table = pd.DataFrame(rows)
    write_summary(table, out)
    write_json({"args": vars(args), "timings_s": timings, "n_galaxies": len(images),
                "n_pairs": None if pairs is None else len(pairs.labels)}, out / "config.json")
    print(f"feature variants: {out / 'summary.md'}")
    return 0


SUMMARY_COLUMNS = [("precision_at_10", "true_type", "P@10"), ("linear", "true_type", "linear"),
                   ("forest", "true_type", "forest"), ("ratio_quarter_turn", "", "quarter turn"),
                   ("ratio_any_angle", "", "any angle"), ("ratio_mirror", "", "mirror"), ("ratio_shift", "", "shift"),
                   ("ratio_survey", "", "survey"), ("retrieval_top1", "", "retrieval top-1"),
                   ("forest_same_survey", "pairs", "forest DECaLS"), ("forest_other_survey", "pairs", "forest BASS+MzLS"),
                   ("val_mse_per_pixel", "", "val MSE/px"), ("val_mse_inner", "", "MSE/px in the circle"),
                   ("val_ssim", "", "SSIM")]


def write_summary(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Mean, sd over seeds and the mean 95% interval of each (feature set, metric)."""
    # rows read back from scores.csv (--keep-scores) carry NaN where the label was '' (the ratios, the
    # reconstruction): grouped as NaN they would be dropped from the table
    table = table.assign(label=table["label"].fillna(""))
    grouped = table.groupby(["feature_set", "metric", "label"], sort=False)
    stats = grouped.agg(mean=("value", "mean"), sd=("value", "std"), low=("low", "mean"), high=("high", "mean"),
                        seeds=("seed", "nunique")).reset_index()
    stats.to_csv(out / "summary.csv", index=False)
    lines = ["| features | " + " | ".join(c[2] for c in SUMMARY_COLUMNS) + " |",
             "|---|" + "---|" * len(SUMMARY_COLUMNS)]
    for name in stats["feature_set"].unique():
        cells = []
        for metric, label, _ in SUMMARY_COLUMNS:
            hit = stats[(stats.feature_set == name) & (stats.metric == metric) & (stats.label == label)]
            if hit.empty:
                cells.append("")
                continue
            r = hit.iloc[0]
            digits = 5 if metric.startswith("val_mse") else 3
            sd = f" ± {r['sd']:.{digits}f}" if r["seeds"] > 1 else ""
            interval = (f" [{r['low']:.3f}, {r['high']:.3f}]" if np.isfinite(r["low"]) and r["seeds"] == 1 else "")
            cells.append(f"{r['mean']:.{digits}f}{sd}{interval}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return stats


if __name__ == "__main__":
    sys.exit(main())
