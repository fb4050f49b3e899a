"""Compare the two decoders (VAE_model.models: 'reference' and 'light') on the same data and split.

Both architectures are trained with the same settings (training.fit, the loop Galaxy_VAE_n.py
runs: channels-last, the same seed, initial-weight seed, batches, augmentation and noise) on the
same decode-once cache and the same training/validation split (data.split_indices with --seed
and --val-fraction), then measured on the held-out galaxies with the model of the best
validation loss:

    val_mse_per_pixel   mean per-pixel MSE of the validation galaxies (stretched [0, 1] units, z = mu)
    val_ssim            mean SSIM (Wang et al. 2004 settings: Gaussian window sigma 1.5; VAE_model.metrics)
    rf_accuracy_*       5-fold cross-validated random-forest accuracy on the latents mu of all images
                        (VAE_model.classify, the protocol of every classification score):
                        rf_accuracy_truth  the mock's true morphology type (MOCK_DIR/truth.parquet, 8 types)
                        rf_accuracy_gz     mean over Galaxy Zoo questions of RUN/selection/class_index.csv
                        (each only when its labels exist)
    train_images_per_s  median over epochs of the training throughput (history of training.fit); the
                        architectures train epoch by epoch in turn (each epoch a resume of the last,
                        which training.fit makes identical to an uninterrupted run), so a shared
                        machine's load falls on both alike
    train_gflop_per_image  forward + backward FLOPs of one training image (torch.utils.flop_counter)
    parameters          trainable parameters

READS   RUN/train.txt (make_datatxt.py), RUN/cache (built if absent),
        --mock-dir/truth.parquet and RUN/selection/class_index.csv (both optional, for the RF scores)
WRITES  OUT/<arch>/        checkpoint.pt, best.pt, loss_history.csv of each architecture
        OUT/compare_arch.csv, OUT/compare_arch.json   the table, the settings, the device
        (OUT = --output, default RUN/bench/compare_arch)

    python make_datatxt.py --mock 1500 --image-size 64 --run runs/arch
    python bench/compare_arch.py --run runs/arch --mock-dir data/mock --epochs 20 --batch-size 32 --lr 1e-3 --beta 0.0625
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from VAE_model.cli_args import add_quiet_argument, add_runtime_arguments, cli_main, describe_args
from VAE_model.config import ARCHITECTURES, TrainSettings, VAEConfig

COLUMNS = ["arch", "parameters", "train_gflop_per_image", "train_images_per_s", "val_mse_per_pixel", "val_ssim",
           "rf_accuracy_truth", "rf_accuracy_gz", "epochs", "best_epoch", "train_seconds"]


def parse_args(argv=None) -> argparse.Namespace:
    model, train = VAEConfig(), TrainSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--archs", default=",".join(ARCHITECTURES),
                        help="comma-separated architectures to compare (default: %(default)s)")
    parser.add_argument("--latent-dim", type=int, default=model.latent_dim, help="(default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image side in px (default: RUN/datatxt_summary.json's, else %d)" % model.image_size)
    parser.add_argument("--epochs", type=int, default=train.epochs, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=train.batch_size, help="(default: %(default)s)")
    parser.add_argument("--lr", type=float, default=train.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--beta", type=float, default=train.beta, help="weight of the KL term (default: %(default)s)")
    parser.add_argument("--n-images", type=int, default=None,
                        help="use only the first N images of train.txt (default: all)")
    parser.add_argument("--val-fraction", type=float, default=train.val_fraction, help="(default: %(default)s)")
    parser.add_argument("--mock-dir", default="data/mock", help="mock survey with truth.parquet, for the RF score on "
                        "the true morphology type (default: %(default)s; skipped when absent)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: %(default)s)")
    parser.add_argument("--amp", choices=["auto", "on", "off"], default="off",
                        help="mixed precision (default: %(default)s: float32, the reference's precision)")
    parser.add_argument("--output", default=None, help="output folder (default: RUN/bench/compare_arch)")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd
import torch

from VAE_model import runfiles
from VAE_model.data import DataError, image_cache, image_name, read_image_list, split_indices
from VAE_model.errors import GalaxyVAEError
from VAE_model.features import encode_arrays
from VAE_model.metrics import reconstruction_metrics
from VAE_model.models import VAE, vae_loss
from VAE_model.runtime import load_checkpoint, load_model, pick_device, pick_precision, seed_everything, write_json
from VAE_model.training import fit


def training_flops(config: VAEConfig) -> float:
    """Forward + backward FLOPs (2 per multiply-add) of one training image, in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    model = VAE(config)
    images = torch.rand(2, config.in_channels, config.image_size, config.image_size)
    with FlopCounterMode(display=False) as counter:
        reconstruction, mu, logvar = model(images, torch.randn(2, config.latent_dim))
        vae_loss(reconstruction, images, mu, logvar)[0].backward()
    return counter.get_total_flops() / 2 / 1e9


