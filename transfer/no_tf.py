"""Part II, step 2: the no-transfer baseline -- how the Part I (DECaLS) model sees BASS+MzLS images.

Both images of every pair are encoded with the Part I model (z = mu). On the TEST pairs:
  * latent distance (Euclidean on mu) between the two images of a galaxy vs between random
    non-matching pairs (DECaLS galaxy i, BASS+MzLS galaxy j != i), and their ratio (scale-free);
  * retrieval: for each BASS+MzLS image, the rank of its DECaLS counterpart among all DECaLS test
    galaxies (top-1, top-10 fractions, median rank);
  * classification transfer: a random forest trained on the DECaLS latents of the TRAIN pairs
    (labels: Galaxy Zoo DECaLS classes, morph_classes, t = 0.6) scored on the test pairs' DECaLS
    latents and on their BASS+MzLS latents;
  * quality guards: DECaLS reconstruction MSE per pixel (Part I validation split, test pairs) and
    the mean per-dimension variance of mu (test DECaLS images).
The same code (VAE_model.adaptation.evaluate_model) scores the adapted models in transfer/evaluate.py.

READS   RUN/best.pt (or --checkpoint), RUN/transfer/pairs.csv, decals_pairs.txt, bass_pairs.txt,
        pair_labels.csv (transfer/make_pairs.py); RUN/train.txt + RUN/split.json (Part I validation)
WRITES  RUN/transfer/metrics_before.json       metrics + configuration
        RUN/transfer/mu_decals_before.npy      mu of the DECaLS images, rows as pairs.csv
        RUN/transfer/mu_bass_before.npy        mu of the BASS+MzLS images
        RUN/transfer/distances_before.csv      per pair: latent distance, retrieval rank (test)
        RUN/transfer/distance_before.png       paired vs random-pair distance histogram
        RUN/transfer/pairs_most_alike.png      test pairs with the smallest latent distance
        RUN/transfer/pairs_least_alike.png     test pairs with the largest latent distance
        RUN/cache/{decals,bass}_pairs_<S>px/    decode-once caches of the pair images (shards + meta.json)

Next: transfer/adapt.py --method mmd and --method paired.

    python transfer/no_tf.py --run runs/demo
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from VAE_model.cli_args import add_amp_argument, add_quiet_argument, add_runtime_arguments, cli_main, describe_args


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--checkpoint", default=None, help="Part I model (default: RUN/best.pt)")
    parser.add_argument("--gallery", type=int, default=8, help="pairs per alike/unalike gallery (default: %(default)s)")
    add_amp_argument(parser)
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np

from VAE_model import readers, runfiles
from VAE_model.adaptation import (distance_table, evaluate_model, pair_caches, part1_validation, require_test_pairs,
                                  random_pair_distances, read_pair_labels, save_distance_histograms,
                                  save_pair_gallery)
from VAE_model.readers import read_pairs
from VAE_model.stage import Stage
from VAE_model.runtime import load_model, pick_device, pick_precision, seed_everything, write_json


def summary_line(name: str, metrics: dict) -> str:
    d, r, c = metrics["distance"], metrics["retrieval"], metrics["classification"]
    forest = (f"RF accuracy DECaLS {c['mean_accuracy_decals']:.3f} -> BASS+MzLS {c['mean_accuracy_bass']:.3f}"
              if c["questions"] else "no RF transfer score (no class question with two classes among the train pairs)")
    return (f"{name}: median paired distance {d['median_paired']:.3f} vs random {d['median_random']:.3f} "
            f"(ratio {d['ratio_median_paired_to_random']:.3f}); retrieval top-1 {r['top1']:.3f}, top-10 {r['top10']:.3f}, "
            f"median rank {r['median_rank']:.0f} of {r['n_candidates']}; {forest}")


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    seed_everything(args.seed)
    device = pick_device(args.device)
    precision = pick_precision(device, args.amp)
    run = args.run
    with Stage(run, "transfer/no_tf.py", args) as stage:
        checkpoint = readers.external_checkpoint(run, args.checkpoint) if args.checkpoint else readers.checkpoint_path(run)
        model = load_model(checkpoint, device)
        pairs = read_pairs(run)
        # too few test pairs: refused before any image is encoded
        require_test_pairs(int((pairs["split"] == "test").sum()), str(Path(run) / runfiles.TRANSFER_PAIRS_CSV))
        decals_cache, bass_cache = pair_caches(run, model.config.image_size, len(pairs), progress=not args.quiet)
        labels = read_pair_labels(run, pairs)
        part1 = part1_validation(run, model.config.image_size, progress=not args.quiet)
        metrics, mu_decals, mu_bass = evaluate_model(model, pairs, decals_cache, bass_cache, labels, device, precision,
                                                     part1, seed=args.seed)
        np.save(runfiles.run_path(run, runfiles.TRANSFER_MU_DECALS_BEFORE), mu_decals)
        np.save(runfiles.run_path(run, runfiles.TRANSFER_MU_BASS_BEFORE), mu_bass)
        distances = distance_table(pairs, mu_decals, mu_bass)
        distances.to_csv(runfiles.run_path(run, runfiles.TRANSFER_DISTANCES_BEFORE), index=False, float_format="%.6f")
        test = (pairs["split"] == "test").to_numpy()
        random = random_pair_distances(mu_decals[test], mu_bass[test], seed=args.seed)
        save_distance_histograms({"no transfer": (distances["latent_distance"].to_numpy()[test], random)},
                                 runfiles.run_path(run, runfiles.TRANSFER_DISTANCE_BEFORE_PNG), normalise=False)
        save_pair_gallery(distances, decals_cache, bass_cache, runfiles.run_path(run, runfiles.TRANSFER_MOST_ALIKE_PNG),
                          most_alike=True, n=args.gallery)
        save_pair_gallery(distances, decals_cache, bass_cache, runfiles.run_path(run, runfiles.TRANSFER_LEAST_ALIKE_PNG),
                          most_alike=False, n=args.gallery)
        record = describe_args(args, checkpoint=str(Path(checkpoint).resolve()), device=str(device),
                               precision=precision.describe(), latent_dim=model.config.latent_dim,
                               image_size=model.config.image_size)
        write_json({**metrics, "config": record}, runfiles.run_path(run, runfiles.TRANSFER_METRICS_BEFORE))
        stage.settings = record
    print(summary_line("done (no transfer)", metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
