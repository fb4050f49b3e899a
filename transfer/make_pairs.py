"""Part II, step 1: pair the galaxies seen by both DECaLS and BASS+MzLS, split them by galaxy.

The two surveys have their own astrometry (BASS+MzLS names differ from DECaLS names), so the
catalogs are cross-matched on the sky (astropy, nearest neighbour within --radius-arcsec; a
BASS+MzLS source claimed by two DECaLS galaxies goes to the closer one). A pair is kept when
both images exist (<folder>/<iauname>.fits, or .fits.gz/.fz/.png/.jpg) and pass
``imageio.validate_image`` at the model's image size; the others are listed with the reason.
The pairs are split by galaxy into train and test (seeded; no galaxy in both).

READS   --decals-catalog, --bass-catalog   iauname, ra, dec (+ Galaxy Zoo DECaLS vote fractions
                                           in the DECaLS catalog for the class labels)
        --decals-images, --bass-images     folders of <iauname>.fits cutouts
        RUN/best.pt                        only for the image size (or give --image-size)
WRITES  RUN/transfer/pairs.csv             pair_id, decals_iauname, bass_iauname, ra, dec (DECaLS),
                                           sep_arcsec, split, decals_path, bass_path
        RUN/transfer/decals_pairs.txt      DECaLS image paths, one per line, row-aligned with pairs.csv
        RUN/transfer/bass_pairs.txt        BASS+MzLS image paths, row-aligned (decode-once caches)
        RUN/transfer/pair_labels.csv       pair_id + DECaLS class label per class question (t = --threshold)
        RUN/transfer/skipped_pairs.csv     matched galaxies left out, with the reason
        RUN/transfer/pairs_summary.json    counts + configuration (flags, seed, git commit)
        RUN/transfer/pairs_examples.png    example pairs, DECaLS above BASS+MzLS

Next: transfer/no_tf.py (the no-transfer baseline).

    python transfer/make_pairs.py --run runs/demo
    python transfer/make_pairs.py --run runs/decals --decals-catalog gz_decals.parquet \\
        --bass-catalog gz_bass_mzls.parquet --decals-images /data/decals --bass-images /data/bass_mzls
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from VAE_model import runfiles
from VAE_model.cli_args import add_runtime_arguments, add_workers_argument, cli_main, describe_args
from VAE_model.config import DEFAULT_THRESHOLD

MOCK = runfiles.DEFAULT_MOCK_DIR
IMAGE_SUFFIXES = (".fits", ".fits.gz", ".fits.fz", ".fz", ".fit", ".png", ".jpg", ".jpeg")
PAIR_COLUMNS = ["pair_id", "decals_iauname", "bass_iauname", "ra", "dec", "sep_arcsec", "split", "decals_path", "bass_path"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--decals-catalog", default=f"{MOCK}/{runfiles.MOCK_DECALS_CATALOG}",
                        help="DECaLS catalog with iauname, ra, dec and vote fractions (default: %(default)s)")
    parser.add_argument("--bass-catalog", default=f"{MOCK}/{runfiles.MOCK_BASS_CATALOG}",
                        help="BASS+MzLS catalog with iauname, ra, dec (default: %(default)s)")
    parser.add_argument("--decals-images", default=f"{MOCK}/{runfiles.MOCK_DECALS_IMAGES}",
                        help="folder of DECaLS cutouts named <iauname>.fits (default: %(default)s)")
    parser.add_argument("--bass-images", default=f"{MOCK}/{runfiles.MOCK_BASS_IMAGES}",
                        help="folder of BASS+MzLS cutouts named <iauname>.fits (default: %(default)s)")
    parser.add_argument("--radius-arcsec", type=float, default=1.0,
                        help="cross-match radius in arcsec (default: %(default)s; survey astrometry agrees to ~0.1-0.3\")")
    parser.add_argument("--test-fraction", type=float, default=0.3, help="fraction of pairs held out for testing (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="validate images at this size (default: the image size of --checkpoint)")
    parser.add_argument("--checkpoint", default=None, help="Part I model, for its image size (default: RUN/best.pt)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="vote-fraction threshold of the class labels (default: %(default)s, as in the reference study)")
    parser.add_argument("--examples", type=int, default=8, help="pairs shown in pairs_examples.png (default: %(default)s)")
    add_workers_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import provenance, readers
from VAE_model.catalog import CatalogError, cross_match, read_catalog
from VAE_model.data import write_image_list
from VAE_model.image_scan import validate_all
from VAE_model.imageio import ImageError, is_image_file, load_image
from VAE_model.morph_classes import available_questions, class_labels, skipped_line
from VAE_model.stage import Stage
from VAE_model.runtime import CheckpointError, load_checkpoint, write_json


def match_catalogs(decals: pd.DataFrame, bass: pd.DataFrame, radius_arcsec: float) -> pd.DataFrame:
    """One row per DECaLS galaxy with a BASS+MzLS counterpart within the radius (one-to-one:
    a BASS+MzLS source matched by two DECaLS galaxies stays with the closer). DECaLS order."""
    index, sep = cross_match(decals["ra"], decals["dec"], bass["ra"], bass["dec"], radius_arcsec)
    matched = np.flatnonzero(index >= 0)
    table = pd.DataFrame({"decals_row": matched, "decals_iauname": decals["iauname"].to_numpy()[matched],
                          "bass_iauname": bass["iauname"].to_numpy()[index[matched]],
                          "ra": decals["ra"].to_numpy(float)[matched], "dec": decals["dec"].to_numpy(float)[matched],
                          "sep_arcsec": sep[matched]})
    table = table.sort_values("sep_arcsec", kind="stable").drop_duplicates("bass_iauname", keep="first")
    return table.sort_values("decals_row").reset_index(drop=True)


def find_image(folder: str | Path, name: str) -> Path | None:
    """<folder>/<name><suffix> for the first image suffix that exists, else None."""
    for suffix in IMAGE_SUFFIXES:
        path = Path(folder) / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def attach_images(matches: pd.DataFrame, decals_images, bass_images, image_size: int,
                  workers: int | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Keep the matches whose two images exist and validate; return (kept, skipped with reasons)."""
    found = {}
    for survey, folder, column in (("DECaLS", decals_images, "decals_iauname"), ("BASS+MzLS", bass_images, "bass_iauname")):
        found[survey] = [find_image(folder, name) for name in matches[column]]
    to_check = sorted({str(p) for paths in found.values() for p in paths if p is not None})
    _, rejected = validate_all([Path(p) for p in to_check], image_size, workers)
    reasons = {path: reason for path, reason in rejected}
    kept, skipped = [], []
    for i, row in enumerate(matches.itertuples(index=False)):
        problems = []
        for survey in ("DECaLS", "BASS+MzLS"):
            path = found[survey][i]
            if path is None:
                problems.append(f"{survey}: no image")
            elif os.path.abspath(path) in reasons:  # validate_all keys: absolute, links not resolved
                problems.append(f"{survey}: {reasons[os.path.abspath(path)]}")
        if problems:
            skipped.append({"decals_iauname": row.decals_iauname, "bass_iauname": row.bass_iauname,
                            "reason": "; ".join(problems)})
        else:
            kept.append(i)
    table = matches.iloc[kept].reset_index(drop=True)
    table["decals_path"] = [str(found["DECaLS"][i].resolve()) for i in kept]
    table["bass_path"] = [str(found["BASS+MzLS"][i].resolve()) for i in kept]
    return table, skipped


