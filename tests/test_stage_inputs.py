"""Every stage called on a run directory without its inputs says, in one line, which stage to run."""
import importlib

import pytest

STAGES = [
    ("Galaxy_VAE_n", [], "make_datatxt.py"),
    ("analysis.decals_2_1", [], "analysis/decals_1.py"),
    ("analysis.decals_2_2", [], "make_datatxt.py"),
    ("analysis.decals_2_3", [], "make_datatxt.py"),
    ("analysis.decals_3", [], "analysis/decals_2_2.py"),
    ("analysis.decals_4", [], "make_datatxt.py"),
    ("analysis.decals_5", [], "analysis/decals_2_1.py"),
    ("analysis.decals_6", ["--name", "auto"], ".py"),
    ("transfer.make_pairs", [], "Galaxy_VAE_n.py"),
    ("transfer.no_tf", [], "Galaxy_VAE_n.py"),
    ("transfer.adapt", ["--method", "mmd"], "Galaxy_VAE_n.py"),
    ("transfer.evaluate", [], "transfer/no_tf.py"),
]


@pytest.mark.parametrize("module_name, extra, earlier_stage", STAGES, ids=[s[0] for s in STAGES])
def test_missing_inputs_name_the_earlier_stage(module_name, extra, earlier_stage, tmp_path, capsys):
    module = importlib.import_module(module_name)
    assert module.main(["--run", str(tmp_path), *extra]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert earlier_stage in err[0] and "run `" in err[0]


def test_first_stage_without_a_catalog_names_the_file(tmp_path, capsys):
    module = importlib.import_module("analysis.decals_1")
    assert module.main(["--run", str(tmp_path), "--catalog", str(tmp_path / "gz.parquet")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "gz.parquet" in err and "\n" not in err
