"""The morphology classes of the study, defined once from Galaxy Zoo DECaLS vote fractions.

Each *class question* (e.g. ``bar``) has mutually exclusive classes selected by vote-fraction
thresholds (default t = 0.6, as in the reference study; with t > 0.5 a galaxy gets at most one
class per question). Rules (``f(x)`` = vote fraction of answer x):

    smooth-or-featured : smooth / featured-or-disk / artifact   f(smooth-or-featured_X) > t
                         (the first question of the Galaxy Zoo DECaLS tree, asked of every galaxy;
                         Walmsley et al. 2022, Table 1)
    how-rounded : round / in-between / cigar-shaped   f(smooth) > t  and f(how-rounded_X) > t
    edge-on     : yes / no                            f(featured) > t and f(disk-edge-on_X) > t
    bar         : no / weak / strong                  featured, f(edge-on_no) > t, f(bar_X) > t
    spiral-arms : yes / no                            featured, f(edge-on_no) > t, f(has-spiral-arms_X) > t
    winding     : tight / medium / loose              featured, not edge-on, f(arms_yes) > t, f(winding_X) > t
    bulge-size  : none / small / moderate             featured, f(edge-on_no) > t, f(bulge-size_X) > t
    merger      : merger vs no-merger                 merger if f(minor-disturbance), f(major-disturbance)
                                                      or f(merger) > t; no-merger if f(edge-on_no) > 0.6
                                                      and f(merging_none) > 0.8 (fixed, as in the study)

A question is built only from a catalog that holds all of its columns (``question_columns``, the
parents' included); the others are skipped and named (``select_classes``). NaN fractions (a
question nobody was asked) never pass a threshold.

Custom labels: any categorical catalog column (e.g. a ``ring`` flag) can be used as a question
of its own (``label_column_classes``): question = the column name, label = the value, every
galaxy with a value is labelled. analysis/decals_1.py ``--label-column`` records such rows in
``selection/classes.csv`` beside the vote-fraction classes, so every later stage treats them alike.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import CatalogError, fraction_column as frac
from .config import DEFAULT_THRESHOLD

MAX_LABEL_CLASSES = 50      # a --label-column with more distinct values is not categorical

# question -> (class label, answer column)
CLASS_QUESTIONS: dict[str, list[tuple[str, str]]] = {
    "smooth-or-featured": [("smooth", frac("smooth-or-featured", "smooth")),
                           ("featured-or-disk", frac("smooth-or-featured", "featured-or-disk")),
                           ("artifact", frac("smooth-or-featured", "artifact"))],
    "how-rounded": [("round", frac("how-rounded", "round")), ("in-between", frac("how-rounded", "in-between")),
                    ("cigar-shaped", frac("how-rounded", "cigar-shaped"))],
    "edge-on": [("yes", frac("disk-edge-on", "yes")), ("no", frac("disk-edge-on", "no"))],
    "bar": [("no", frac("bar", "no")), ("weak", frac("bar", "weak")), ("strong", frac("bar", "strong"))],
    "spiral-arms": [("yes", frac("has-spiral-arms", "yes")), ("no", frac("has-spiral-arms", "no"))],
    "winding": [("tight", frac("spiral-winding", "tight")), ("medium", frac("spiral-winding", "medium")),
                ("loose", frac("spiral-winding", "loose"))],
    "bulge-size": [("none", frac("bulge-size", "none")), ("small", frac("bulge-size", "small")),
                   ("moderate", frac("bulge-size", "moderate"))],
    "merger": [("merger", ""), ("no-merger", "")],
}
MERGER_ANSWERS = ("minor-disturbance", "major-disturbance", "merger")
NO_MERGER_EDGE_ON_NO = 0.6      # fixed cuts of the reference study for the no-merger class
NO_MERGER_NONE = 0.8

_SMOOTH, _FEATURED = frac("smooth-or-featured", "smooth"), frac("smooth-or-featured", "featured-or-disk")
_EDGE_ON_NO, _ARMS_YES = frac("disk-edge-on", "no"), frac("has-spiral-arms", "yes")
# columns of the parent rules of each question (the path down the decision tree)
_PARENT_COLUMNS = {"smooth-or-featured": [], "how-rounded": [_SMOOTH], "edge-on": [_FEATURED],
                   "bar": [_FEATURED, _EDGE_ON_NO], "spiral-arms": [_FEATURED, _EDGE_ON_NO],
                   "winding": [_FEATURED, _EDGE_ON_NO, _ARMS_YES], "bulge-size": [_FEATURED, _EDGE_ON_NO],
                   "merger": [_EDGE_ON_NO, frac("merging", "none")]}


def question_columns(question: str) -> list[str]:
    """Every catalog column the rules of one class question read."""
    if question == "merger":
        own = [frac("merging", answer) for answer in MERGER_ANSWERS]
    else:
        own = [column for _, column in CLASS_QUESTIONS[question]]
    return list(dict.fromkeys(_PARENT_COLUMNS[question] + own))


def required_columns() -> list[str]:
    """The columns of all class questions together (a catalog with these gives every question)."""
    return sorted({column for question in CLASS_QUESTIONS for column in question_columns(question)})


def available_questions(table: pd.DataFrame) -> tuple[list[str], dict[str, list[str]]]:
    """(questions the table has every column for, {skipped question: its missing columns})."""
    present, skipped = [], {}
    for question in CLASS_QUESTIONS:
        missing = [c for c in question_columns(question) if c not in table.columns]
        if missing:
            skipped[question] = missing
        else:
            present.append(question)
    return present, skipped


def skipped_line(skipped: dict[str, list[str]]) -> str:
    """One line naming the skipped questions and (briefly) why."""
    parts = [f"{q} (no {cols[0]}{f' +{len(cols) - 1}' if len(cols) > 1 else ''})" for q, cols in skipped.items()]
    return f"skipped {len(skipped)} class questions without their columns: " + ", ".join(parts)


def _parent_mask(table: pd.DataFrame, question: str, t: float) -> np.ndarray:
    if question == "smooth-or-featured":
        return np.ones(len(table), dtype=bool)
    if question == "how-rounded":
        return (table[_SMOOTH] > t).to_numpy()
    featured = table[_FEATURED] > t
    if question == "edge-on":
        return featured.to_numpy()
    face_on = featured & (table[_EDGE_ON_NO] > t)
    if question == "winding":
        return (face_on & (table[_ARMS_YES] > t)).to_numpy()
    return face_on.to_numpy()


def class_labels(table: pd.DataFrame, question: str, threshold: float = DEFAULT_THRESHOLD) -> pd.Series:
    """Class label of every galaxy for one question (NaN where it is in no class)."""
    labels = pd.Series(np.nan, index=table.index, dtype=object)
    if question == "merger":
        disturbed = np.any([table[frac("merging", a)] > threshold for a in MERGER_ANSWERS], axis=0)
        calm = (table[_EDGE_ON_NO] > NO_MERGER_EDGE_ON_NO) & (table[frac("merging", "none")] > NO_MERGER_NONE)
        labels[calm.to_numpy()] = "no-merger"
        labels[disturbed] = "merger"
        return labels
    parent = _parent_mask(table, question, threshold)
    for label, column in CLASS_QUESTIONS[question]:
        labels[parent & (table[column] > threshold).to_numpy()] = label
    return labels


def _id_part(table: pd.DataFrame, chosen: np.ndarray) -> pd.DataFrame:
    """iauname, ra, dec of the chosen rows (ra/dec NaN when the catalog has no positions)."""
    part = pd.DataFrame({"iauname": table.loc[chosen, "iauname"].to_numpy()})
    for column in ("ra", "dec"):
        part[column] = table.loc[chosen, column].to_numpy(dtype=float) if column in table.columns else np.nan
    return part


def select_classes(table: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, source: str = "catalog",
                   questions: list[str] | None = None, allow_none: bool = False) -> tuple[pd.DataFrame, dict]:
    """Long table (iauname, ra, dec, question, label) of every galaxy in every class it passes,
    and {skipped question: its missing columns}.

    Questions whose columns the table lacks are skipped. Raises CatalogError (naming ``source``)
    when there is no iauname column, or when no question can be built and not ``allow_none``.
    """
    if "iauname" not in table.columns:
        raise CatalogError(f"{source}: missing columns iauname")
    present, skipped = available_questions(table)
    if questions is not None:
        present = [q for q in present if q in questions]
    if not present and not allow_none:
        raise CatalogError(f"{source}: no class question can be built; missing columns "
                           + ", ".join(dict.fromkeys(c for cols in skipped.values() for c in cols)))
    parts = []
    for question in present:
        labels = class_labels(table, question, threshold)
        chosen = labels.notna().to_numpy()
        part = _id_part(table, chosen)
        part["question"] = question
        part["label"] = labels[chosen].to_numpy()
        parts.append(part)
    columns = ["iauname", "ra", "dec", "question", "label"]
    selection = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return selection[columns], skipped


def label_column_classes(table: pd.DataFrame, column: str, source: str = "catalog") -> pd.DataFrame:
    """Rows (iauname, ra, dec, question=column, label=value) of every galaxy with a value in ``column``.

    Numbers that are whole (1.0) are written as integers ('1'). Raises CatalogError when the
    column is absent, reuses a class-question name, has fewer than 2 or more than
    MAX_LABEL_CLASSES distinct values.
    """
    if column not in table.columns:
        raise CatalogError(f"{source}: --label-column {column}: no such column")
    if column in CLASS_QUESTIONS:
        raise CatalogError(f"{source}: --label-column {column}: the name of a built-in class question")
    values = table[column]
    chosen = values.notna().to_numpy()
    if values.dtype.kind == "b":
        labels = values[chosen].map({True: "True", False: "False"})
    elif values.dtype.kind == "f" and np.all(np.mod(values[chosen], 1) == 0):
        labels = values[chosen].astype(np.int64).astype(str)
    else:
        labels = values[chosen].astype(str).str.strip()
    distinct = labels.nunique()
    if distinct < 2 or distinct > MAX_LABEL_CLASSES:
        raise CatalogError(f"{source}: --label-column {column} has {distinct} distinct values; a categorical "
                           f"column with 2 to {MAX_LABEL_CLASSES} classes is needed")
    part = _id_part(table, chosen)
    part["question"] = column
    part["label"] = labels.to_numpy()
    return part
