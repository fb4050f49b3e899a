"""One catalog reader, the Galaxy Zoo DECaLS label schema, and sky cross-matching.

Column names follow Walmsley et al. (2022, MNRAS 509, 3966), Galaxy Zoo DECaLS:
``<question>_<answer>`` (vote count), ``<question>_<answer>_fraction`` and
``<question>_total-votes``. Real catalogs are read with hyphens; the same names with ``_``
instead of ``-`` are accepted and mapped back to the hyphenated form.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Galaxy Zoo DECaLS decision tree: question -> answers (Walmsley et al. 2022, Table 1).
GZ_QUESTIONS: dict[str, tuple[str, ...]] = {
    "smooth-or-featured": ("smooth", "featured-or-disk", "artifact"),
    "disk-edge-on": ("yes", "no"),
    "has-spiral-arms": ("yes", "no"),
    "bar": ("strong", "weak", "no"),
    "bulge-size": ("dominant", "large", "moderate", "small", "none"),
    "how-rounded": ("round", "in-between", "cigar-shaped"),
    "spiral-winding": ("tight", "medium", "loose"),
    "merging": ("none", "minor-disturbance", "major-disturbance", "merger"),
}
ID_COLUMNS = ("iauname", "ra", "dec")


def fraction_column(question: str, answer: str) -> str:
    return f"{question}_{answer}_fraction"


def count_column(question: str, answer: str) -> str:
    return f"{question}_{answer}"


def total_votes_column(question: str) -> str:
    return f"{question}_total-votes"


def all_fraction_columns() -> list[str]:
    return [fraction_column(q, a) for q, answers in GZ_QUESTIONS.items() for a in answers]


class CatalogError(ValueError):
    """A catalog that cannot be used; str() is one line naming the file and the problem."""


def _known_hyphenated_names() -> dict[str, str]:
    names = list(ID_COLUMNS)
    for question, answers in GZ_QUESTIONS.items():
        names.append(total_votes_column(question))
        for answer in answers:
            names += [fraction_column(question, answer), count_column(question, answer)]
    return {name.replace("-", "_"): name for name in names}


def normalise_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Map underscore spellings (``smooth_or_featured_smooth_fraction``) to Galaxy Zoo's hyphens."""
    known = _known_hyphenated_names()
    renamed = {column: known[column.replace("-", "_")] for column in table.columns
               if column.replace("-", "_") in known and column != known[column.replace("-", "_")]}
    return table.rename(columns=renamed)


def read_catalog(path: str | Path, required: list[str] | tuple[str, ...] = ID_COLUMNS) -> pd.DataFrame:
    """Read a Parquet/CSV/FITS catalog, normalise column names and check it.

    Raises CatalogError (one line naming the file) for unreadable files, missing columns,
    duplicate ``iauname`` values, or non-finite RA/Dec.
    """
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"{path}: catalog not found")
    try:
        suffix = path.name.lower()
        if suffix.endswith(".parquet"):
            table = pd.read_parquet(path)
        elif suffix.endswith(".csv"):
            table = pd.read_csv(path)
        elif suffix.endswith((".fits", ".fit")):
            from astropy.table import Table

            table = Table.read(path).to_pandas()
        else:
            raise CatalogError(f"{path}: unknown catalog format (use .parquet, .csv or .fits)")
    except CatalogError:
        raise
    except Exception as error:
        raise CatalogError(f"{path}: unreadable catalog ({type(error).__name__})") from None
    table = normalise_columns(table)
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise CatalogError(f"{path}: missing columns {', '.join(missing)}")
    if "iauname" in table.columns:
        table["iauname"] = table["iauname"].astype(str).str.strip()
        duplicated = table["iauname"][table["iauname"].duplicated()].unique()
        if len(duplicated):
            raise CatalogError(f"{path}: {len(duplicated)} duplicate iauname values (first: {duplicated[0]})")
    for column in ("ra", "dec"):
        if column in table.columns and not np.all(np.isfinite(table[column].to_numpy(dtype=float))):
            raise CatalogError(f"{path}: non-finite values in column {column}")
    return table.reset_index(drop=True)


def iau_name(ra_deg: float, dec_deg: float) -> str:
    """IAU-style name 'Jhhmmss.ss+ddmmss.s' from J2000 coordinates in degrees."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    coord = SkyCoord(ra_deg * u.deg, dec_deg * u.deg)
    ra = coord.ra.to_string(unit=u.hourangle, sep="", precision=2, pad=True)
    dec = coord.dec.to_string(sep="", precision=1, alwayssign=True, pad=True)
    return f"J{ra}{dec}"


def cross_match(ra1, dec1, ra2, dec2, radius_arcsec: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """For each source of catalog 1, the index of its nearest catalog-2 source within the radius.

    Uses astropy ``match_to_catalog_sky`` (great-circle separations). Returns ``(index, sep_arcsec)``
    with index -1 where no counterpart lies within ``radius_arcsec``.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra1, dec1, ra2, dec2 = (np.asarray(values, dtype=float) for values in (ra1, dec1, ra2, dec2))
    if len(ra1) == 0 or len(ra2) == 0:
        return np.full(len(ra1), -1, dtype=int), np.full(len(ra1), np.inf)
    coords1 = SkyCoord(ra1 * u.deg, dec1 * u.deg)
    coords2 = SkyCoord(ra2 * u.deg, dec2 * u.deg)
    index, separation, _ = coords1.match_to_catalog_sky(coords2)
    sep_arcsec = separation.to(u.arcsec).value
    index = np.where(sep_arcsec <= radius_arcsec, index, -1)
    return index.astype(int), sep_arcsec
