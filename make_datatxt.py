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

Which files (``VAE_model/image_scan.py``): linked sub-folders are searched (a folder reached twice,
e.g. by a link loop, once); dangling links and names holding a line break are rejected. One image
per galaxy (galaxy name = file name without its image suffix, ``imageio.image_stem``): FITS first,
then PNG, then JPEG; the renders of a galaxy that has a FITS are listed as skipped (whatever the
FITS' fate: a FITS rejected for masked pixels does not get in through its render). Two files of one
name and format (``dr5/J1.fits``, ``dr8/J1.fits``) are both rejected, each naming the other, since
name matching (analysis/decals_2_1.py) could not tell them apart.

Flux unit: BUNIT must be nanomaggies or convertible to it (maggies, Jy); no BUNIT is taken as
nanomaggies (the Legacy Survey cutout service writes none). Other units (ADU, counts) are rejected,
and a WARNING names images with more than 5% of their pixels at the ceiling of the stretch (wrong
units or a sky pedestal). Greyscale PNG/JPEG (one plane, or three equal planes) are rejected: they
hold no g, r, z colour.

Pixel scale: the native Legacy Survey pixel is 0.262 arcsec (Dey et al. 2019). A WARNING line is
printed (and kept in the summary) when images differ from it, or from each other, by more than
5%. The scale the network sees is checked the same way: a cutout larger than --image-size is
block-averaged (or interpolated) down to it, so a 128 px cutout at 0.262 arcsec/pixel among 64 px
ones is seen at 0.524 arcsec/pixel; a WARNING names such images (images.csv
pixel_scale_after_resize_arcsec). They are kept: the warning says what to fix. With --resample-to-native every FITS off the native scale by more than 5% is resampled to
0.262 arcsec/pixel (``imageio.resample_fits``: same centre and field of view, new WCS) and written
to RUN/resampled/<path relative to --images>; train.txt then lists those files.

READS   --images DIR (FITS/PNG/JPG, searched recursively, links followed), or the mock survey
WRITES  RUN/train.txt                  accepted image paths, sorted
        RUN/rejected_images.csv        path, reason (skipped renders: reason starts with "skipped:")
        RUN/images.csv                 per accepted image: path, name, ra, dec, position_source,
                                       pixel_scale_arcsec, scale_source, bands, band_source,
                                       masked_fraction, shape, source_path (before resampling),
                                       pixel_scale_after_resize_arcsec, flux_unit, unit_source,
                                       saturated_fraction
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
                                describe_args, fraction_below_one, image_side)
from VAE_model.errors import Interrupted
from VAE_model.image_scan import find_images, one_image_per_galaxy, scan_images
from VAE_model.imageio import (ASINH_MAX_NMGY, DEFAULT_MAX_MASKED_FRACTION, PIXEL_SCALE_ARCSEC, PIXEL_SCALE_TOLERANCE,
                               SATURATED_WARN_FRACTION, ImageError, header_pixel_scale, image_stem, is_fits,
                               read_header, resample_fits)
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
    parser.add_argument("--image-size", type=image_side, default=256,
                        help="network input side in px, a multiple of 64 (the VAE divides it by 64); cutouts are "
                             "at least this large; mock render size (default: %(default)s)")
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
                 "band_source", "masked_fraction", "shape", "flux_unit", "unit_source", "saturated_fraction",
                 "source_path", "pixel_scale_after_resize_arcsec"]


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


def image_table(infos, source: dict, image_size: int | None = None) -> list[dict]:
    rows = []
    for info in infos:
        # positions to 1e-8 deg (0.04 mas); scales and fractions to 6 significant digits
        row = {k: (round(v, 8) if k.endswith("_deg") else float(f"{v:.6g}")) if isinstance(v, float) else v
               for k, v in info.row().items()}
        # the network sees the cutout resized to image_size: its pixels grow by side / image_size
        factor = info.shape[-1] / image_size if image_size else 1.0
        rows.append({"path": info.path, "name": image_stem(info.path), "ra": row["ra_deg"],
                     "dec": row["dec_deg"], **{k: row[k] for k in IMAGE_COLUMNS[4:-2]},
                     "source_path": source.get(info.path, info.path),
                     "pixel_scale_after_resize_arcsec": float(f"{info.pixel_scale_arcsec * factor:.6g}")})
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


def resized_scale_summary(rows: list[dict], image_size: int | None) -> tuple[dict, list[str]]:
    """The pixel scale after resizing to --image-size (what the network sees), checked like the header
    scale: WARNING lines for images that resizing takes off the native scale, and for scales that
    differ across images after resizing (an unknown scale is taken as native, as above)."""
    if not rows or not image_size:
        return {}, []
    sides = np.array([int(str(r["shape"]).split("x")[-1]) for r in rows])
    header = np.array([r["pixel_scale_arcsec"] for r in rows], dtype=float)
    after = np.where(np.isfinite(header), header, PIXEL_SCALE_ARCSEC) * sides / image_size
    resized = sides != image_size
    low, median, high = (float(v) for v in np.percentile(after, [0, 50, 100]))
    summary = {"n_resized": int(resized.sum()), "min": low, "median": median, "max": high}
    warnings = []
    off = resized & np.array([off_native(a) for a in after])
    if off.any():
        example = rows[int(np.flatnonzero(off)[0])]["path"]
        looks = "smaller" if np.median(after[off]) > PIXEL_SCALE_ARCSEC else "larger"
        warnings.append(f"WARNING: {int(off.sum())} of {len(rows)} images are resized from {sides[off].min()}-"
                        f"{sides[off].max()} px to --image-size {image_size}, which puts them at "
                        f"{after[off].min():.4f}-{after[off].max():.4f} arcsec/pixel instead of the native "
                        f"{PIXEL_SCALE_ARCSEC} (e.g. {example}): galaxies look {looks} than in native cutouts; give "
                        f"{image_size} px cutouts at {PIXEL_SCALE_ARCSEC} arcsec/pixel (pixel_scale_after_resize_arcsec "
                        f"in RUN/{runfiles.IMAGES_CSV})")
    if resized.any() and (high - low) / median > PIXEL_SCALE_TOLERANCE:
        warnings.append(f"WARNING: after resizing to {image_size} px the pixel scales vary across the images by "
                        f"{(high - low) / median:.0%} ({low:.4f}-{high:.4f} arcsec/pixel; sides {sides.min()}-"
                        f"{sides.max()} px): the same galaxy would appear at different sizes")
    return summary, warnings


