"""Part I, step 1: select morphology classes from Galaxy Zoo DECaLS vote fractions.

Every galaxy of the catalog is put in the classes whose vote-fraction rules it passes
(threshold t = 0.6 as in the reference study; the rules are defined once in
``VAE_model.morph_classes``). Column names are Galaxy Zoo's (``smooth-or-featured_smooth_fraction``);
the same names with ``_`` instead of ``-`` are accepted.

READS   --catalog (Parquet/CSV/FITS; default: the mock survey's data/mock/gz_decals.parquet)
WRITES  RUN/selection/<question>__<label>.csv   one table per class: iauname, ra, dec
        RUN/selection/classes.csv               long table: iauname, ra, dec, question, label
        RUN/selection/class_counts.csv          question, label, n_galaxies, fraction_of_catalog
        RUN/selection/selection_config.json     flags, catalog path and size, seed, git commit

Next: analysis/decals_2_1.py (match the selected galaxies to the images in RUN/train.txt).

    python analysis/decals_1.py --run runs/demo
    python analysis/decals_1.py --run runs/decals --catalog gz_decals_volunteers_5.parquet --threshold 0.6
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


import pandas as pd

from VAE_model import runfiles
from VAE_model.catalog import CatalogError, read_catalog
from VAE_model.morph_classes import CLASS_QUESTIONS, DEFAULT_THRESHOLD, required_columns, select_classes
from VAE_model.runtime import add_runtime_arguments, describe_args, write_json

DEFAULT_CATALOG = f"{runfiles.DEFAULT_MOCK_DIR}/{runfiles.MOCK_DECALS_CATALOG}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--catalog", default=DEFAULT_CATALOG,
                        help="Galaxy Zoo DECaLS vote-fraction catalog, .parquet/.csv/.fits (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="vote-fraction threshold t of the class rules (default: %(default)s, as in the reference study)")
    return parser.parse_args(argv)


def class_table_path(run_dir: str | Path, question: str, label: str) -> Path:
    """RUN/selection/<question>__<label>.csv, the per-class table (iauname, ra, dec)."""
    return runfiles.run_path(run_dir, f"{runfiles.SELECTION_DIR}/{question}__{label}.csv")


def class_counts(selection: pd.DataFrame, n_catalog: int) -> pd.DataFrame:
    """Number of galaxies per (question, label), every class of the table listed (zeros included)."""
    rows = []
    for question, classes in CLASS_QUESTIONS.items():
        for label, _ in classes:
            n = int(((selection["question"] == question) & (selection["label"] == label)).sum())
            rows.append({"question": question, "label": label, "n_galaxies": n,
                         "fraction_of_catalog": round(n / n_catalog, 5) if n_catalog else 0.0})
    return pd.DataFrame(rows)


def select(catalog_path: str | Path, threshold: float = DEFAULT_THRESHOLD) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Read the catalog and select the classes: (long selection table, counts table, catalog size).

    Raises CatalogError (one line naming the file and any missing columns).
    """
    if not 0.0 <= threshold < 1.0:
        raise CatalogError(f"--threshold must lie in [0, 1), got {threshold}")
    table = read_catalog(catalog_path, required=["iauname", "ra", "dec", *required_columns()])
    selection = select_classes(table, threshold, source=str(catalog_path))
    return selection, class_counts(selection, len(table)), len(table)


def write_selection(run_dir: str | Path, selection: pd.DataFrame, counts: pd.DataFrame) -> None:
    for question, classes in CLASS_QUESTIONS.items():
        for label, _ in classes:
            chosen = (selection["question"] == question) & (selection["label"] == label)
            selection.loc[chosen, ["iauname", "ra", "dec"]].to_csv(class_table_path(run_dir, question, label), index=False)
    selection.to_csv(runfiles.run_path(run_dir, runfiles.SELECTION_CLASSES_CSV), index=False)
    counts.to_csv(runfiles.run_path(run_dir, runfiles.CLASS_COUNTS_CSV), index=False)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        selection, counts, n_catalog = select(args.catalog, args.threshold)
    except CatalogError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_selection(args.run, selection, counts)
    write_json(describe_args(args, catalog_path=str(Path(args.catalog).resolve()), n_catalog=n_catalog,
                             n_selected_rows=len(selection), n_selected_galaxies=int(selection["iauname"].nunique())),
               runfiles.run_path(args.run, runfiles.SELECTION_CONFIG_JSON))
    print(counts.to_string(index=False))
    print(f"done: {selection['iauname'].nunique()} of {n_catalog} galaxies in at least one class "
          f"(t = {args.threshold}); tables in {Path(args.run) / runfiles.SELECTION_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
