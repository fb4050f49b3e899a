"""Train the convolutional VAE on the images listed in RUN/train.txt.

READS   RUN/train.txt (written by make_datatxt.py)
        RUN/latent_size/latent_size.json  only with --latent-dim auto (analysis/decals_2_3.py, run first)
WRITES  RUN/args.json                 full configuration, seed and git commit
        RUN/split.json                train/validation indices into train.txt
        RUN/cache/train_<S>px/        decode-once uint8 image cache (shards + meta.json)
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
import contextlib
import sys
from pathlib import Path

from VAE_model.cli_args import (add_amp_argument, add_batch_size_argument, add_quiet_argument, add_runtime_arguments,
                                add_workers_argument, cli_main, describe_args, fraction_below_one, image_side,
                                kl_weight, non_negative_float, positive_float, positive_int)
from VAE_model.config import ARCHITECTURES, POSE_MODES, TrainSettings, VAEConfig


def latent_dim_arg(text: str):
    """--latent-dim: a positive integer, or 'auto' (the latent-size study's choice)."""
    return "auto" if text == "auto" else positive_int(text)


def parse_args(argv=None) -> argparse.Namespace:
    # defaults: the reference setting, from the VAEConfig / TrainSettings dataclasses (one source)
    model = VAEConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--latent-dim", type=latent_dim_arg, default=model.latent_dim,
                        help="latent vector size, or 'auto': the size chosen by analysis/decals_2_3.py in "
                             "RUN/latent_size/latent_size.json (default: %(default)s)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default=model.arch,
                        help="decoder: 'reference' (the reference study's, layer for layer) or 'light' "
                             "(fewer FLOPs; see VAE_model/models.py) (default: %(default)s)")
    parser.add_argument("--pose", choices=POSE_MODES, default=model.pose,
                        help="'moments': pose-separated VAE, each galaxy encoded in the canonical pose measured from "
                             "its own light (centre, angle, mirror; VAE_model/pose.py), so mu is the content and the "
                             "pose is returned beside it; 'none': the plain VAE of the reference study "
                             "(default: %(default)s)")
    parser.add_argument("--consistency", type=non_negative_float, default=TrainSettings.consistency,
                        help="weight of the consistency term: each galaxy is also seen through random nuisance "
                             "transforms (any rotation, mirror, shift, BASS+MzLS-like seeing, depth and calibration; "
                             "VAE_model/nuisance.py) and its content latents are pulled to the original's; 0 = off "
                             "(default: %(default)s)")
    parser.add_argument("--pool-views", action="store_true",
                        help="pose-separated VAE: encode the four mirror/half-turn views of each galaxy pooled in "
                             "training, as encoding does, instead of one random view: lower reconstruction error, "
                             "about twice the training time on CPU, the same features (README, the variants' table)")
    parser.add_argument("--image-size", type=image_side, default=None,
                        help="image side in pixels, a multiple of 64 (default: the size make_datatxt.py validated)")
    parser.add_argument("--epochs", type=positive_int, default=TrainSettings.epochs, help="(default: %(default)s)")
    add_batch_size_argument(parser, TrainSettings.batch_size, "global batch size")
    parser.add_argument("--lr", type=positive_float, default=TrainSettings.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--beta", type=kl_weight, default=TrainSettings.beta,
                        help="weight of the KL term, or 'calibrated': twice the batch's reconstruction MSE per pixel, "
                             "the calibrated Gaussian decoder's (sigma-VAE) (default: %(default)s)")
    parser.add_argument("--val-fraction", type=fraction_below_one, default=TrainSettings.val_fraction,
                        help="held-out fraction, 0 <= f < 1 (default: %(default)s)")
    parser.add_argument("--no-augment", dest="augment", action="store_false", help="disable random flips/rotations")
    parser.add_argument("--resume", action="store_true",
                        help="continue from RUN/checkpoint.pt (refused if settings, image list or split changed)")
    add_amp_argument(parser)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--loader-workers", type=positive_int, default=TrainSettings.workers,
                        help="DataLoader worker processes on CUDA (default: %(default)s)")
    add_workers_argument(parser)
    parser.add_argument("--image-list", default=None, help="image list (default: RUN/train.txt)")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import torch

from VAE_model import readers, runfiles
from VAE_model.data import image_cache, read_image_list, split_indices
from VAE_model.errors import MissingInputError
from VAE_model.latent_size import read_chosen_latent_dim
from VAE_model.plots import save_image_grid, save_loss_curve
from VAE_model.runtime import (barrier, cleanup_distributed, ensure_run_dir, init_distributed, pick_device,
                               pick_precision, run_lock, seed_everything, write_json)
from VAE_model.stage import Stage, note_input
from VAE_model.training import data_identity, fit, resume_state


def save_reconstructions(model, cache, indices, device, path, n: int = 8) -> None:
    chosen = np.asarray(indices)[:n]
    images = torch.from_numpy(np.ascontiguousarray(cache[np.sort(chosen)])).float().div(255).to(device)
    with torch.no_grad():
        reconstruction = model.eval()(images)[0].clamp(0, 1).cpu().numpy()
    originals = images.cpu().numpy()
    save_image_grid([list(originals), list(reconstruction)], path, row_labels=["input", "reconstruction"],
                    title="validation galaxies (g, r, z as blue, green, red)")


