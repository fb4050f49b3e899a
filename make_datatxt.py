"""Scan an image folder, validate every cutout and write RUN/train.txt (one image path per line).

With ``--mock N`` the embedded default data (a GalSim mock survey of N galaxies, DECaLS-like
and BASS+MzLS-like images, Galaxy-Zoo-style catalogs, truth table) is rendered first into
``--mock-dir`` when absent or built with other settings, and its DECaLS images are scanned.

Every file is checked: readable FITS/PNG/JPG, 3 bands, square and at least --image-size
pixels, finite, not blank. Rejected files are listed with the reason; one bad file never
stops the run.

READS   --images DIR (FITS/PNG/JPG, searched recursively), or the mock survey
WRITES  RUN/train.txt                  accepted image paths, sorted
        RUN/rejected_images.csv        path, reason
        RUN/datatxt_summary.json       counts, settings, seed

    python make_datatxt.py --mock 1500 --image-size 64 --run runs/demo
    python make_datatxt.py --images /data/decals_cutouts --run runs/decals
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from VAE_model import runfiles
from VAE_model.data import write_image_list
from VAE_model.image_scan import find_images, validate_all
from VAE_model.runtime import add_runtime_arguments, describe_args, write_json


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--images", default=None, help="folder of cutouts (default with --mock: MOCK_DIR/decals)")
    parser.add_argument("--mock", type=int, default=0, metavar="N", help="render a mock survey of N galaxies first")
    parser.add_argument("--mock-dir", default=runfiles.DEFAULT_MOCK_DIR, help="mock survey folder (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=256, help="expected cutout side in px; mock render size (default: %(default)s)")
    parser.add_argument("--output", default=runfiles.TRAIN_TXT, help="list name inside RUN (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="processes for validation and rendering (default: all cores)")
    return parser.parse_args(argv)


def write_rejected(rejected: list[tuple[str, str]], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason"])
        writer.writerows(rejected)


def main(argv=None) -> int:
    args = parse_args(argv)
    images = args.images
    if args.mock:
        from VAE_model.mock_survey import build_mock_survey, mock_is_current

        if not mock_is_current(args.mock_dir, args.mock, args.image_size, args.seed):
            build_mock_survey(args.mock_dir, args.mock, image_size=args.image_size, seed=args.seed, workers=args.workers)
        else:
            print(f"mock survey in {args.mock_dir} is current ({args.mock} galaxies, {args.image_size} px, seed {args.seed})")
        images = images or str(Path(args.mock_dir) / runfiles.MOCK_DECALS_IMAGES)
    if not images:
        print("error: give --images DIR or --mock N", file=sys.stderr)
        return 2
    try:
        paths = find_images(images)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not paths:
        print(f"error: {images}: no FITS/PNG/JPG files found", file=sys.stderr)
        return 1
    accepted, rejected = validate_all(paths, args.image_size, args.workers)
    output = runfiles.run_path(args.run, args.output)
    write_image_list(accepted, output)
    write_rejected(rejected, runfiles.run_path(args.run, runfiles.REJECTED_CSV))
    summary = {"images_dir": str(images), "n_found": len(paths), "n_accepted": len(accepted),
               "n_rejected": len(rejected), "list": str(output), **describe_args(args)}
    write_json(summary, runfiles.run_path(args.run, runfiles.DATATXT_SUMMARY))
    print(f"{output}: {len(accepted)} images accepted, {len(rejected)} rejected "
          f"(see {runfiles.run_path(args.run, runfiles.REJECTED_CSV)})")
    return 0 if accepted else 1


if __name__ == "__main__":
    sys.exit(main())
