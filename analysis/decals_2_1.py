"""Part I, step 2.1: match the catalog galaxies (and the selected classes) to the images in train.txt.

Two ways to pair a catalog row with an image:
  name      the image's galaxy name (``imageio.image_stem``: the file name without its image
            suffix) equals the catalog ``iauname`` (Legacy Survey cutouts are usually saved as
            ``<iauname>.fits``). Two listed images of one name are refused (MatchError naming
            both): the row could be paired with either. When the catalog has ra/dec and the
            image a position (WCS, RA/DEC cards), ``sep_arcsec`` is their separation (else NaN)
            and a WARNING counts name matches more than ``catalog.NAME_MATCH_TOLERANCE_ARCSEC``
            (5 arcsec) apart: the file is named after a galaxy it does not show. They stay
            paired (the warning names the worst); --match position pairs by the sky instead.
            The catalog needs no ra/dec for name matching (they are then empty in the outputs).
  position  RA/Dec of each image centre from its FITS WCS (RA/DEC cards as fallback) matched to
            the catalog RA/Dec with astropy ``match_to_catalog_sky`` within --radius-arcsec
            (1 arcsec by default: a few DECaLS pixels of 0.262 arcsec, well below the separation
            of two distinct galaxies). When two catalog rows fall on one image the nearer keeps it.
  auto      (default) name when any image stem is a catalog iauname, else position.

READS   RUN/selection/classes.csv, RUN/selection/selection_config.json (analysis/decals_1.py)
        RUN/train.txt (make_datatxt.py); the catalog recorded by decals_1 (or --catalog)
WRITES  RUN/selection/class_index.csv     iauname, ra, dec, question, label, image_index (row in
                                          train.txt), image_path, sep_arcsec; selected galaxies with an image
        RUN/selection/catalog_index.csv   every catalog galaxy: iauname, ra, dec, image_index (-1: no
                                          image), image_path, sep_arcsec (name/position look-up of images)
        RUN/selection/match_summary.json  method, radius, counts matched and without image, per class

Next: analysis/decals_2_2.py (latent features of every image).

    python analysis/decals_2_1.py --run runs/demo
    python analysis/decals_2_1.py --run runs/decals --match position --radius-arcsec 1.0
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from VAE_model.cli_args import add_quiet_argument, add_runtime_arguments, cli_main, describe_args
from VAE_model.errors import GalaxyVAEError

INDEX_COLUMNS = ["image_index", "image_path", "sep_arcsec"]


class MatchError(GalaxyVAEError):
    """No usable overlap between catalog and images; str() is one line."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--match", choices=["auto", "name", "position"], default="auto",
                        help="pair catalog rows with images by file name, by sky position, or auto (default: %(default)s)")
    parser.add_argument("--radius-arcsec", type=float, default=1.0,
                        help="largest catalog-image separation accepted by position matching (default: %(default)s)")
    parser.add_argument("--catalog", default=None,
                        help="catalog to index (default: the one recorded by decals_1 in RUN/selection/selection_config.json)")
    parser.add_argument("--image-list", default=None, help="image list (default: RUN/train.txt)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes reading FITS headers for position matching (default: all cores)")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import provenance, readers, runfiles
from VAE_model.catalog import NAME_MATCH_TOLERANCE_ARCSEC, cross_match, read_catalog, separation_arcsec
from VAE_model.imagelist import read_image_list
from VAE_model.imageio import image_position, image_stem
from VAE_model.files import write_json
from VAE_model.stage import Stage


# ----------------------------------------------------------------------------- image positions
def _header_position(path: str) -> tuple[float, float]:
    """(RA, Dec) in degrees of the image centre from its FITS WCS (RA/DEC cards as fallback), NaN when
    the file has neither (PNG/JPG, no WCS, no cards): ``imageio.image_position``."""
    return image_position(path)[:2]


