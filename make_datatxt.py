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

Framing (``VAE_model/framing.py``; default ``--frame none``: the mock and Legacy Survey cutouts are
centred and sized): Galaxy Zoo 2 / SDSS style JPEGs show the galaxy small in a large frame.
``--frame center --frame-fraction F`` keeps the central F of the side; ``--frame moments`` a square
of k = --frame-k (6) light radii around the galaxy's light centroid (windowed second moments of the
image itself); ``--frame catalog --frame-catalog FILE --frame-radius-column COL`` a square of
--frame-radius-factor x the catalog radius (arcsec, converted with the image's pixel scale), galaxies
without a value framed by their moments and counted. Each image's crop box (centre and side, native
pixels) is written to images.csv and the framing to the summary and the records; the decode-once
cache (training, latents, transfer, similarity, explorer) crops every image with its recorded box.

READS   --images DIR (FITS/PNG/JPG, searched recursively, links followed), or the mock survey
WRITES  RUN/train.txt                  accepted image paths, sorted
        RUN/rejected_images.csv        path, reason (skipped renders: reason starts with "skipped:")
        RUN/images.csv                 per accepted image: path, name, ra, dec, position_source,
                                       pixel_scale_arcsec, scale_source, bands, band_source,
                                       masked_fraction, shape, source_path (before resampling),
                                       pixel_scale_after_resize_arcsec, flux_unit, unit_source,
                                       saturated_fraction; with --frame also frame_source,
                                       crop_x_px, crop_y_px, crop_side_px, light_radius_px,
                                       catalog_radius_arcsec, light_radius_fraction_before/after
        RUN/datatxt_summary.json       counts, pixel scales (min/median/max), warnings, settings, seed
        RUN/resampled/                 with --resample-to-native only

    python make_datatxt.py --mock 1500 --image-size 64 --run runs/demo
    python make_datatxt.py --images /data/decals_cutouts --run runs/decals
    python make_datatxt.py --images /data/gz2_jpegs --image-size 64 --frame moments --run runs/gz2
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
from VAE_model.framing import CATALOG_SIDE_FACTOR, FRAME_MODES, MOMENTS_SIDE_FACTOR, Framing, FramingError
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
    frame = parser.add_argument_group("framing (VAE_model/framing.py): the crop kept before resizing")
    frame.add_argument("--frame", choices=FRAME_MODES, default="none",
                       help="none: the whole cutout (mock, Legacy Survey); center: the central --frame-fraction; "
                            "moments: --frame-k light radii around the light centroid; catalog: "
                            "--frame-radius-factor x a catalog radius (default: %(default)s)")
    frame.add_argument("--frame-fraction", type=float, default=0.5,
                       help="center: kept fraction of the side, in (0, 1] (default: %(default)s, the central 207 of "
                            "424 px that Dieleman et al. 2015 kept of Galaxy Zoo 2 images)")
    frame.add_argument("--frame-k", type=float, default=MOMENTS_SIDE_FACTOR,
                       help="moments: crop side / light radius (default: %(default)s; see framing.py for why)")
    frame.add_argument("--frame-catalog", default=None, help="catalog: CSV/Parquet/FITS with the galaxies' radii, "
                                                              "matched to images by iauname (= file name stem)")
    frame.add_argument("--frame-radius-column", default=None,
                       help="catalog: the radius column, in arcsec (e.g. a half-light radius: petroR50_r, PETROTH50)")
    frame.add_argument("--frame-radius-factor", type=float, default=CATALOG_SIDE_FACTOR,
                       help="catalog: crop side / catalog radius (default: %(default)s, the moments fill for an "
                            "exponential disc's half-light radius; ~1.8 for an R90 column)")
    frame.add_argument("--frame-pixel-scale", type=float, default=PIXEL_SCALE_ARCSEC,
                       help="catalog: arcsec/pixel of images without a WCS/PIXSCALE of their own, e.g. JPEGs "
                            "(default: %(default)s, the native Legacy Survey pixel)")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


def framing_of(args) -> Framing:
    """The run's framing from the flags (FramingError, one line, for a bad value or a catalog flag missing)."""
    framing = Framing(args.frame, fraction=args.frame_fraction, k=args.frame_k,
                      radius_column=args.frame_radius_column or "", radius_factor=args.frame_radius_factor,
                      pixel_scale_arcsec=args.frame_pixel_scale)
    if framing.mode == "catalog" and not (args.frame_catalog and args.frame_radius_column):
        raise FramingError("--frame catalog needs --frame-catalog FILE and --frame-radius-column COL (arcsec)")
    return framing


def catalog_frames(framing: Framing, catalog_path: str, paths: list) -> tuple[dict, int]:
    """{absolute path: the framing with that galaxy's catalog radius (arcsec; NaN: none)} and how many
    images have no radius (no row, an empty value or one <= 0: framed by their moments). A missing
    column or a non-numeric value is a one-line CatalogError naming the file and column."""
    from VAE_model.catalog import _as_numbers, read_catalog

    column = framing.radius_column
    table = read_catalog(catalog_path, required=("iauname", column))
    radii = dict(zip(table["iauname"], _as_numbers(table, column, f"{catalog_path}")))
    frames, n_missing = {}, 0
    for path in paths:
        radius = radii.get(image_stem(path), float("nan"))
        if not (np.isfinite(radius) and radius > 0):
            radius, n_missing = float("nan"), n_missing + 1
        frames[os.path.abspath(path)] = framing.for_image(radius)
    return frames, n_missing


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


