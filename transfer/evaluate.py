"""Part II, step 4: score the adapted models with the no-transfer metrics; pick THE adapted model.

Each method's RUN/transfer/<method>/best.pt is scored exactly as transfer/no_tf.py scored the
Part I model (VAE_model.adaptation.evaluate_model, same test pairs, same seed). Latent distances
alone can mislead -- a model that shrinks its latent space shrinks every distance -- so the
methods are compared on the SCALE-FREE metrics: paired / random-pair distance ratio, retrieval
top-1, top-10 and median rank, and the random-forest accuracy on BASS+MzLS latents. The better
method wins more of these five (ties: the lower distance ratio); a method whose Part I
reconstruction MSE rose by more than x1.2 or whose latent variance fell below half of Part I's is
only chosen when no method passes these guards.

READS   RUN/transfer/metrics_before.json (transfer/no_tf.py), RUN/transfer/<method>/best.pt
        (transfer/adapt.py), pairs.csv + pair lists + pair_labels.csv, RUN/train.txt + split.json
WRITES  RUN/transfer/<method>/metrics.json, mu_decals.npy, mu_bass.npy, distances.csv
        RUN/transfer/before_after.csv|.md    metric x (no transfer, then each method with a best.pt:
                                             mmd, paired, consistency, consistency_mmd)
        RUN/transfer/distance_hist.png       paired vs random distances / random median, per model
        RUN/transfer/adapted.pt              copy of the better method's best.pt: THE adapted model
        RUN/transfer/adapted.json            which method, the vote, the configuration

    python transfer/evaluate.py --run runs/demo
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from VAE_model.cli_args import add_amp_argument, add_quiet_argument, add_runtime_arguments, cli_main, describe_args
from VAE_model.config import ADAPT_METHODS as METHODS

BASELINE = "no transfer"
# (table row, True if larger is better): the scale-free comparison of the methods
SCALE_FREE = [("paired / random distance ratio", False), ("retrieval top-1 fraction", True),
              ("retrieval top-10 fraction", True), ("retrieval median rank", False),
              ("RF accuracy on BASS+MzLS latents (mean)", True)]
MAX_MSE_INCREASE = 1.2
MIN_VARIANCE_FRACTION = 0.5


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="adapted models to score, those with a best.pt (default: %(default)s)")
    add_amp_argument(parser)
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import readers, runfiles
from VAE_model.adaptation import (distance_table, evaluate_model, metrics_row, pair_caches, require_test_pairs,
                                  part1_validation, random_pair_distances, read_pair_labels, save_distance_histograms)
from VAE_model.errors import MissingInputError
from VAE_model.files import copy_file
from VAE_model.readers import read_pairs
from VAE_model.stage import Stage
from VAE_model.runtime import load_model, pick_device, pick_precision, seed_everything, write_json


def passes_guards(row: dict, baseline: dict) -> bool:
    """Part I quality kept: recon MSE within x1.2 of Part I's, latent variance >= half of Part I's."""
    mse_key = "DECaLS recon MSE/pixel (Part I val)"
    if math.isnan(row[mse_key]):
        mse_key = "DECaLS recon MSE/pixel (test pairs)"
    variance_key = "latent variance (test DECaLS)"
    return (row[mse_key] <= MAX_MSE_INCREASE * baseline[mse_key]
            and row[variance_key] >= MIN_VARIANCE_FRACTION * baseline[variance_key])


def choose_method(rows: dict[str, dict]) -> tuple[str, dict]:
    """The better adapted model by the scale-free metrics (see the module docstring).

    rows: {BASELINE: table row, method: table row, ...}; returns (method, details)."""
    methods = [name for name in rows if name != BASELINE]
    ok = [m for m in methods if passes_guards(rows[m], rows[BASELINE])] or methods
    wins = {m: 0 for m in methods}
    for key, larger_better in SCALE_FREE:
        values = {m: rows[m][key] for m in ok if not math.isnan(rows[m][key])}
        if len(values) < 2:
            continue
        best = max(values.values()) if larger_better else min(values.values())
        winners = [m for m, v in values.items() if v == best]
        if len(winners) == 1:
            wins[winners[0]] += 1
    ratio = "paired / random distance ratio"
    winner = max(ok, key=lambda m: (wins[m], -rows[m][ratio]))
    beats_baseline = {key: (rows[winner][key] > rows[BASELINE][key]) if larger else (rows[winner][key] < rows[BASELINE][key])
                      for key, larger in SCALE_FREE if not math.isnan(rows[winner][key])}
    w, b = rows[winner], rows[BASELINE]
    # separated 95% bootstrap intervals (test galaxies resampled): a change larger than the noise
    significant = {
        "distance ratio": bool(w["distance ratio 95% interval, high"] < b["distance ratio 95% interval, low"]
                               or w["distance ratio 95% interval, low"] > b["distance ratio 95% interval, high"]),
        "retrieval top-1": bool(w["retrieval top-1 95% interval, low"] > b["retrieval top-1 95% interval, high"]
                                or w["retrieval top-1 95% interval, high"] < b["retrieval top-1 95% interval, low"]),
    }
    return winner, {"wins": wins, "passes_guards": {m: m in ok for m in methods},
                    "winner_beats_no_transfer": beats_baseline, "winner_change_exceeds_95pct_intervals": significant}


def markdown_table(table: pd.DataFrame, winner: str, details: dict) -> str:
    columns = list(table.columns)
    lines = ["| metric | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for metric, row in table.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float) and math.isnan(value):
                cells.append("n/a")
            elif isinstance(value, float) and abs(value) < 0.01 and value != 0:
                cells.append(f"{value:.2e}")
            else:
                cells.append(f"{value:.3f}" if isinstance(value, float) else str(value))
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    wins = ", ".join(f"{m} {n}" for m, n in details["wins"].items())
    lines += ["", f"Better method by the scale-free metrics (distance ratio, retrieval top-1/top-10/median rank, "
                  f"RF accuracy on BASS+MzLS): **{winner}** (wins: {wins}); "
                  f"its best.pt is copied to `{runfiles.TRANSFER_ADAPTED}`.",
              "", "Change of the better method vs no transfer larger than the 95% bootstrap intervals "
                  "(test galaxies resampled): " + ", ".join(f"{k}: {'yes' if v else 'no'}"
                                                            for k, v in details["winner_change_exceeds_95pct_intervals"].items()),
              "", f"Quality guards passed (Part I recon MSE within x{MAX_MSE_INCREASE}, latent variance >= "
                  f"{MIN_VARIANCE_FRACTION} x Part I's): " + ", ".join(f"{m}: {'yes' if v else 'no'}"
                                                                     for m, v in details["passes_guards"].items())]
    return "\n".join(lines) + "\n"


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    seed_everything(args.seed)
    device = pick_device(args.device)
    precision = pick_precision(device, args.amp)
    run = args.run
    with Stage(run, "transfer/evaluate.py", args):
        # the no-transfer baseline and every adapted model must come from the current Part I model and pairs
        before = readers.read_json(run, runfiles.TRANSFER_METRICS_BEFORE, readers.NO_TRANSFER)
        methods = [m for m in args.methods if (Path(run) / runfiles.ADAPT_BEST.format(method=m)).exists()]
        if not methods:
            raise MissingInputError(f"{Path(run) / runfiles.ADAPT_DIR.format(method=args.methods[0])}/best.pt: "
                                    f"not found; run `transfer/adapt.py --run {run} --method mmd` first")
        part1_model = readers.checkpoint_path(run)
        checkpoints = {m: readers.checkpoint_path(run, runfiles.ADAPT_BEST.format(method=m), readers.ADAPT) for m in methods}
        pairs = read_pairs(run)
        require_test_pairs(int((pairs["split"] == "test").sum()), str(Path(run) / runfiles.TRANSFER_PAIRS_CSV))
        image_size = int(before["config"]["image_size"])
        decals_cache, bass_cache = pair_caches(run, image_size, len(pairs), progress=not args.quiet)
        labels = read_pair_labels(run, pairs)
        part1 = part1_validation(run, image_size, progress=False)
        test = (pairs["split"] == "test").to_numpy()
        mu_d0 = np.load(readers.checked(run, runfiles.TRANSFER_MU_DECALS_BEFORE, readers.NO_TRANSFER))
        mu_b0 = np.load(readers.checked(run, runfiles.TRANSFER_MU_BASS_BEFORE, readers.NO_TRANSFER))
        panels = {BASELINE: (distance_table(pairs, mu_d0, mu_b0)["latent_distance"].to_numpy()[test],
                             random_pair_distances(mu_d0[test], mu_b0[test], seed=args.seed))}
        rows = {BASELINE: metrics_row(before)}
        for method in methods:
            checkpoint = checkpoints[method]
            model = load_model(checkpoint, device)
            metrics, mu_d, mu_b = evaluate_model(model, pairs, decals_cache, bass_cache, labels, device, precision,
                                                 part1, seed=args.seed)
            np.save(runfiles.run_path(run, runfiles.ADAPT_MU_DECALS.format(method=method)), mu_d)
            np.save(runfiles.run_path(run, runfiles.ADAPT_MU_BASS.format(method=method)), mu_b)
            distances = distance_table(pairs, mu_d, mu_b)
            distances.to_csv(runfiles.run_path(run, runfiles.ADAPT_DISTANCES_CSV.format(method=method)), index=False,
                             float_format="%.6f")
            write_json({**metrics, "config": describe_args(args, checkpoint=str(checkpoint.resolve()), method=method)},
                       runfiles.run_path(run, runfiles.ADAPT_METRICS_JSON.format(method=method)))
            panels[method] = (distances["latent_distance"].to_numpy()[test],
                              random_pair_distances(mu_d[test], mu_b[test], seed=args.seed))
            rows[method] = metrics_row(metrics)
        table = pd.DataFrame(rows)
        table.index.name = "metric"
        winner, details = choose_method(rows)
        table.to_csv(runfiles.run_path(run, runfiles.TRANSFER_BEFORE_AFTER_CSV), float_format="%.6g")
        runfiles.run_path(run, runfiles.TRANSFER_BEFORE_AFTER_MD).write_text(markdown_table(table, winner, details))
        save_distance_histograms(panels, runfiles.run_path(run, runfiles.TRANSFER_DISTANCE_HIST_PNG), normalise=True)
        source = Path(run) / runfiles.ADAPT_BEST.format(method=winner)
        copy_file(source, runfiles.run_path(run, runfiles.TRANSFER_ADAPTED))
        write_json({"method": winner, "source": str(source.resolve()), "adapted": str((Path(run) / runfiles.TRANSFER_ADAPTED).resolve()),
                    **details, "rule": "most wins on the scale-free metrics among models passing the quality guards",
                    "scale_free_metrics": [key for key, _ in SCALE_FREE], "config": describe_args(args)},
                   runfiles.run_path(run, runfiles.TRANSFER_ADAPTED_JSON))
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    r = rows[winner]
    print(f"done: better method {winner} (wins {details['wins']}): distance ratio "
          f"{rows[BASELINE]['paired / random distance ratio']:.3f} -> {r['paired / random distance ratio']:.3f}, "
          f"retrieval top-1 {rows[BASELINE]['retrieval top-1 fraction']:.3f} -> {r['retrieval top-1 fraction']:.3f} "
          f"(beyond the 95% intervals: {details['winner_change_exceeds_95pct_intervals']}); "
          f"adapted model -> {Path(run) / runfiles.TRANSFER_ADAPTED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