def training_images(args) -> tuple[str, list[str], int]:
    """(list path, image paths, image size): RUN/train.txt checked current with its images, and the
    size make_datatxt.py validated them at unless --image-size is given."""
    run = args.run
    if args.image_list:
        list_path = args.image_list
        paths = read_image_list(list_path)
        note_input(run, *readers.train_list_input(list_path, paths))
    else:
        list_path = str(Path(run) / runfiles.TRAIN_TXT)
        paths = readers.read_train_list(run)
    image_size = args.image_size
    if image_size is None:
        summary = readers.read_json(run, runfiles.DATATXT_SUMMARY, readers.MAKE_DATATXT)
        if not summary.get("image_size"):
            raise MissingInputError(f"{Path(run) / runfiles.DATATXT_SUMMARY}: records no validated image size; "
                                    "give --image-size")
        image_size = int(summary["image_size"])
    return list_path, paths, image_size


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    dist = init_distributed(device)
    precision = pick_precision(device, args.amp)
    seed_everything(args.seed)
    run = str(ensure_run_dir(args.run))
    with contextlib.ExitStack() as stack:
        stack.callback(cleanup_distributed, dist)
        if dist.is_main:   # one training per run directory at a time
            stack.enter_context(run_lock(run))
        # the stage contract: records what training read and wrote (VAE_model/stage.py)
        stage = stack.enter_context(Stage(run, "Galaxy_VAE_n.py", args, active=dist.is_main,
                                          resume="continue with the same command and --resume (from its last checkpoint.pt)"))
        list_path, paths, image_size = training_images(args)
        latent_dim = args.latent_dim
        if latent_dim == "auto":
            latent_dim, _ = read_chosen_latent_dim(run)
            args.latent_dim = latent_dim      # args.json records the size used
            print(f"--latent-dim auto: {latent_dim}, chosen by the latent-size study ({run}/{runfiles.LATENT_SIZE_JSON})")
        config = VAEConfig(latent_dim=latent_dim, image_size=image_size, arch=args.arch, pose=args.pose,
                           framing=readers.model_framing(list_path, paths))
        # a split that leaves nothing to train on is refused before any image is decoded
        train_idx, val_idx = split_indices(len(paths), args.val_fraction, args.seed)
        cache_dir = f"{run}/{runfiles.CACHE_DIR}"
        if dist.is_main:   # one process decodes the images; the others then open the same cache
            image_cache(list_path, image_size, cache_dir, workers=args.workers, progress=not args.quiet)
        barrier(dist)
        cache = image_cache(list_path, image_size, cache_dir, progress=False)
        settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                                 val_fraction=args.val_fraction, augment=args.augment, seed=args.seed,
                                 workers=args.loader_workers, compile=args.compile, consistency=args.consistency,
                                 pool_views=args.pool_views,
                                 pixel_scale_arcsec=readers.images_pixel_scale(args.run, image_size))
        data = data_identity(list_path, paths, train_idx, val_idx)
        # a refused resume stops here, before args.json and split.json are touched
        state = resume_state(run, config, settings, data, device) if args.resume else None
        record = describe_args(args, image_size=image_size, device_used=str(device), precision=precision.describe(),
                               world_size=dist.world_size, n_train=len(train_idx), n_val=len(val_idx))
        stage.settings = record

        def record_outputs(history):   # after every epoch: the checkpoints stay usable if the run is killed
            outputs = [runfiles.TRAIN_ARGS, runfiles.SPLIT_JSON, runfiles.CHECKPOINT, runfiles.LOSS_CSV]
            if (Path(run) / runfiles.BEST_CHECKPOINT).exists():
                outputs.append(runfiles.BEST_CHECKPOINT)
            stage.record(outputs)

        if dist.is_main:
            write_json(record, runfiles.run_path(run, runfiles.TRAIN_ARGS))
            write_json({"seed": args.seed, "val_fraction": args.val_fraction, "train": train_idx, "val": val_idx},
                       runfiles.run_path(run, runfiles.SPLIT_JSON))
            print(f"training on {len(train_idx)} images ({len(val_idx)} validation), {image_size} px, "
                  f"latent {latent_dim} ({config.arch} decoder, pose {config.pose}, consistency {args.consistency:g}), {device} {precision.describe()}, {dist.world_size} process(es)")
        model, history = fit(run, cache, train_idx, val_idx, config, settings, device, precision, dist,
                             resume=args.resume, args_record=record, progress=not args.quiet, data=data,
                             start_state=state, on_epoch=record_outputs)
        if dist.is_main and history:
            save_loss_curve(history, runfiles.run_path(run, runfiles.LOSS_PNG))
            save_reconstructions(model, cache, val_idx if len(val_idx) else train_idx, device,
                                 runfiles.run_path(run, runfiles.RECON_PNG))
            last = history[-1]
            held_out = (f"final val loss {last['val_loss']:.2f}, val MSE/pixel {last['val_mse_per_pixel']:.5f}"
                        if "val_loss" in last else f"final train loss {last['train_loss']:.2f} (no validation split)")
            print(f"done: {len(history)} epochs, {held_out}, {last['images_per_s']:.0f} images/s; checkpoints in {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
