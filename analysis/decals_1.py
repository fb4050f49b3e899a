"""Part I, step 1: select morphology classes from Galaxy Zoo DECaLS vote fractions (and custom labels).

Every galaxy of the catalog is put in the classes whose vote-fraction rules it passes
(threshold t = 0.6 as in the reference study; the rules are defined once in
``VAE_model.morph_classes``, the first being smooth-or-featured). Column names are Galaxy Zoo's
(``smooth-or-featured_smooth_fraction``); the spellings of ``VAE_model.catalog`` are accepted
(``_`` for ``-``, ``-dr5``/``-dr8``/``-dr12`` campaign suffixes, upper-case ``IAUNAME``/``RA``/``DEC``,
names only inside a ``fits_loc``/``file_loc``/``png_loc`` path, counts without fractions).

A catalog needs only what it is used for: a class question whose columns are absent is skipped
(one line names them all); ``ra``/``dec`` are needed only to match images by position
(analysis/decals_2_1.py --match position). ``--label-column ring`` adds any categorical column
as a question of its own (question = column name, label = value), written to the same tables, so
decals_2_1, decals_3 and decals_5 handle it like the vote-fraction questions.

READS   --catalog (Parquet/CSV/FITS; default: the mock survey's data/mock/gz_decals.parquet)
WRITES  RUN/selection/<question>__<label>.csv   one table per class: iauname, ra, dec
        RUN/selection/classes.csv               long table: iauname, ra, dec, question, label
        RUN/selection/class_counts.csv          question, label, n_galaxies, fraction_of_catalog
        RUN/selection/selection_config.json     flags, catalog path and size, questions used and
                                                skipped, label columns, seed, git commit

Next: analysis/decals_2_1.py (match the selected galaxies to the images in RUN/train.txt).

    python analysis/decals_1.py --run runs/demo
    python analysis/decals_1.py --run runs/decals --catalog gz_decals_volunteers_5.parquet --threshold 0.6
    python analysis/decals_1.py --run runs/rings --catalog my_catalog.csv --label-column ring --min-votes 10
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from VAE_model import runfiles
from VAE_model.cli_args import add_runtime_arguments, cli_main, describe_args
from VAE_model.config import CAMPAIGNS, DEFAULT_THRESHOLD

DEFAULT_CATALOG = f"{runfiles.DEFAULT_MOCK_DIR}/{runfiles.MOCK_DECALS_CATALOG}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--catalog", default=DEFAULT_CATALOG,
                        help="Galaxy Zoo DECaLS vote-fraction catalog, .parquet/.csv/.fits (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="vote-fraction threshold t of the class rules (default: %(default)s, as in the reference study)")
    parser.add_argument("--min-votes", type=int, default=0,
                        help="a galaxy enters a question's classes only if that question got at least this many votes "
                             "(<question>_total-votes, else the sum of its vote counts); default %(default)s: no cut")
    parser.add_argument("--label-column", action="append", default=[], metavar="NAME",
                        help="a categorical catalog column used as a class question of its own (e.g. ring); "
                             "repeat the flag or separate names by commas")
    parser.add_argument("--campaign", choices=CAMPAIGNS, default=None,
                        help="which campaign's columns to use when the catalog has one question under several "
                             "(smooth-or-featured-dr5_..., -dr8_...); default: refuse such a catalog")
    parser.add_argument("--duplicates", choices=["most-votes", "error"], default="most-votes",
                        help="rows sharing an iauname at one position (a galaxy uploaded twice): keep the row with the "
                             "most votes (default) or refuse the catalog; rows of one name >1 arcsec apart are refused")
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import pandas as pd

from VAE_model import provenance
from VAE_model.catalog import CatalogError, apply_min_votes, read_catalog
from VAE_model.morph_classes import CLASS_QUESTIONS, label_column_classes, select_classes, skipped_line
from VAE_model.files import write_json
from VAE_model.stage import Stage


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(text))


def class_table_path(run_dir: str | Path, question: str, label: str) -> Path:
    """RUN/selection/<question>__<label>.csv, the per-class table (iauname, ra, dec)."""
    return runfiles.run_path(run_dir, f"{runfiles.SELECTION_DIR}/{_file_part(question)}__{_file_part(label)}.csv")


def class_pairs(selection: pd.DataFrame, questions: list[str]) -> list[tuple[str, str]]:
    """(question, label) of every class: the schema's classes of a built-in question (zeros included),
    the labels found for a label column."""
    pairs = []
    for question in questions:
        if question in CLASS_QUESTIONS:
            pairs += [(question, label) for label, _ in CLASS_QUESTIONS[question]]
        else:
            found = selection.loc[selection["question"] == question, "label"]
            pairs += [(question, label) for label in sorted(found.unique())]
    return pairs


def class_counts(selection: pd.DataFrame, n_catalog: int, questions: list[str] | None = None) -> pd.DataFrame:
    """Number of galaxies per (question, label) of the given questions (default: those in the selection)."""
    questions = questions if questions is not None else list(dict.fromkeys(selection["question"]))
    rows = []
    for question, label in class_pairs(selection, questions):
        n = int(((selection["question"] == question) & (selection["label"] == label)).sum())
        rows.append({"question": question, "label": label, "n_galaxies": n,
                     "fraction_of_catalog": round(n / n_catalog, 5) if n_catalog else 0.0})
    return pd.DataFrame(rows, columns=["question", "label", "n_galaxies", "fraction_of_catalog"])


def split_names(values: list[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for value in values for n in value.split(",") if n.strip()))


def select(catalog_path: str | Path, threshold: float = DEFAULT_THRESHOLD, min_votes: int = 0,
           label_columns: list[str] = (), campaign: str | None = None,
           duplicates: str = "most-votes") -> tuple[pd.DataFrame, pd.DataFrame, int, dict]:
    """Read the catalog and select the classes: (long selection table, counts table, catalog size, notes).

    ``notes``: questions used and skipped (with their missing columns), label columns, galaxies
    blanked by --min-votes, and what the reader did (iauname source, fractions from counts,
    duplicate rows dropped). Raises CatalogError (one line naming the file and the problem).
    """
    if not 0.0 <= threshold < 1.0:
        raise CatalogError(f"--threshold must lie in [0, 1), got {threshold}")
    if min_votes < 0:
        raise CatalogError(f"--min-votes must be >= 0, got {min_votes}")
    table = read_catalog(catalog_path, required=["iauname"], campaign=campaign, duplicates=duplicates)
    blanked, no_counts = apply_min_votes(table, min_votes)
    selection, skipped = select_classes(table, threshold, source=str(catalog_path), allow_none=bool(label_columns))
    questions = [q for q in CLASS_QUESTIONS if q not in skipped]
    parts = [selection] + [label_column_classes(table, column, str(catalog_path)) for column in label_columns]
    selection = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else selection
    questions += list(label_columns)
    notes = {"questions_used": questions, "questions_skipped": skipped, "label_columns": list(label_columns),
             "min_votes_blanked": blanked, "min_votes_without_counts": no_counts, **table.attrs}
    return selection, class_counts(selection, len(table), questions), len(table), notes


def write_selection(run_dir: str | Path, selection: pd.DataFrame, counts: pd.DataFrame) -> None:
    for question, label in zip(counts["question"], counts["label"]):
        chosen = (selection["question"] == question) & (selection["label"] == label)
        selection.loc[chosen, ["iauname", "ra", "dec"]].to_csv(class_table_path(run_dir, question, label), index=False)
    selection.to_csv(runfiles.run_path(run_dir, runfiles.SELECTION_CLASSES_CSV), index=False)
    counts.to_csv(runfiles.run_path(run_dir, runfiles.CLASS_COUNTS_CSV), index=False)


def note_lines(notes: dict, min_votes: int) -> list[str]:
    lines = []
    if notes.get("iauname_from"):
        lines.append(f"note: no iauname column; names are the file stems of column {notes['iauname_from']}")
    if notes.get("fractions_from_counts"):
        lines.append("note: vote fractions computed from the vote counts for " + ", ".join(notes["fractions_from_counts"]))
    if notes.get("duplicates_dropped"):
        lines.append(f"note: {notes['duplicates_dropped']} rows repeat a galaxy (same iauname and position); "
                     "kept the row with the most votes (--duplicates error refuses such a catalog)")
    if min_votes > 0:
        lines.append(f"note: --min-votes {min_votes} took out of their question: "
                     + (", ".join(f"{q} {n}" for q, n in notes["min_votes_blanked"].items()) or "nothing")
                     + (f"; no vote counts to test for {', '.join(notes['min_votes_without_counts'])}"
                        if notes["min_votes_without_counts"] else ""))
    if notes.get("questions_skipped"):
        lines.append("note: " + skipped_line(notes["questions_skipped"]))
    return lines


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    label_columns = split_names(args.label_column)
    with Stage(args.run, "analysis/decals_1.py", args) as stage:
        selection, counts, n_catalog, notes = select(args.catalog, args.threshold, args.min_votes, label_columns,
                                                     args.campaign, args.duplicates)
        stage.uses(provenance.Input.file(args.catalog))
        write_selection(args.run, selection, counts)
        write_json(describe_args(args, catalog_path=str(Path(args.catalog).resolve()), n_catalog=n_catalog,
                                 n_selected_rows=len(selection), n_selected_galaxies=int(selection["iauname"].nunique()),
                                 **notes),
                   runfiles.run_path(args.run, runfiles.SELECTION_CONFIG_JSON))
    print(counts.to_string(index=False))
    for line in note_lines(notes, args.min_votes):
        print(line)
    print(f"done: {selection['iauname'].nunique()} of {n_catalog} galaxies in at least one class of "
          f"{', '.join(notes['questions_used'])} (t = {args.threshold}); tables in {Path(args.run) / runfiles.SELECTION_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