def truth_labels(mock_dir: str | Path, paths: list[str]) -> np.ndarray | None:
    """The true morphology type of each image (by name), or None without a truth table."""
    path = Path(mock_dir) / runfiles.MOCK_TRUTH
    if not path.exists():
        return None
    truth = pd.read_parquet(path, columns=["decals_iauname", "morph_type"])
    types = dict(zip(truth["decals_iauname"], truth["morph_type"]))
    labels = np.array([types.get(image_name(p), "") for p in paths], dtype=object)
    return labels if (labels != "").sum() >= 2 * 5 else None


def rf_scores(mu: np.ndarray, labels: np.ndarray | None, class_index: pd.DataFrame | None, folds: int,
              seed: int) -> dict:
    from VAE_model.classify import score_question, score_table

    out = {"rf_accuracy_truth": float("nan"), "rf_accuracy_gz": float("nan")}
    if labels is not None:
        keep = labels != ""
        result = score_question(mu[keep], labels[keep].astype(str), folds=folds, seed=seed, models=("random_forest",))
        out["rf_accuracy_truth"] = float(result["models"]["random_forest"]["accuracy_mean"])
    if class_index is not None:
        scores = score_table(mu, class_index, folds=folds, seed=seed, models=("random_forest",))
        if not scores.empty:
            out["rf_accuracy_gz"] = float(scores["accuracy_mean"].astype(float).mean())
    return out


def read_class_index(run: Path, n_images: int) -> pd.DataFrame | None:
    path = run / runfiles.CLASS_INDEX_CSV
    if not path.exists():
        return None
    table = pd.read_csv(path)
    table = table[(table["image_index"] >= 0) & (table["image_index"] < n_images)]
    return table.reset_index(drop=True) if len(table) else None