def image_positions(paths: list[str], workers: int | None = None, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (deg) of every image centre from its FITS WCS or RA/DEC cards; NaN where absent."""
    from tqdm import tqdm

    bar = dict(total=len(paths), desc="read image positions", unit="img", disable=not progress)
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(paths) < 2000:
        positions = [_header_position(p) for p in tqdm(paths, **bar)]
    else:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            positions = list(tqdm(pool.imap(_header_position, paths, chunksize=64), **bar))
    array = np.array(positions, dtype=float).reshape(-1, 2)
    return array[:, 0], array[:, 1]


# ----------------------------------------------------------------------------- matching
def match_by_name(iaunames, paths: list[str]) -> np.ndarray:
    """Row of train.txt whose galaxy name is each iauname, -1 if none; MatchError when a catalog name
    is the name of two listed images (it could be paired with either)."""
    rows: dict[str, list[int]] = {}
    for row, path in enumerate(paths):
        rows.setdefault(image_stem(path), []).append(row)
    wanted = {str(name) for name in iaunames}
    twice = [name for name, found in rows.items() if len(found) > 1 and name in wanted]
    if twice:
        found = rows[twice[0]]
        raise MatchError(f"{len(twice)} catalog names are the name of two or more listed images, e.g. {twice[0]}: "
                         f"{' and '.join(paths[i] for i in found)}; keep one file per galaxy (make_datatxt.py "
                         "rejects such duplicates) or use --match position")
    return np.array([rows[str(name)][0] if str(name) in rows else -1 for name in iaunames], dtype=int)


def check_name_matches(catalog: pd.DataFrame, paths: list[str], image_index: np.ndarray, workers: int | None = None,
                       progress: bool = True) -> tuple[np.ndarray, list[str]]:
    """Separation (arcsec, NaN where unknown) between each name-matched image's centre and its catalog
    position, and the WARNING line when some exceed NAME_MATCH_TOLERANCE_ARCSEC."""
    sep = np.full(len(image_index), np.nan)
    matched = np.flatnonzero(image_index >= 0)
    if not {"ra", "dec"} <= set(catalog.columns) or not len(matched):
        return sep, []
    img_ra, img_dec = image_positions([paths[i] for i in image_index[matched]], workers, progress)
    sep[matched] = separation_arcsec(catalog["ra"].to_numpy(float)[matched], catalog["dec"].to_numpy(float)[matched],
                                     img_ra, img_dec)
    off = np.flatnonzero(sep > NAME_MATCH_TOLERANCE_ARCSEC)
    if not len(off):
        return sep, []
    worst = off[np.argmax(sep[off])]
    names = catalog["iauname"].astype(str).to_numpy()
    return sep, [f"WARNING: {len(off)} of {len(matched)} name matches have an image centre more than "
                 f"{NAME_MATCH_TOLERANCE_ARCSEC:g} arcsec from the catalog position (worst {names[worst]}: "
                 f"{paths[image_index[worst]]} is {sep[worst] / 3600:.4g} deg away): the file is named after a galaxy "
                 "it does not show; check the files or pair by sky position (--match position)"]


def match_by_position(cat_ra, cat_dec, img_ra, img_dec, radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest image within the radius for each catalog row: (image_index or -1, sep_arcsec or NaN).

    Images without a position (NaN) are never matched; one image goes to its nearest catalog row only.
    """
    img_ra, img_dec = np.asarray(img_ra, float), np.asarray(img_dec, float)
    usable = np.flatnonzero(np.isfinite(img_ra) & np.isfinite(img_dec))
    index, sep = cross_match(cat_ra, cat_dec, img_ra[usable], img_dec[usable], radius_arcsec)
    matched = index >= 0
    image_index = np.full(len(index), -1, dtype=int)
    image_index[matched] = usable[index[matched]]
    # one image, one galaxy: among catalog rows claiming the same image, the nearest keeps it
    order = np.lexsort((sep, image_index))
    claimed = image_index[order]
    duplicate = np.zeros(len(order), bool)
    duplicate[1:] = (claimed[1:] == claimed[:-1]) & (claimed[1:] >= 0)
    image_index[order[duplicate]] = -1
    sep_arcsec = np.where(image_index >= 0, sep, np.nan)
    return image_index, sep_arcsec


def match_catalog(catalog: pd.DataFrame, paths: list[str], method: str = "auto", radius_arcsec: float = 1.0,
                  workers: int | None = None, progress: bool = True) -> tuple[pd.DataFrame, str]:
    """Index every catalog row to train.txt: (table iauname, ra, dec, image_index, image_path, sep_arcsec; method used).

    Raises MatchError (one line) when no catalog galaxy has an image.
    """
    names = catalog["iauname"].astype(str).to_numpy()
    image_index, sep = np.full(len(catalog), -1, dtype=int), np.full(len(catalog), np.nan)
    used = method
    warnings: list[str] = []
    if method in ("auto", "name"):
        image_index = match_by_name(names, paths)
        used = "name"
        if method == "auto" and not (image_index >= 0).any():
            used = "position"
        else:
            sep, warnings = check_name_matches(catalog, paths, image_index, workers, progress)
    if used == "position":
        if not {"ra", "dec"} <= set(catalog.columns):
            raise MatchError("the catalog has no ra/dec columns, so images can only be matched by name, and no image "
                             f"file stem of the {len(paths)} images is a catalog iauname (name the cutouts <iauname>.fits)")
        img_ra, img_dec = image_positions(paths, workers, progress)
        if not np.isfinite(img_ra).any():
            raise MatchError(f"no image file stem is a catalog iauname and none of the {len(paths)} images has a sky position "
                             "(FITS WCS or RA/DEC cards); name the cutouts <iauname>.fits or add a WCS to their headers")
        image_index, sep = match_by_position(catalog["ra"], catalog["dec"], img_ra, img_dec, radius_arcsec)
    if not (image_index >= 0).any():
        how = "by name" if used == "name" else f"by position within {radius_arcsec} arcsec"
        raise MatchError(f"no overlap: none of the {len(catalog)} catalog galaxies matches one of the {len(paths)} "
                         f"images {how} (check --catalog, the image list, or try --match position/--radius-arcsec)")
    index = catalog[["iauname"]].copy()
    for column in ("ra", "dec"):
        index[column] = catalog[column].to_numpy(dtype=float) if column in catalog.columns else np.nan
    index["image_index"] = image_index
    index["image_path"] = [paths[i] if i >= 0 else "" for i in image_index]
    index["sep_arcsec"] = np.round(sep, 4)
    index.attrs["warnings"] = warnings
    return index, used


def class_index(selection: pd.DataFrame, catalog_index: pd.DataFrame) -> pd.DataFrame:
    """The selected galaxies that have an image, with their row in train.txt."""
    merged = selection.merge(catalog_index[["iauname", *INDEX_COLUMNS]], on="iauname", how="left")
    merged["image_index"] = merged["image_index"].fillna(-1).astype(int)
    return merged[merged["image_index"] >= 0].reset_index(drop=True)


def match_summary(selection: pd.DataFrame, classes: pd.DataFrame, catalog_index: pd.DataFrame, n_images: int) -> dict:
    per_class = []
    for (question, label), group in selection.groupby(["question", "label"], sort=False):
        with_image = int(((classes["question"] == question) & (classes["label"] == label)).sum())
        per_class.append({"question": question, "label": label, "n_selected": len(group), "n_with_image": with_image})
    n_selected = int(selection["iauname"].nunique())
    n_selected_with_image = int(classes["iauname"].nunique())
    n_catalog_matched = int((catalog_index["image_index"] >= 0).sum())
    return {"n_catalog": len(catalog_index), "n_catalog_with_image": n_catalog_matched, "n_images": n_images,
            "n_images_without_catalog_row": n_images - n_catalog_matched,
            "n_selected_galaxies": n_selected, "n_selected_with_image": n_selected_with_image,
            "n_selected_without_image": n_selected - n_selected_with_image, "per_class": per_class}


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    run = args.run
    list_path = args.image_list or f"{run}/{runfiles.TRAIN_TXT}"
    with Stage(run, "analysis/decals_2_1.py", args) as stage:
        selection = readers.read_table(run, runfiles.SELECTION_CLASSES_CSV, readers.SELECT, ("iauname", "question", "label"),
                                       dtype={"iauname": str, "label": str})
        config = readers.read_json(run, runfiles.SELECTION_CONFIG_JSON, readers.SELECT)
        if args.image_list:
            paths = read_image_list(list_path)
            stage.uses(*readers.train_list_input(list_path, paths))
        else:
            paths = readers.read_train_list(run)
        # read as decals_1 read it (ra/dec optional: needed for position matching only)
        catalog_path = args.catalog or config["catalog_path"]
        catalog = read_catalog(catalog_path, required=("iauname",),
                               campaign=config.get("campaign"), duplicates=config.get("duplicates", "error"))
        stage.uses(provenance.Input.file(catalog_path))
        catalog_index, method = match_catalog(catalog, paths, args.match, args.radius_arcsec, args.workers,
                                             progress=not args.quiet)
        stage.settings["method_used"] = method
        classes = class_index(selection, catalog_index)
        catalog_index.to_csv(runfiles.run_path(run, runfiles.CATALOG_INDEX_CSV), index=False)
        classes.to_csv(runfiles.run_path(run, runfiles.CLASS_INDEX_CSV), index=False)
        summary = match_summary(selection, classes, catalog_index, len(paths))
        summary["warnings"] = catalog_index.attrs.get("warnings", [])
        for line in summary["warnings"]:
            print(line)
        write_json({**describe_args(args, method_used=method), **summary}, runfiles.run_path(run, runfiles.MATCH_SUMMARY_JSON))
    print(pd.DataFrame(summary["per_class"]).to_string(index=False))
    print(f"done: matched by {method}; {summary['n_selected_with_image']} of {summary['n_selected_galaxies']} selected "
          f"galaxies have an image ({summary['n_selected_without_image']} without); {summary['n_catalog_with_image']} of "
          f"{summary['n_catalog']} catalog galaxies and {summary['n_catalog_with_image']} of {len(paths)} images paired; "
          f"index in {Path(run) / runfiles.CLASS_INDEX_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