def split_pairs(n_pairs: int, test_fraction: float, seed: int) -> np.ndarray:
    """'train'/'test' per pair: a seeded random test set of round(n * test_fraction) galaxies
    (at least one of each when n >= 2)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"--test-fraction must lie in (0, 1), got {test_fraction}")
    n_test = int(round(n_pairs * test_fraction))
    if n_pairs >= 2:
        n_test = min(max(n_test, 1), n_pairs - 1)
    split = np.full(n_pairs, "train", dtype=object)
    split[np.random.default_rng(seed).permutation(n_pairs)[:n_test]] = "test"
    return split


def pair_labels(decals: pd.DataFrame, pairs: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, str]:
    """pair_id + the DECaLS class label per class question the catalog has the columns for (empty
    where none), and a note naming the questions skipped (a partial catalog keeps the others)."""
    questions, skipped = available_questions(decals)
    table = pd.DataFrame({"pair_id": pairs["pair_id"].to_numpy()})
    rows = decals.iloc[pairs["decals_row"].to_numpy()].reset_index(drop=True)
    for question in questions:
        table[question] = class_labels(rows, question, threshold).to_numpy()
    if not questions:
        return table, "DECaLS catalog has the vote-fraction columns of no class question: no class labels"
    return table, skipped_line(skipped) if skipped else ""


def save_examples(pairs: pd.DataFrame, image_size: int, path, n: int) -> None:
    from VAE_model.plots import save_image_grid

    chosen = pairs.head(n)
    decals = [load_image(p, image_size) for p in chosen["decals_path"]]
    bass = [load_image(p, image_size) for p in chosen["bass_path"]]
    labels = [f"{name[:10]}\n{sep:.2f}\"" for name, sep in zip(chosen["decals_iauname"], chosen["sep_arcsec"])]
    save_image_grid([decals, bass], path, row_labels=["DECaLS", "BASS+MzLS"], col_labels=labels,
                    title="the same galaxies in both surveys (cross-match separation)")


def model_image_size(args) -> int:
    if args.image_size:
        return args.image_size
    checkpoint = readers.external_checkpoint(args.run, args.checkpoint) if args.checkpoint \
        else readers.checkpoint_path(args.run)
    return int(load_checkpoint(checkpoint)["model_config"]["image_size"])


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    run = args.run
    with Stage(run, "transfer/make_pairs.py", args) as stage:
        try:
            image_size = model_image_size(args)
            decals = read_catalog(args.decals_catalog)
            bass = read_catalog(args.bass_catalog)
            for folder in (args.decals_images, args.bass_images):
                if not Path(folder).is_dir():
                    raise runfiles.MissingInputError(f"{folder}: image folder not found")
            matches = match_catalogs(decals, bass, args.radius_arcsec)
            pairs, skipped = attach_images(matches, args.decals_images, args.bass_images, image_size, args.workers)
            if len(pairs) < 2:
                raise runfiles.MissingInputError(f"only {len(pairs)} usable pairs (of {len(matches)} matches); "
                                                 "check the catalogs, folders and --radius-arcsec")
            pairs["split"] = split_pairs(len(pairs), args.test_fraction, args.seed)
        except (runfiles.MissingInputError, CatalogError, CheckpointError, ImageError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        pairs.insert(0, "pair_id", np.arange(len(pairs)))
        labels, note = pair_labels(decals, pairs, args.threshold)
        pairs[PAIR_COLUMNS].to_csv(runfiles.run_path(run, runfiles.TRANSFER_PAIRS_CSV), index=False, float_format="%.7f")
        write_image_list(pairs["decals_path"], runfiles.run_path(run, runfiles.TRANSFER_DECALS_LIST))
        write_image_list(pairs["bass_path"], runfiles.run_path(run, runfiles.TRANSFER_BASS_LIST))
        labels.to_csv(runfiles.run_path(run, runfiles.TRANSFER_PAIR_LABELS_CSV), index=False)
        with open(runfiles.run_path(run, runfiles.TRANSFER_SKIPPED_CSV), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["decals_iauname", "bass_iauname", "reason"])
            writer.writeheader()
            writer.writerows(skipped)
        save_examples(pairs, image_size, runfiles.run_path(run, runfiles.TRANSFER_EXAMPLES_PNG), args.examples)
        n_train, n_test = int((pairs["split"] == "train").sum()), int((pairs["split"] == "test").sum())
        summary = {"n_decals": len(decals), "n_bass": len(bass), "n_matched": len(matches),
                   "n_decals_unmatched": len(decals) - len(matches), "n_bass_unmatched": len(bass) - len(matches),
                   "n_skipped": len(skipped), "n_pairs": len(pairs), "n_train": n_train, "n_test": n_test,
                   "median_sep_arcsec": float(pairs["sep_arcsec"].median()), "max_sep_arcsec": float(pairs["sep_arcsec"].max()),
                   "image_size": image_size, "labels_note": note,
                   "n_labelled": {q: int(labels[q].notna().sum()) for q in labels.columns if q != "pair_id"}}
        write_json({**summary, "config": describe_args(args)}, runfiles.run_path(run, runfiles.TRANSFER_PAIRS_JSON))
        inputs = [provenance.Input.file(args.decals_catalog), provenance.Input.file(args.bass_catalog),
                  provenance.Input.folder(args.decals_images, is_image_file), provenance.Input.folder(args.bass_images, is_image_file),
                  provenance.Input.images(Path(run) / runfiles.TRANSFER_DECALS_LIST, list(pairs["decals_path"])),
                  provenance.Input.images(Path(run) / runfiles.TRANSFER_BASS_LIST, list(pairs["bass_path"]))]
        stage.uses(*inputs)
    for row in skipped[:5]:
        print(f"skipped {row['decals_iauname']} / {row['bass_iauname']}: {row['reason']}")
    if len(skipped) > 5:
        print(f"... {len(skipped) - 5} more in {Path(run) / runfiles.TRANSFER_SKIPPED_CSV}")
    if note:
        print(f"note: {note}")
    print(f"done: {len(matches)} of {len(decals)} DECaLS galaxies matched within {args.radius_arcsec}\" "
          f"(median {summary['median_sep_arcsec']:.2f}\"), {len(skipped)} skipped, {len(pairs)} pairs "
          f"({n_train} train, {n_test} test) -> {Path(run) / runfiles.TRANSFER_PAIRS_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