def flux_warnings(rows: list[dict]) -> list[str]:
    """WARNING when images have a large share of pixels at the stretch's ceiling (wrong units, a pedestal)."""
    hot = [r for r in rows if r["saturated_fraction"] > SATURATED_WARN_FRACTION]
    if not hot:
        return []
    worst = max(hot, key=lambda r: r["saturated_fraction"])
    return [f"WARNING: {len(hot)} of {len(rows)} images have more than {SATURATED_WARN_FRACTION:.0%} of their pixels "
            f"at the ceiling of the asinh stretch (>= {ASINH_MAX_NMGY:g} nanomaggies; worst {worst['path']}: "
            f"{worst['saturated_fraction']:.0%}): flux not in nanomaggies or a sky pedestal? (saturated_fraction in "
            f"RUN/{runfiles.IMAGES_CSV})"]


def selection_warnings(duplicates: list, skipped: list, not_found: list) -> list[str]:
    """One line per kind of file left out before validation (each file is in rejected_images.csv)."""
    lines = []
    if duplicates:
        lines.append(f"WARNING: {len(duplicates)} files share their galaxy name with another file of the same format "
                     f"and are all rejected (e.g. {duplicates[0][0]}: {duplicates[0][1]})")
    if skipped:
        lines.append(f"note: {len(skipped)} renders skipped: their galaxy has a FITS (one image per galaxy, FITS first; "
                     f"e.g. {skipped[0][0]})")
    if not_found:
        lines.append(f"WARNING: {len(not_found)} paths under the folder rejected before reading (e.g. {not_found[0][0]}: "
                     f"{not_found[0][1]})")
    return lines


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
        found, not_found = find_images(images)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not found:
        left = f" ({len(not_found)} rejected, e.g. {not_found[0][0]}: {not_found[0][1]})" if not_found else ""
        print(f"error: {images}: no FITS/PNG/JPG files found{left}", file=sys.stderr)
        return 1
    paths, skipped, duplicates = one_image_per_galaxy(found)
    source: dict = {}
    if args.resample_to_native:
        paths, source = resample_off_native(paths, images, args.run, progress=not args.quiet)
    infos, rejected = scan_images(paths, args.image_size, args.workers, args.max_masked_fraction,
                                  progress=not args.quiet)
    rejected = [*not_found, *duplicates, *[(source.get(path, path), reason) for path, reason in rejected]]
    accepted = [info.path for info in infos]
    rows = image_table(infos, source, args.image_size)
    output = runfiles.run_path(args.run, args.output)
    write_rejected(rejected + skipped, runfiles.run_path(args.run, runfiles.REJECTED_CSV))
    write_table(rows, runfiles.run_path(args.run, runfiles.IMAGES_CSV))
    scales, warnings = pixel_scale_summary(rows)
    resized_scales, resize_warnings = resized_scale_summary(rows, args.image_size)
    warnings = selection_warnings(duplicates, skipped, not_found) + warnings + resize_warnings + flux_warnings(rows)
    for line in warnings:
        print(line)
    count = lambda key: dict(Counter(r[key] for r in rows))  # noqa: E731
    summary = {"images_dir": str(images), "n_found": len(found), "n_accepted": len(accepted),
               "n_rejected": len(rejected), "n_skipped": len(skipped), "n_duplicate_names": len(duplicates),
               "list": str(output), "n_resampled": len(source),
               "pixel_scale_arcsec": scales, "pixel_scale_after_resize_arcsec": resized_scales,
               "native_pixel_scale_arcsec": PIXEL_SCALE_ARCSEC, "unit_source": count("unit_source"),
               "band_source": count("band_source"), "position_source": count("position_source"),
               "n_masked_filled": int(sum(r["masked_fraction"] > 0 for r in rows)),
               "warnings": warnings, **describe_args(args)}
    # the list, with its provenance: current while the scanned folder's files and the listed images keep
    # their names, sizes and times
    write_train_list(args.run, accepted, args.image_size, folder=images, summary=summary, name=args.output,
                     also_recorded=(runfiles.REJECTED_CSV, runfiles.IMAGES_CSV))
    also = f", {len(skipped)} skipped (renders of galaxies that have a FITS)" if skipped else ""
    print(f"{output}: {len(accepted)} images accepted, {len(rejected)} rejected{also} "
          f"(see {runfiles.run_path(args.run, runfiles.REJECTED_CSV)})")
    return 0 if accepted else 1


if __name__ == "__main__":
    sys.exit(main())
