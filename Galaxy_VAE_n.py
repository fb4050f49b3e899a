"""Train the convolutional VAE on the images listed in RUN/train.txt.

READS   RUN/train.txt (written by make_datatxt.py)
WRITES  RUN/args.json                 full configuration, seed and git commit
        RUN/split.json                train/validation indices into train.txt
        RUN/cache/train_<S>px.npy     decode-once uint8 image cache (+ .json)
        RUN/checkpoint.pt             last epoch (model, optimizer, epoch, RNG), saved atomically
        RUN/best.pt                   best validation loss
        RUN/loss_history.csv|.png     per-epoch train/validation loss and images/s
        RUN/reconstructions.png       validation galaxies and their reconstructions

Reference setting (real DECaLS): 256 px, latent 40, Adam lr 1e-5, batch 512, 50 epochs, beta 1.
The demo (Makefile) uses 64 px, a larger learning rate and fewer epochs to fit 2 CPU cores.

    python Galaxy_VAE_n.py --run runs/demo
    python Galaxy_VAE_n.py --run runs/demo --resume            # continue after an interruption
    torchrun --nproc_per_node=4 Galaxy_VAE_n.py --run-dir runs/big  # several GPUs (DDP; after torchrun
                                                   # spell --run as --run-dir: torchrun owns --run-path)
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from VAE_model import runfiles
from VAE_model.data import DataError, image_cache, split_indices
from VAE_model.imageio import ImageError
from VAE_model.models import VAEConfig
from VAE_model.plots import save_image_grid, save_loss_curve
from VAE_model.runtime import (CheckpointError, add_runtime_arguments, barrier, cleanup_distributed, describe_args,
                               init_distributed, pick_device, pick_precision, seed_everything, write_json)
from VAE_model.training import NonFiniteLossError, TrainSettings, fit


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--latent-dim", type=int, default=40, help="latent vector size (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=256, help="image side in pixels, divisible by 64 (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=50, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=512, help="global batch size (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (default: %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="held-out fraction (default: %(default)s)")
    parser.add_argument("--no-augment", dest="augment", action="store_false", help="disable random flips/rotations")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    parser.add_argument("--amp", choices=["auto", "on", "off"], default="auto", help="mixed precision (auto: on CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers on CUDA (default: %(default)s)")
    parser.add_argument("--image-list", default=None, help="image list (default: RUN/train.txt)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def save_reconstructions(model, cache, indices, device, path, n: int = 8) -> None:
    chosen = np.asarray(indices)[:n]
    images = torch.from_numpy(np.ascontiguousarray(cache[np.sort(chosen)])).float().div(255).to(device)
    with torch.no_grad():
        reconstruction = model.eval()(images)[0].clamp(0, 1).cpu().numpy()
    originals = images.cpu().numpy()
    save_image_grid([list(originals), list(reconstruction)], path, row_labels=["input", "reconstruction"],
                    title="validation galaxies (g, r, z as blue, green, red)")


def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    dist = init_distributed(device)
    precision = pick_precision(device, args.amp)
    seed_everything(args.seed)
    run = args.run
    list_path = args.image_list or f"{run}/{runfiles.TRAIN_TXT}"
    try:
        runfiles.require(list_path, "make_datatxt.py --run " + run)
        config = VAEConfig(latent_dim=args.latent_dim, image_size=args.image_size)
        cache_dir = f"{run}/{runfiles.CACHE_DIR}"
        if dist.is_main:   # one process decodes the images; the others then open the same cache
            image_cache(list_path, args.image_size, cache_dir, progress=not args.quiet)
        barrier(dist)
        cache = image_cache(list_path, args.image_size, cache_dir, progress=False)
        train_idx, val_idx = split_indices(len(cache), args.val_fraction, args.seed)
        settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                                 augment=args.augment, seed=args.seed, workers=args.workers,
                                 # channels-last: faster convolutions with cuDNN and with oneDNN on CPU (~1.5x
                                 # measured at 64-128 px, bench/benchmark.py)
                                 channels_last=True, compile=args.compile)
        record = describe_args(args, device=str(device), precision=precision.describe(), world_size=dist.world_size,
                               n_train=len(train_idx), n_val=len(val_idx))
        if dist.is_main:
            write_json(record, runfiles.run_path(run, runfiles.TRAIN_ARGS))
            write_json({"seed": args.seed, "val_fraction": args.val_fraction, "train": train_idx, "val": val_idx},
                       runfiles.run_path(run, runfiles.SPLIT_JSON))
            print(f"training on {len(train_idx)} images ({len(val_idx)} validation), {args.image_size} px, "
                  f"latent {args.latent_dim}, {device} {precision.describe()}, {dist.world_size} process(es)")
        model, history = fit(run, cache, train_idx, val_idx, config, settings, device, precision, dist,
                             resume=args.resume, args_record=record, progress=not args.quiet)
    except (runfiles.MissingInputError, DataError, ImageError, NonFiniteLossError, CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        cleanup_distributed(dist)
        return 1
    if dist.is_main and history:
        save_loss_curve(history, runfiles.run_path(run, runfiles.LOSS_PNG))
        save_reconstructions(model, cache, val_idx if len(val_idx) else train_idx, device,
                             runfiles.run_path(run, runfiles.RECON_PNG))
        last = history[-1]
        print(f"done: {len(history)} epochs, final val loss {last.get('val_loss', float('nan')):.2f}, "
              f"val MSE/pixel {last.get('val_mse_per_pixel', float('nan')):.5f}, {last['images_per_s']:.0f} images/s; "
              f"checkpoints in {run}")
    cleanup_distributed(dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