# with --frame: the crop box of each image (framing.CropBox, native pixels) and what made it
FRAME_COLUMNS = ["frame_source", "crop_x_px", "crop_y_px", "crop_side_px", "light_radius_px", "catalog_radius_arcsec"]


def image_table(infos, source: dict, image_size: int | None = None, frames=None) -> list[dict]:
    """One images.csv row per accepted image; ``frames`` (the scan's framing) adds FRAME_COLUMNS."""
    rows = []
    for info in infos:
        # positions to 1e-8 deg (0.04 mas); scales and fractions to 6 significant digits
        row = {k: (round(v, 8) if k.endswith("_deg") else float(f"{v:.6g}")) if isinstance(v, float) else v
               for k, v in info.row().items()}
        # the network sees the cutout (or its crop) resized to image_size: its pixels grow by side / image_size
        side = info.crop_side_px if np.isfinite(info.crop_side_px) else info.shape[-1]
        factor = side / image_size if image_size else 1.0
        rows.append({"path": info.path, "name": image_stem(info.path), "ra": row["ra_deg"],
                     "dec": row["dec_deg"], **{k: row[k] for k in IMAGE_COLUMNS[4:-2]},
                     "source_path": source.get(info.path, info.path),
                     "pixel_scale_after_resize_arcsec": float(f"{info.pixel_scale_arcsec * factor:.6g}")})
        if frames is not None:
            frame = frames.get(info.path) if isinstance(frames, dict) else frames
            rows[-1].update({k: row[k] for k in FRAME_COLUMNS[:-1]},
                            catalog_radius_arcsec=getattr(frame, "radius_arcsec", float("nan")))
    return rows


def framing_summary(framing: Framing, rows: list[dict], n_no_catalog_radius: int = 0) -> tuple[dict, list[str]]:
    """The framing as the records keep it (settings, counts by source, crop sides, the light radius as a
    fraction of the frame before and after framing) and its note/WARNING lines."""
    summary = framing.settings()
    if not framing.active or not rows:
        return summary, []
    sides = np.array([r["crop_side_px"] for r in rows], float)
    native = np.array([int(str(r["shape"]).split("x")[-1]) for r in rows], float)
    radius = np.array([r["light_radius_px"] for r in rows], float)
    summary.update(frame_source=dict(Counter(r["frame_source"] for r in rows)),
                   crop_side_px=dict(zip(("min", "median", "max"), (float(v) for v in np.percentile(sides, [0, 50, 100])))),
                   crop_fraction_of_side_median=float(np.median(sides / native)))
    lines = []
    if np.isfinite(radius).any():
        known = np.isfinite(radius)
        summary["light_radius_fraction_median"] = {"before": float(np.median(radius[known] / native[known])),
                                                   "after": float(np.median(radius[known] / sides[known]))}
    if framing.mode == "catalog":
        summary["n_no_catalog_radius"] = n_no_catalog_radius
        if n_no_catalog_radius:
            lines.append(f"note: {n_no_catalog_radius} of {len(rows)} images have no {framing.radius_column} value in "
                         f"the catalog: framed by their light moments (frame_source moments_fallback in "
                         f"RUN/{runfiles.IMAGES_CSV})")
    whole = sum(r["frame_source"] == "whole_image" for r in rows)
    if whole:
        lines.append(f"WARNING: {whole} images have no light above the sky to measure: kept whole (frame_source "
                     f"whole_image in RUN/{runfiles.IMAGES_CSV})")
    return summary, lines


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
    # the side resized: the crop's when the image is framed (--frame), else the cutout's
    sides = np.array([int(r["crop_side_px"]) if np.isfinite(r.get("crop_side_px", np.nan))
                      else int(str(r["shape"]).split("x")[-1]) for r in rows])
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


def write_table(rows: list[dict], path: Path, framed: bool = False) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=IMAGE_COLUMNS + (FRAME_COLUMNS if framed else []))
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
    framing = framing_of(args)          # a bad framing flag stops before any rendering or scanning
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
    frames, n_no_radius = (framing if framing.active else None), 0
    if framing.mode == "catalog":
        frames, n_no_radius = catalog_frames(framing, args.frame_catalog, paths)
    infos, rejected = scan_images(paths, args.image_size, args.workers, args.max_masked_fraction,
                                  progress=not args.quiet, frame=frames)
    rejected = [*not_found, *duplicates, *[(source.get(path, path), reason) for path, reason in rejected]]
    accepted = [info.path for info in infos]
    rows = image_table(infos, source, args.image_size, frames)
    output = runfiles.run_path(args.run, args.output)
    write_rejected(rejected + skipped, runfiles.run_path(args.run, runfiles.REJECTED_CSV))
    write_table(rows, runfiles.run_path(args.run, runfiles.IMAGES_CSV), framed=framing.active)
    scales, warnings = pixel_scale_summary(rows)
    resized_scales, resize_warnings = resized_scale_summary(rows, args.image_size)
    if framing.mode in ("moments", "catalog"):
        # framing by the galaxy's own size resamples every galaxy to its own scale on purpose
        resize_warnings = []
    framed, frame_lines = framing_summary(framing, rows, n_no_radius)
    warnings = (selection_warnings(duplicates, skipped, not_found) + warnings + resize_warnings + flux_warnings(rows)
                + frame_lines)
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
               "framing": framed, "warnings": warnings, **describe_args(args)}
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
