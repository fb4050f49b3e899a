"""One catalog reader, the Galaxy Zoo DECaLS label schema, and sky cross-matching.

Column names follow Walmsley et al. (2022, MNRAS 509, 3966), Galaxy Zoo DECaLS:
``<question>_<answer>`` (vote count), ``<question>_<answer>_fraction`` and
``<question>_total-votes``. Spellings in use that are mapped to these names on reading:

  * ``_`` instead of ``-`` (``smooth_or_featured_smooth_fraction``);
  * a campaign suffix on the question, ``smooth-or-featured-dr5_smooth_fraction`` (also ``-dr8``,
    ``-dr12``): the per-campaign ("ortho") columns of the Galaxy Zoo DECaLS/DESI releases and of
    zoobot (``zoobot/shared/label_metadata.py``, ``decals_dr5_ortho_pairs``). A catalog holding
    one question under several campaigns is ambiguous: ``campaign=`` picks one;
  * upper-case identifiers ``IAUNAME``, ``RA``, ``DEC``;
  * no ``iauname`` column but a path column (``file_loc``, ``fits_loc``, ``png_loc``,
    ``local_png_loc``, ...): the file stem is the name (Galaxy Zoo saves cutouts as
    ``.../J132/J132200.16+005202.0.fits``).

Values: fraction columns must be numbers in [0, 1] (numeric strings are converted; NaN, a question
nobody was asked, is kept); percentages (0-100) and anything else are refused with one line naming
the file and column. Fractions are computed from the vote counts when a catalog holds only counts.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CAMPAIGNS  # noqa: F401  (re-exported: defined pandas-free there, for the --campaign flag)
from .errors import GalaxyVAEError
from .imageio import image_stem

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
# columns holding a cutout's path, whose file stem is the IAU name (Galaxy Zoo DECaLS / zoobot catalogs)
PATH_COLUMNS = ("file_loc", "fits_loc", "local_fits_loc", "png_loc", "local_png_loc", "jpeg_loc", "jpg_loc",
                "local_jpeg_loc")
# <question>-dr5_<answer>... spelled with underscores: smooth_or_featured_dr5_smooth_fraction
_CAMPAIGN = re.compile(r"^(?P<question>[a-z_]+?)_(?P<campaign>dr\d+)_(?P<rest>.+)$")


def fraction_column(question: str, answer: str) -> str:
    return f"{question}_{answer}_fraction"


def count_column(question: str, answer: str) -> str:
    return f"{question}_{answer}"


def total_votes_column(question: str) -> str:
    return f"{question}_total-votes"


def all_fraction_columns() -> list[str]:
    return [fraction_column(q, a) for q, answers in GZ_QUESTIONS.items() for a in answers]


class CatalogError(GalaxyVAEError, ValueError):
    """A catalog that cannot be used; str() is one line naming the file and the problem."""


def _known_hyphenated_names() -> dict[str, str]:
    names = list(ID_COLUMNS)
    for question, answers in GZ_QUESTIONS.items():
        names.append(total_votes_column(question))
        for answer in answers:
            names += [fraction_column(question, answer), count_column(question, answer)]
    return {name.replace("-", "_"): name for name in names}


def _canonical(column: str, known: dict[str, str]) -> tuple[str | None, str | None]:
    """(Galaxy Zoo name, campaign or None) of a column, or (None, None) if it is not a schema column."""
    key = column.strip()
    if key.lower() in ID_COLUMNS:
        return key.lower(), None
    flat = key.replace("-", "_")
    if flat in known:
        return known[flat], None
    match = _CAMPAIGN.match(flat)
    if match and f"{match['question']}_{match['rest']}" in known:
        return known[f"{match['question']}_{match['rest']}"], match["campaign"]
    return None, None


def normalise_columns(table: pd.DataFrame, campaign: str | None = None, source: str = "catalog") -> pd.DataFrame:
    """Map the spellings listed in the module docstring to Galaxy Zoo's names.

    Raises CatalogError when one Galaxy Zoo column is given under several campaigns and
    ``campaign`` does not say which to use (or names one the catalog does not have).
    """
    known = _known_hyphenated_names()
    targets: dict[str, list[tuple[str, str | None]]] = {}
    for column in table.columns:
        name, found = _canonical(str(column), known)
        if name is not None:
            targets.setdefault(name, []).append((column, found))
    present = {found for spellings in targets.values() for _, found in spellings if found}
    if campaign is not None and campaign not in present:
        raise CatalogError(f"{source}: --campaign {campaign}: no column of that campaign "
                           f"(found: {', '.join(sorted(present)) or 'none'})")
    renamed = {}
    for name, spellings in targets.items():
        if name in table.columns:
            continue                                     # the exact name wins over any variant
        if campaign is not None:
            spellings = [s for s in spellings if s[1] in (campaign, None)] or spellings[:0]
        if len(spellings) > 1:
            raise CatalogError(f"{source}: {', '.join(str(c) for c, _ in spellings)} all mean {name}; "
                               "choose one campaign (--campaign " + "/".join(sorted(present)) + ")")
        if spellings:
            renamed[spellings[0][0]] = name
    return table.rename(columns=renamed)


def iauname_from_paths(table: pd.DataFrame) -> str | None:
    """Fill ``iauname`` from the first path column (file stem) when the table has no iauname column.

    Returns the name of the column used (None if there was none).
    """
    if "iauname" in table.columns:
        return None
    lowered = {str(c).lower(): c for c in table.columns}
    for candidate in PATH_COLUMNS:
        if candidate in lowered:
            column = lowered[candidate]
            table["iauname"] = [image_stem(p) if isinstance(p, str) and p.strip() else "" for p in table[column]]
            return str(column)
    return None


def _as_numbers(table: pd.DataFrame, column: str, source: str) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() & table[column].notna() & (table[column].astype(str).str.strip() != "")
    if bad.any():
        first = table[column][bad].iloc[0]
        raise CatalogError(f"{source}: column {column} is not numeric ({int(bad.sum())} values such as {first!r})")
    return values.to_numpy(dtype=float)


def check_fraction_values(table: pd.DataFrame, source: str = "catalog") -> pd.DataFrame:
    """Convert the Galaxy Zoo fraction and count columns to numbers and check their range.

    Fractions must lie in [0, 1] (NaN allowed); a column within [0, 100] is named as looking like
    percentages. Counts must be >= 0. Raises CatalogError (one line naming file and column).
    """
    for question, answers in GZ_QUESTIONS.items():
        for column in [fraction_column(question, a) for a in answers]:
            if column not in table.columns:
                continue
            values = _as_numbers(table, column, source)
            finite = values[np.isfinite(values)]
            if np.isinf(values).any():
                raise CatalogError(f"{source}: column {column} holds infinite values")
            if len(finite) and (finite.min() < 0 or finite.max() > 1):
                low, high = float(finite.min()), float(finite.max())
                if low >= 0 and high <= 100:
                    raise CatalogError(f"{source}: column {column} looks like percentages (max {high:g}); "
                                       "divide by 100 (vote fractions lie in [0, 1])")
                raise CatalogError(f"{source}: column {column} has values outside [0, 1] (min {low:g}, max {high:g})")
            table[column] = values
        for column in [count_column(question, a) for a in answers] + [total_votes_column(question)]:
            if column not in table.columns:
                continue
            values = _as_numbers(table, column, source)
            if (values[np.isfinite(values)] < 0).any():
                raise CatalogError(f"{source}: column {column} (vote counts) has negative values")
            table[column] = values
    return table


def fractions_from_counts(table: pd.DataFrame) -> list[str]:
    """Add ``<q>_<a>_fraction`` = count / total votes for questions that have counts but no fractions.

    The total is ``<q>_total-votes`` when present, else the sum of the answer counts; NaN where it
    is 0 (nobody was asked). Returns the questions completed this way.
    """
    done = []
    for question, answers in GZ_QUESTIONS.items():
        counts = [count_column(question, a) for a in answers]
        fractions = [fraction_column(question, a) for a in answers]
        if any(f in table.columns for f in fractions) or not all(c in table.columns for c in counts):
            continue
        total_name = total_votes_column(question)
        total = table[total_name] if total_name in table.columns else table[counts].sum(axis=1)
        total = total.to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            for count, fraction in zip(counts, fractions):
                table[fraction] = np.where(total > 0, table[count].to_numpy(dtype=float) / total, np.nan)
        done.append(question)
    return done


def vote_totals(table: pd.DataFrame, question: str) -> np.ndarray | None:
    """Votes a question received per galaxy (``_total-votes``, else the sum of its counts); None if unknown."""
    total_name = total_votes_column(question)
    if total_name in table.columns:
        return table[total_name].to_numpy(dtype=float)
    counts = [count_column(question, a) for a in GZ_QUESTIONS[question]]
    if all(c in table.columns for c in counts):
        return table[counts].sum(axis=1).to_numpy(dtype=float)
    return None


def apply_min_votes(table: pd.DataFrame, min_votes: int) -> tuple[dict[str, int], list[str]]:
    """Blank (NaN) a question's fractions for galaxies where it received fewer than ``min_votes`` votes.

    Such a galaxy is then in no class of that question (nor of the questions below it). Returns
    ({question: galaxies blanked}, questions that have fractions but no vote counts to test).
    """
    blanked, unknown = {}, []
    if min_votes <= 0:
        return blanked, unknown
    for question, answers in GZ_QUESTIONS.items():
        fractions = [fraction_column(question, a) for a in answers if fraction_column(question, a) in table.columns]
        if not fractions:
            continue
        totals = vote_totals(table, question)
        if totals is None:
            unknown.append(question)
            continue
        few = ~(totals >= min_votes)
        table.loc[few, fractions] = np.nan
        blanked[question] = int(few.sum())
    return blanked, unknown


def read_catalog(path: str | Path, required: list[str] | tuple[str, ...] = ID_COLUMNS,
                 campaign: str | None = None, duplicates: str = "error") -> pd.DataFrame:
    """Read a Parquet/CSV/FITS catalog, normalise column names and values, and check it.

    Column spellings and values: see the module docstring. ``table.attrs`` records what was
    done: ``iauname_from`` (path column used, if any), ``fractions_from_counts`` (questions),
    ``duplicates_dropped`` (rows of a repeated name dropped with ``duplicates="most-votes"``).
    Raises CatalogError (one line naming the file) for unreadable files, missing columns,
    duplicate or empty ``iauname`` values, non-finite RA/Dec, or bad vote fractions.
    """
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"{path}: catalog not found")
    try:
        suffix = path.name.lower()
        if suffix.endswith(".parquet"):
            table = pd.read_parquet(path)
        elif suffix.endswith(".csv"):
            table = pd.read_csv(path, low_memory=False)
        elif suffix.endswith((".fits", ".fit")):
            from astropy.table import Table

            table = Table.read(path).to_pandas()
        else:
            raise CatalogError(f"{path}: unknown catalog format (use .parquet, .csv or .fits)")
    except CatalogError:
        raise
    except Exception as error:
        raise CatalogError(f"{path}: unreadable catalog ({type(error).__name__})") from None
    table = normalise_columns(table, campaign, source=str(path))
    iauname_from = iauname_from_paths(table)
    missing = [column for column in required if column not in table.columns]
    if missing:
        hint = "" if "iauname" not in missing else f" (nor a path column {'/'.join(PATH_COLUMNS[:4])}, ...)"
        raise CatalogError(f"{path}: missing columns {', '.join(missing)}{hint}")
    if "iauname" in table.columns:
        table["iauname"] = table["iauname"].astype(str).str.strip()
        if (table["iauname"] == "").any() or table["iauname"].isin(["nan", "None"]).any():
            empty = int(((table["iauname"] == "") | table["iauname"].isin(["nan", "None"])).sum())
            raise CatalogError(f"{path}: {empty} rows without a name in column "
                               f"{iauname_from or 'iauname'}")
    for column in ("ra", "dec"):
        if column in table.columns:
            values = _as_numbers(table, column, str(path))
            if not np.all(np.isfinite(values)):
                raise CatalogError(f"{path}: non-finite values in column {column}")
            table[column] = values
    check_fraction_values(table, str(path))
    from_counts = fractions_from_counts(table)
    n_dropped = 0
    if "iauname" in table.columns:
        table, n_dropped = _resolve_duplicates(table, duplicates, str(path))
    table = table.reset_index(drop=True)
    table.attrs.update(iauname_from=iauname_from, fractions_from_counts=from_counts, duplicates_dropped=n_dropped)
    return table


def _resolve_duplicates(table: pd.DataFrame, duplicates: str, source: str) -> tuple[pd.DataFrame, int]:
    """Rows sharing an iauname: refused (``"error"``) or, when they are one galaxy, reduced to the row
    with the most votes (``"most-votes"``; real Galaxy Zoo exports hold galaxies uploaded twice as
    separate subjects). Rows of one name more than 1 arcsec apart are always refused."""
    repeated = table["iauname"].duplicated(keep=False)
    if not repeated.any():
        return table, 0
    names = table["iauname"][table["iauname"].duplicated()].unique()
    if duplicates == "error":
        raise CatalogError(f"{source}: {len(names)} duplicate iauname values (first: {names[0]})")
    if duplicates != "most-votes":
        raise ValueError(f"duplicates must be 'error' or 'most-votes', got {duplicates!r}")
    if {"ra", "dec"} <= set(table.columns):
        group = table[repeated].groupby("iauname")
        spread_arcsec = 3600 * np.hypot((group["ra"].max() - group["ra"].min()) * np.cos(np.radians(group["dec"].mean())),
                                        group["dec"].max() - group["dec"].min())
        far = spread_arcsec[spread_arcsec > 1.0]
        if len(far):
            raise CatalogError(f"{source}: {len(far)} iauname values name rows more than 1 arcsec apart "
                               f"(first: {far.index[0]}, {far.iloc[0]:.1f} arcsec)")
    totals = [total_votes_column(q) for q in GZ_QUESTIONS if total_votes_column(q) in table.columns]
    votes = table[totals].fillna(0).sum(axis=1) if totals else pd.Series(0.0, index=table.index)
    order = np.lexsort((np.arange(len(table)), -votes.to_numpy()))     # most votes first, then file order
    keep = ~table["iauname"].iloc[order].duplicated().to_numpy()
    kept = np.sort(order[keep])
    return table.iloc[kept], int(len(table) - len(kept))


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


# A name match is checked against the sky: an image named after a catalog galaxy should be centred on
# it. Legacy Survey / Galaxy Zoo cutouts are requested at the catalog position, and the IAU name itself
# rounds the position to < 0.2 arcsec, so a centre more than 5 arcsec (19 DECaLS pixels of 0.262") away
# is another galaxy or another cutout saved under that name.
NAME_MATCH_TOLERANCE_ARCSEC = 5.0


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation (astropy ``SkyCoord.separation``) of paired positions, arcsec; NaN where
    either position is unknown."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra1, dec1, ra2, dec2 = (np.asarray(values, dtype=float) for values in (ra1, dec1, ra2, dec2))
    sep = np.full(len(ra1), np.nan)
    known = np.isfinite(ra1) & np.isfinite(dec1) & np.isfinite(ra2) & np.isfinite(dec2)
    if known.any():
        one = SkyCoord(ra1[known] * u.deg, dec1[known] * u.deg)
        two = SkyCoord(ra2[known] * u.deg, dec2[known] * u.deg)
        sep[known] = one.separation(two).to(u.arcsec).value
    return sep
