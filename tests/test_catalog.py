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
