"""Catalog reading: clear one-line errors for duplicates, missing columns, bad coordinates; cross-match."""
import numpy as np
import pandas as pd
import pytest

from analysis import decals_1
from VAE_model.catalog import CatalogError, cross_match, iau_name, read_catalog


def test_duplicate_names_give_one_error_line(tmp_path, capsys):
    path = tmp_path / "gz.csv"
    pd.DataFrame({"iauname": ["J1", "J2", "J1"], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0]}).to_csv(path, index=False)
    with pytest.raises(CatalogError, match="gz.csv: 1 duplicate iauname values \\(first: J1\\)"):
        read_catalog(path)
    assert decals_1.main(["--run", str(tmp_path / "run"), "--catalog", str(path)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "duplicate" in err and "\n" not in err


def test_non_finite_coordinates_and_missing_columns_are_named(tmp_path):
    path = tmp_path / "gz.parquet"
    pd.DataFrame({"iauname": ["J1"], "ra": [np.nan], "dec": [0.0]}).to_parquet(path)
    with pytest.raises(CatalogError, match="non-finite values in column ra"):
        read_catalog(path)
    pd.DataFrame({"iauname": ["J1"]}).to_parquet(path)
    with pytest.raises(CatalogError, match="missing columns ra, dec"):
        read_catalog(path)


def test_underscore_spelling_is_mapped_to_galaxy_zoo_names(tmp_path):
    path = tmp_path / "gz.csv"
    pd.DataFrame({"iauname": ["J1"], "ra": [1.0], "dec": [2.0], "smooth_or_featured_smooth_fraction": [0.7],
                  "disk_edge_on_yes_fraction": [0.1]}).to_csv(path, index=False)
    table = read_catalog(path)
    assert {"smooth-or-featured_smooth_fraction", "disk-edge-on_yes_fraction"} <= set(table.columns)


def test_cross_match_uses_great_circle_separations():
    ra = np.array([150.0, 150.1, 359.9999])
    dec = np.array([40.0, 40.0, 0.0])
    offset_deg = 0.5 / 3600
    index, sep = cross_match(ra, dec, ra + offset_deg / np.cos(np.radians(dec)), dec, radius_arcsec=1.0)
    assert list(index) == [0, 1, 2] and np.allclose(sep, 0.5, atol=1e-3)
    index, _ = cross_match(ra, dec, ra, dec + 2.0 / 3600, radius_arcsec=1.0)
    assert list(index) == [-1, -1, -1]
    assert iau_name(150.0, 40.0) == "J100000.00+400000.0"


# ----------------------------------------------------------------------------- values (issue 10)
def _one_question_catalog(path, smooth, featured, artifact=None, **extra):
    n = len(smooth)
    table = {"iauname": [f"J{i}" for i in range(n)], "ra": np.arange(n, dtype=float), "dec": np.zeros(n),
             "smooth-or-featured_smooth_fraction": smooth, "smooth-or-featured_featured-or-disk_fraction": featured,
             "smooth-or-featured_artifact_fraction": artifact if artifact is not None else [0.0] * n, **extra}
    pd.DataFrame(table).to_csv(path, index=False)
    return path


def test_fractions_stored_as_numeric_strings_are_converted(tmp_path):
    path = tmp_path / "gz.parquet"
    pd.DataFrame({"iauname": ["J1", "J2", "J3"], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0],
                  "smooth-or-featured_smooth_fraction": ["0.7", "0.2", ""],
                  "smooth-or-featured_featured-or-disk_fraction": ["0.3", "0.8", None],
                  "smooth-or-featured_artifact_fraction": ["0", "0", None]}).to_parquet(path)
    table = read_catalog(path)
    assert table["smooth-or-featured_smooth_fraction"].dtype.kind == "f"
    assert np.isnan(table["smooth-or-featured_smooth_fraction"][2])
    selection, counts, _, _ = decals_1.select(path)
    assert set(zip(selection["iauname"], selection["label"])) == {("J1", "smooth"), ("J2", "featured-or-disk")}


def test_non_numeric_fractions_name_the_file_and_column(tmp_path, capsys):
    path = _one_question_catalog(tmp_path / "gz.csv", ["0.7", "abc"], [0.3, 0.5])
    with pytest.raises(CatalogError, match="gz.csv: column smooth-or-featured_smooth_fraction is not numeric.*'abc'"):
        read_catalog(path)
    assert decals_1.main(["--run", str(tmp_path / "run"), "--catalog", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "not numeric" in err


def test_percentages_are_recognised_and_named(tmp_path):
    path = _one_question_catalog(tmp_path / "gz.csv", [70.0, 12.5], [30.0, 87.5])
    with pytest.raises(CatalogError, match=r"column smooth-or-featured_smooth_fraction looks like percentages "
                                           r"\(max 70\); divide by 100"):
        read_catalog(path)


def test_fractions_outside_0_1_are_rejected(tmp_path):
    path = _one_question_catalog(tmp_path / "gz.csv", [0.7, -0.2], [0.3, 1.2])
    with pytest.raises(CatalogError, match=r"smooth-or-featured_smooth_fraction has values outside \[0, 1\] "
                                           r"\(min -0.2, max 0.7\)"):
        read_catalog(path)
    path = _one_question_catalog(tmp_path / "gz2.csv", [0.7, 0.1], [0.3, 250.0])
    with pytest.raises(CatalogError, match="featured-or-disk_fraction has values outside"):
        read_catalog(path)


# ----------------------------------------------------------------------------- column spellings
def test_campaign_suffix_and_upper_case_identifiers_are_understood(tmp_path):
    path = tmp_path / "gz.csv"
    pd.DataFrame({"IAUNAME": ["J1", "J2"], "RA": [1.0, 2.0], "DEC": [0.0, 0.0],
                  "smooth-or-featured-dr5_smooth_fraction": [0.8, 0.1],
                  "smooth-or-featured-dr5_featured-or-disk_fraction": [0.1, 0.9],
                  "smooth-or-featured-dr5_artifact_fraction": [0.1, 0.0],
                  "smooth_or_featured_dr5_total_votes": [40, 38]}).to_csv(path, index=False)
    table = read_catalog(path)
    assert {"iauname", "ra", "dec", "smooth-or-featured_smooth_fraction",
            "smooth-or-featured_total-votes"} <= set(table.columns)
    selection, _, _, notes = decals_1.select(path)
    assert list(selection["label"]) == ["smooth", "featured-or-disk"]
    assert notes["questions_used"] == ["smooth-or-featured"]


def test_one_question_under_two_campaigns_needs_a_choice(tmp_path, capsys):
    path = tmp_path / "gz.csv"
    pd.DataFrame({"iauname": ["J1"], "smooth-or-featured-dr5_smooth_fraction": [0.8],
                  "smooth-or-featured-dr8_smooth_fraction": [0.2]}).to_csv(path, index=False)
    with pytest.raises(CatalogError, match="all mean smooth-or-featured_smooth_fraction.*--campaign dr5/dr8"):
        read_catalog(path, required=["iauname"])
    table = read_catalog(path, required=["iauname"], campaign="dr8")
    assert table["smooth-or-featured_smooth_fraction"][0] == pytest.approx(0.2)


def test_iauname_from_a_path_column_and_fractions_from_counts(tmp_path):
    path = tmp_path / "gz.csv"
    pd.DataFrame({"fits_loc": ["/data/dr5/J132/J132200.16+005202.0.fits", "/data/dr5/J124/J124118.73+010040.0.fits"],
                  "smooth-or-featured_smooth": [30, 5], "smooth-or-featured_featured-or-disk": [8, 33],
                  "smooth-or-featured_artifact": [2, 2]}).to_csv(path, index=False)
    table = read_catalog(path, required=["iauname"])
    assert list(table["iauname"]) == ["J132200.16+005202.0", "J124118.73+010040.0"]
    assert table.attrs["iauname_from"] == "fits_loc" and table.attrs["fractions_from_counts"] == ["smooth-or-featured"]
    assert table["smooth-or-featured_smooth_fraction"].tolist() == pytest.approx([0.75, 0.125])
    with pytest.raises(CatalogError, match="missing columns ra, dec"):     # positions still required by default
        read_catalog(path)


def test_min_votes_takes_galaxies_with_few_votes_out_of_the_question(tmp_path, capsys):
    path = _one_question_catalog(tmp_path / "gz.csv", [0.9, 0.9, 0.1], [0.1, 0.1, 0.9],
                                 **{"smooth-or-featured_total-votes": [40, 4, 12]})
    run = tmp_path / "run"
    assert decals_1.main(["--run", str(run), "--catalog", str(path)]) == 0        # default: no cut
    assert len(pd.read_csv(run / "selection" / "classes.csv")) == 3
    assert decals_1.main(["--run", str(run), "--catalog", str(path), "--min-votes", "10"]) == 0
    classes = pd.read_csv(run / "selection" / "classes.csv")
    assert list(classes["iauname"]) == ["J0", "J2"]
    assert "--min-votes 10 took out of their question: smooth-or-featured 1" in capsys.readouterr().out


def test_duplicate_rows_of_one_galaxy_keep_the_most_voted_row(tmp_path):
    path = _one_question_catalog(tmp_path / "gz.csv", [0.9, 0.2], [0.1, 0.8],
                                 **{"smooth-or-featured_total-votes": [10, 40]})
    table = pd.read_csv(path)
    table["iauname"] = "J1"
    table["ra"] = 1.0
    table.to_csv(path, index=False)
    with pytest.raises(CatalogError, match="1 duplicate iauname values"):
        read_catalog(path)
    kept = read_catalog(path, duplicates="most-votes")
    assert len(kept) == 1 and kept["smooth-or-featured_smooth_fraction"][0] == pytest.approx(0.2)
    assert kept.attrs["duplicates_dropped"] == 1