def compare(args, log=print) -> dict:
    run = Path(args.run)
    list_path = runfiles.require(run / runfiles.TRAIN_TXT, f"make_datatxt.py --run {run}")
    paths = read_image_list(list_path)
    image_size = args.image_size
    if image_size is None:
        summary = run / runfiles.DATATXT_SUMMARY
        image_size = int(pd.read_json(summary, typ="series")["image_size"]) if summary.exists() else VAEConfig.image_size
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown or not archs:
        raise ValueError(f"--archs {args.archs!r}: expected names from {', '.join(ARCHITECTURES)}")
    out = Path(args.output) if args.output else run / "bench" / "compare_arch"
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    precision = pick_precision(device, args.amp)
    seed_everything(args.seed)
    cache = image_cache(list_path, image_size, run / runfiles.CACHE_DIR, progress=not args.quiet)
    n_used = len(cache) if args.n_images is None else min(args.n_images, len(cache))
    if n_used < 10:
        raise ValueError(f"--n-images {args.n_images}: need at least 10 images")
    train_idx, val_idx = split_indices(n_used, args.val_fraction, args.seed)
    if len(val_idx) == 0:
        raise ValueError("--val-fraction 0: the comparison needs validation galaxies")
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                             val_fraction=args.val_fraction, seed=args.seed)
    labels = truth_labels(args.mock_dir, paths[:n_used])
    class_index = read_class_index(run, n_used)
    log(f"{len(train_idx)} training / {len(val_idx)} validation images of {image_size} px, latent {args.latent_dim}, "
        f"{settings.epochs} epochs, batch {settings.batch_size}, lr {settings.lr:g}, beta {settings.beta:g}, "
        f"{device} {precision.describe()}, {torch.get_num_threads()} threads")
    record = describe_args(args, image_size=image_size, device_used=str(device), precision=precision.describe(),
                           torch_threads=torch.get_num_threads(), n_train=len(train_idx), n_val=len(val_idx))
    # the decoders compared as the reference study has them: in the plain VAE (no pose separation)
    configs = {arch: VAEConfig(latent_dim=args.latent_dim, image_size=image_size, arch=arch, pose="none") for arch in archs}
    histories, seconds = {arch: [] for arch in archs}, {arch: 0.0 for arch in archs}
    from dataclasses import replace
    from tqdm import tqdm

    for epoch in tqdm(range(1, settings.epochs + 1), desc="epochs (all architectures)", disable=args.quiet):
        for arch in archs:       # in turn, epoch by epoch: both see the same machine load
            sub = out / arch
            sub.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            _, histories[arch] = fit(sub, cache, train_idx, val_idx, configs[arch], replace(settings, epochs=epoch),
                                     device, precision, resume=epoch > 1, args_record=dict(record, arch=arch),
                                     progress=False, log=lambda message: None)
            seconds[arch] += time.perf_counter() - start
    rows = []
    used = np.arange(n_used)
    for arch in archs:
        config, history, sub = configs[arch], histories[arch], out / arch
        best_state = load_checkpoint(sub / runfiles.BEST_CHECKPOINT)
        model = load_model(sub / runfiles.BEST_CHECKPOINT, device)
        metrics = reconstruction_metrics(model, cache, val_idx, device, batch_size=256, precision=precision)
        mu, _ = encode_arrays(model, np.ascontiguousarray(cache[used]), device, precision)
        row = {"arch": arch, "parameters": sum(p.numel() for p in model.parameters()),
               "train_gflop_per_image": training_flops(config),
               "train_images_per_s": float(np.median([h["images_per_s"] for h in history])),
               "val_mse_per_pixel": float(metrics["mse_per_pixel"].mean()), "val_ssim": float(metrics["ssim"].mean()),
               "epochs": len(history), "best_epoch": int(best_state["epoch"]), "train_seconds": seconds[arch]}
        row.update(rf_scores(mu, labels, class_index, args.folds, args.seed))
        rows.append(row)
        log(f"{arch:>9}: val MSE/pixel {row['val_mse_per_pixel']:.5f}  SSIM {row['val_ssim']:.3f}  "
            f"RF truth {row['rf_accuracy_truth']:.3f}  {row['train_images_per_s']:.0f} images/s  "
            f"{row['train_gflop_per_image']:.3f} GFLOP/image")
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.to_csv(out / "compare_arch.csv", index=False)
    result = {"table": rows, "config": record,
              "labels": {"truth": None if labels is None else str(Path(args.mock_dir) / runfiles.MOCK_TRUTH),
                         "galaxy_zoo": None if class_index is None else str(run / runfiles.CLASS_INDEX_CSV)},
              "note": "images/s: median over epochs on this machine (other processes may share the cores)"}
    write_json(result, out / "compare_arch.json")
    return {"table": table, "output": out, "result": result}


def print_table(table: pd.DataFrame) -> None:
    header = f"{'arch':<10}{'params':>9}{'GFLOP/img':>10}{'img/s':>8}{'val MSE/px':>12}{'SSIM':>7}{'RF truth':>9}{'RF GZ':>7}"
    print(header)
    for row in table.to_dict("records"):
        print(f"{row['arch']:<10}{row['parameters']:>9,}{row['train_gflop_per_image']:>10.3f}{row['train_images_per_s']:>8.0f}"
              f"{row['val_mse_per_pixel']:>12.5f}{row['val_ssim']:>7.3f}{row['rf_accuracy_truth']:>9.3f}"
              f"{row['rf_accuracy_gz']:>7.3f}")


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        outcome = compare(args)
    except (GalaxyVAEError, DataError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_table(outcome["table"])
    print(f"done: {len(outcome['table'])} architectures compared; written {outcome['output'] / 'compare_arch.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
