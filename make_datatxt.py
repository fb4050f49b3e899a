"""Scan an image folder, validate every cutout and write RUN/train.txt (one image path per line).

With ``--mock N`` the embedded default data (a GalSim mock survey of N galaxies, DECaLS-like
and BASS+MzLS-like images, Galaxy-Zoo-style catalogs, truth table) is rendered first into
``--mock-dir`` when absent or built with other settings, and its DECaLS images are scanned.

Every file is read by the one loader (``VAE_model/imageio.py``) as it is served: bands g, r, z
picked from the BAND<i>/BANDS cards (a cube without them is taken as g, r, z and marked
``assumed``), sky position from the WCS (RA/DEC cards as fallback), pixel scale from the WCS or
PIXSCALE. It must be square and at least --image-size pixels, not blank, and have at most
--max-masked-fraction of any band masked (NaN/inf or exactly 0: no coverage); fewer masked pixels
are filled with the sky level and counted. Rejected files are listed with the reason; one bad
file never stops the run. Paths are absolute but symbolic links are kept, not resolved, so a
link ``<iauname>.fits -> store/img7.fits`` keeps its name.

Pixel scale: the native Legacy Survey pixel is 0.262 arcsec (Dey et al. 2019). A WARNING line is
printed (and kept in the summary) when images differ from it, or from each other, by more than
5%. With --resample-to-native every FITS off the native scale by more than 5% is resampled to
0.262 arcsec/pixel (``imageio.resample_fits``: same centre and field of view, new WCS) and written
to RUN/resampled/<path relative to --images>; train.txt then lists those files.

READS   --images DIR (FITS/PNG/JPG, searched recursively, links followed), or the mock survey
WRITES  RUN/train.txt                  accepted image paths, sorted
        RUN/rejected_images.csv        path, reason
        RUN/images.csv                 per accepted image: path, name, ra, dec, position_source,
                                       pixel_scale_arcsec, scale_source, bands, band_source,
                                       masked_fraction, shape, source_path (before resampling)
        RUN/datatxt_summary.json       counts, pixel scales (min/median/max), warnings, settings, seed
        RUN/resampled/                 with --resample-to-native only

    python make_datatxt.py --mock 1500 --image-size 64 --run runs/demo
    python make_datatxt.py --images /data/decals_cutouts --run runs/decals
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from VAE_model import runfiles
from VAE_model.cli_args import (add_quiet_argument, add_runtime_arguments, add_workers_argument, cli_main,
                                describe_args, fraction_below_one)
from VAE_model.errors import Interrupted
from VAE_model.image_scan import find_images, scan_images
from VAE_model.imageio import (DEFAULT_MAX_MASKED_FRACTION, PIXEL_SCALE_ARCSEC, PIXEL_SCALE_TOLERANCE, ImageError,
                               header_pixel_scale, image_stem, is_fits, read_header,
                               resample_fits)
from VAE_model.readers import write_train_list


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--images", default=None, help="folder of cutouts (default with --mock: MOCK_DIR/decals)")
    parser.add_argument("--mock", type=int, default=0, metavar="N", help="render a mock survey of N galaxies first")
    parser.add_argument("--mock-dir", default=runfiles.DEFAULT_MOCK_DIR, help="mock survey folder (default: %(default)s)")
    parser.add_argument("--mock-gap", type=float, default=1.0,
                        help="mock north/south difference: 0 identical surveys, 1 realistic BASS+MzLS, 2 harsher "
                             "(default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=256, help="expected cutout side in px; mock render size (default: %(default)s)")
    parser.add_argument("--output", default=runfiles.TRAIN_TXT, help="list name inside RUN (default: %(default)s)")
    add_workers_argument(parser)
    parser.add_argument("--max-masked-fraction", type=fraction_below_one, default=DEFAULT_MAX_MASKED_FRACTION,
                        help="largest fraction of a band that may be masked (NaN/inf or exactly 0, no coverage); "
                             "such pixels are filled with the sky level (default: %(default)s, Galaxy Zoo DECaLS' limit)")
    parser.add_argument("--resample-to-native", action="store_true",
                        help=f"resample FITS cutouts off {PIXEL_SCALE_ARCSEC} arcsec/pixel by more than "
                             f"{PIXEL_SCALE_TOLERANCE:.0%}% to it, into RUN/{runfiles.RESAMPLED_DIR}/, and list those")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


IMAGE_COLUMNS = ["path", "name", "ra", "dec", "position_source", "pixel_scale_arcsec", "scale_source", "bands",
                 "band_source", "masked_fraction", "shape", "source_path"]


def off_native(scale: float) -> bool:
    return bool(np.isfinite(scale) and abs(scale / PIXEL_SCALE_ARCSEC - 1) > PIXEL_SCALE_TOLERANCE)


def resample_off_native(paths: list[Path], images_dir: str, run: str, progress: bool = True) -> tuple[list[Path], dict]:
    """Replace every FITS off the native scale by its resampled copy under RUN/resampled/.

    Returns (paths to validate, {resampled path: original path}); unreadable files are left for
    the validation to report."""
    from tqdm import tqdm

    out_dir = Path(run) / runfiles.RESAMPLED_DIR
    result, source = [], {}
    for path in tqdm(paths, desc="check pixel scales", unit="img", disable=not progress):
        try:
            scale = header_pixel_scale(read_header(path))[0] if is_fits(path) else float("nan")
        except ImageError:
            scale = float("nan")
        if not off_native(scale):
            result.append(path)
            continue
        target = out_dir / Path(os.path.relpath(os.path.abspath(path), os.path.abspath(images_dir)))
        if not target.name.lower().endswith(".fits"):
            target = target.with_name(image_stem(target) + ".fits")
        try:
            resample_fits(path, target, PIXEL_SCALE_ARCSEC)
        except ImageError:
            result.append(path)  # validation gives the reason
            continue
        result.append(target)
        source[os.path.abspath(target)] = os.path.abspath(path)
    return result, source


def image_table(infos, source: dict) -> list[dict]:
    rows = []
    for info in infos:
        # positions to 1e-8 deg (0.04 mas); scales and fractions to 6 significant digits
        row = {k: (round(v, 8) if k.endswith("_deg") else float(f"{v:.6g}")) if isinstance(v, float) else v
               for k, v in info.row().items()}
        rows.append({"path": info.path, "name": image_stem(info.path), "ra": row["ra_deg"],
                     "dec": row["dec_deg"], **{k: row[k] for k in IMAGE_COLUMNS[4:-1]},
                     "source_path": source.get(info.path, info.path)})
    return rows


def pixel_scale_summary(rows: list[dict]) -> tuple[dict, list[str]]:
    """min/median/max of the known pixel scales and the WARNING lines they call for."""
    scales = np.array([r["pixel_scale_arcsec"] for r in rows], dtype=float)
    known = scales[np.isfinite(scales)]
    summary = {"n_known": int(len(known)), "n_unknown": int(len(scales) - len(known))}
    warnings = []
    if len(known):
        low, median, high = (float(v) for v in np.percentile(known, [0, 50, 100]))
        summary.update(min=low, median=median, max=high)
        off = int(sum(off_native(s) for s in known))
        if off:
            warnings.append(f"WARNING: {off} of {len(known)} images are not at the native {PIXEL_SCALE_ARCSEC} arcsec/pixel "
                            f"(by more than {PIXEL_SCALE_TOLERANCE:.0%}; scales {low:.4f}-{high:.4f}, median {median:.4f}): "
                            "galaxies look larger than in native cutouts; --resample-to-native brings them to "
                            f"{PIXEL_SCALE_ARCSEC} (see RUN/{runfiles.IMAGES_CSV})")
        if (high - low) / median > PIXEL_SCALE_TOLERANCE:
            warnings.append(f"WARNING: pixel scales vary across the images by {(high - low) / median:.0%} "
                            f"({low:.4f}-{high:.4f} arcsec/pixel): the same galaxy would appear at different sizes")
    if summary["n_unknown"]:
        warnings.append(f"WARNING: {summary['n_unknown']} images have no pixel scale (rasters, or FITS without WCS "
                        "or PIXSCALE): they are taken as native")
    return summary, warnings


def write_table(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=IMAGE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_rejected(rejected: list[tuple[str, str]], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason"])
        writer.writerows(rejected)


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    images = args.images
    if args.mock:
        from VAE_model.mock import build_mock_survey, mock_is_current

        if not mock_is_current(args.mock_dir, args.mock, args.image_size, args.seed, gap=args.mock_gap):
            try:
                build_mock_survey(args.mock_dir, args.mock, image_size=args.image_size, seed=args.seed,
                                  workers=args.workers, gap=args.mock_gap)
            except KeyboardInterrupt:
                # the survey's summary file is written last, so the unfinished render is never taken as current
                raise Interrupted(f"mock survey render in {args.mock_dir} interrupted (Ctrl-C); it is not used: "
                                  "the same command renders it again") from None
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
    source: dict = {}
    if args.resample_to_native:
        paths, source = resample_off_native(paths, images, args.run, progress=not args.quiet)
    infos, rejected = scan_images(paths, args.image_size, args.workers, args.max_masked_fraction,
                                  progress=not args.quiet)
    rejected = [(source.get(path, path), reason) for path, reason in rejected]
    accepted = [info.path for info in infos]
    rows = image_table(infos, source)
    output = runfiles.run_path(args.run, args.output)
    write_rejected(rejected, runfiles.run_path(args.run, runfiles.REJECTED_CSV))
    write_table(rows, runfiles.run_path(args.run, runfiles.IMAGES_CSV))
    scales, warnings = pixel_scale_summary(rows)
    for line in warnings:
        print(line)
    count = lambda key: dict(Counter(r[key] for r in rows))  # noqa: E731
    summary = {"images_dir": str(images), "n_found": len(paths), "n_accepted": len(accepted),
               "n_rejected": len(rejected), "list": str(output), "n_resampled": len(source),
               "pixel_scale_arcsec": scales, "native_pixel_scale_arcsec": PIXEL_SCALE_ARCSEC,
               "band_source": count("band_source"), "position_source": count("position_source"),
               "n_masked_filled": int(sum(r["masked_fraction"] > 0 for r in rows)),
               "warnings": warnings, **describe_args(args)}
    # the list, with its provenance: current while the scanned folder's files and the listed images keep
    # their names, sizes and times
    write_train_list(args.run, accepted, args.image_size, folder=images, summary=summary, name=args.output,
                     also_recorded=(runfiles.REJECTED_CSV, runfiles.IMAGES_CSV))
    print(f"{output}: {len(accepted)} images accepted, {len(rejected)} rejected "
          f"(see {runfiles.run_path(args.run, runfiles.REJECTED_CSV)})")
    return 0 if accepted else 1


if __name__ == "__main__":
    sys.exit(main())
