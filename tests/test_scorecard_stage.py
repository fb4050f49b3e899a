"""analysis/decals_7.py on the tiny two-survey run: the scorecard is written with every feature set,
its ratios and the cross-survey retrieval, and recorded in the provenance."""
import pandas as pd

from analysis import decals_7
from VAE_model import provenance, runfiles
from test_transfer import build_transfer_run


def test_scorecard_stage_writes_every_feature_set_and_records_its_outputs(tmp_path_factory):
    run = build_transfer_run(tmp_path_factory.mktemp("transfer"))["run"]
    assert decals_7.main(["--run", str(run), "--device", "cpu", "--contrastive-seconds", "1", "--no-morphology",
                          "--invariance-galaxies", "20", "--quiet"]) == 0
    table = pd.read_csv(run / runfiles.SCORECARD_CSV)
    assert set(table["feature_set"]) == {"vae", "pixel_pca", "aligned_pca", "contrastive"}
    for feature_set in ("vae", "pixel_pca"):
        metrics = set(table.loc[table["feature_set"] == feature_set, "metric"])
        assert {"ratio_quarter_turn", "ratio_any_angle", "ratio_mirror", "ratio_shift", "ratio_survey",
                "retrieval_top1"} <= metrics
    aligned = table[(table["feature_set"] == "aligned_pca") & (table["metric"] == "ratio_quarter_turn")]["value"]
    assert aligned.iloc[0] < 0.01          # moment alignment: a quarter turn gives the same aligned pixels
    assert (table["value"].between(0, 2)).all()
    assert "Feature scorecard" in (run / runfiles.SCORECARD_MD).read_text()
    for name in (runfiles.SCORECARD_CSV, runfiles.SCORECARD_MD, runfiles.SCORECARD_JSON, runfiles.SCORECARD_CONTRASTIVE):
        assert provenance.problem(run, name, "analysis/decals_7.py") is None, name
