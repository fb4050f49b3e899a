"""The morphology classes of the study, defined once from Galaxy Zoo DECaLS vote fractions.

Each *class question* (e.g. ``bar``) has mutually exclusive classes selected by vote-fraction
thresholds (default t = 0.6, as in the reference study; with t > 0.5 a galaxy gets at most one
class per question). Rules (``f(x)`` = vote fraction of answer x):

    how-rounded : round / in-between / cigar-shaped   f(smooth) > t  and f(how-rounded_X) > t
    edge-on     : yes / no                            f(featured) > t and f(disk-edge-on_X) > t
    bar         : no / weak / strong                  featured, f(edge-on_no) > t, f(bar_X) > t
    spiral-arms : yes / no                            featured, f(edge-on_no) > t, f(has-spiral-arms_X) > t
    winding     : tight / medium / loose              featured, not edge-on, f(arms_yes) > t, f(winding_X) > t
    bulge-size  : none / small / moderate             featured, f(edge-on_no) > t, f(bulge-size_X) > t
    merger      : merger vs no-merger                 merger if f(minor-disturbance), f(major-disturbance)
                                                      or f(merger) > t; no-merger if f(edge-on_no) > 0.6
                                                      and f(merging_none) > 0.8 (fixed, as in the study)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import CatalogError, fraction_column as frac

DEFAULT_THRESHOLD = 0.6

# question -> (class label, answer column)
CLASS_QUESTIONS: dict[str, list[tuple[str, str]]] = {
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


def required_columns() -> list[str]:
    columns = {frac("smooth-or-featured", "smooth"), frac("smooth-or-featured", "featured-or-disk"),
               frac("disk-edge-on", "no"), frac("has-spiral-arms", "yes"), frac("merging", "none")}
    columns |= {column for classes in CLASS_QUESTIONS.values() for _, column in classes if column}
    columns |= {frac("merging", answer) for answer in MERGER_ANSWERS}
    return sorted(columns)


def _parent_mask(table: pd.DataFrame, question: str, t: float) -> np.ndarray:
    smooth = table[frac("smooth-or-featured", "smooth")] > t
    featured = table[frac("smooth-or-featured", "featured-or-disk")] > t
    face_on = featured & (table[frac("disk-edge-on", "no")] > t)
    return {"how-rounded": smooth, "edge-on": featured, "bar": face_on, "spiral-arms": face_on,
            "winding": face_on & (table[frac("has-spiral-arms", "yes")] > t), "bulge-size": face_on}[question].to_numpy()


def class_labels(table: pd.DataFrame, question: str, threshold: float = DEFAULT_THRESHOLD) -> pd.Series:
    """Class label of every galaxy for one question (NaN where it is in no class)."""
    labels = pd.Series(np.nan, index=table.index, dtype=object)
    if question == "merger":
        disturbed = np.any([table[frac("merging", a)] > threshold for a in MERGER_ANSWERS], axis=0)
        calm = (table[frac("disk-edge-on", "no")] > NO_MERGER_EDGE_ON_NO) & (table[frac("merging", "none")] > NO_MERGER_NONE)
        labels[calm.to_numpy()] = "no-merger"
        labels[disturbed] = "merger"
        return labels
    parent = _parent_mask(table, question, threshold)
    for label, column in CLASS_QUESTIONS[question]:
        labels[parent & (table[column] > threshold).to_numpy()] = label
    return labels


def select_classes(table: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, source: str = "catalog") -> pd.DataFrame:
    """Long table (iauname, ra, dec, question, label) of every galaxy in every class it passes.

    Raises CatalogError listing missing columns (``source`` names the file in the message).
    """
    missing = [c for c in ["iauname", "ra", "dec", *required_columns()] if c not in table.columns]
    if missing:
        raise CatalogError(f"{source}: missing columns {', '.join(missing)}")
    parts = []
    for question in CLASS_QUESTIONS:
        labels = class_labels(table, question, threshold)
        chosen = labels.notna().to_numpy()
        part = table.loc[chosen, ["iauname", "ra", "dec"]].copy()
        part["question"] = question
        part["label"] = labels[chosen].to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
