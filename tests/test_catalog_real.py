"""decals_1 (and name matching in decals_2_1) on a real Galaxy Zoo DECaLS export: 4,000 volunteer rows
of the first question only, IAU names only inside fits_loc (../shared/realdata, absent in a user's clone)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_cutouts

from analysis import decals_1, decals_2_1
from VAE_model import runfiles
from VAE_model.data import write_train_list
from VAE_model.morph_classes import CLASS_QUESTIONS

PANOPTES = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "decals_fits_gzbcnn" / "panoptes.csv"


@pytest.fixture(scope="module")
def panoptes():
    if not PANOPTES.exists():
        pytest.skip(f"real Galaxy Zoo catalog not found at {PANOPTES} (../shared/realdata is not part of a clone)")
    return PANOPTES


def test_decals_1_selects_smooth_or_featured_and_names_the_skipped_questions(panoptes, tmp_path, capsys):
    run = tmp_path / "run"
    assert decals_1.main(["--run", str(run), "--catalog", str(panoptes)]) == 0
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert len(skipped) == 1
    assert all(f"{q} (" in skipped[0] for q in CLASS_QUESTIONS if q != "smooth-or-featured")
    assert "names are the file stems of column fits_loc" in out

    classes = pd.read_csv(run / runfiles.SELECTION_CLASSES_CSV)
    assert set(classes["question"]) == {"smooth-or-featured"}
    assert set(classes["label"]) <= {"smooth", "featured-or-disk", "artifact"}
    assert classes["iauname"].str.fullmatch(r"J\d{6}\.\d{2}[+-]\d{6}\.\d").all()
    assert classes["iauname"].is_unique and classes["ra"].notna().all()
    raw = pd.read_csv(panoptes)
    # every selected galaxy passes the rule on its own row of the real file (repeated galaxies left out)
    raw["iauname"] = raw["fits_loc"].str.rsplit("/", n=1).str[-1].str.replace(".fits", "", regex=False)
    single = raw.drop_duplicates("iauname", keep=False).set_index("iauname")
    chosen = classes[classes["iauname"].isin(single.index)]
    fraction = [single.loc[name, f"smooth-or-featured_{label}_fraction"]
                for name, label in zip(chosen["iauname"], chosen["label"])]
    passing = sum(single[f"smooth-or-featured_{a}_fraction"].gt(0.6).sum() for a in ("smooth", "featured-or-disk", "artifact"))
    assert len(chosen) == passing > 1000
    assert min(fraction) > 0.6
    config = json.loads((run / runfiles.SELECTION_CONFIG_JSON).read_text())
    assert config["iauname_from"] == "fits_loc" and config["questions_used"] == ["smooth-or-featured"]
    assert config["n_catalog"] + config["duplicates_dropped"] == len(raw) == 4000


def test_real_catalog_rows_match_images_named_after_them(panoptes, tmp_path):
    run = tmp_path / "run"
    assert decals_1.main(["--run", str(run), "--catalog", str(panoptes)]) == 0
    names = pd.read_csv(run / runfiles.SELECTION_CLASSES_CSV)["iauname"][:3].tolist()
    images = make_cutouts(tmp_path / "images", 3, 32)
    renamed = [p.rename(p.with_name(f"{name}.fits")) for p, name in zip(images, names)]
    write_train_list(run, renamed)
    assert decals_2_1.main(["--run", str(run), "--quiet"]) == 0
    index = pd.read_csv(run / runfiles.CLASS_INDEX_CSV)
    assert sorted(index["iauname"]) == sorted(names) and sorted(index["image_index"]) == [0, 1, 2]
