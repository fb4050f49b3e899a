"""Part I, step 7: the feature scorecard. Are the run's latents morphology, not pose and survey?

The run's VAE features (``mu``: the content latents of a pose-separated VAE) are compared, on the
same galaxies, folds and transformed copies, with feature sets of the same width: PCA of the pixels,
PCA of the pose-aligned pixels (what the moment alignment alone buys), classical morphology, and a
contrastive (SimCLR) encoder with the VAE's encoder backbone trained here for as long as the VAE
trained (VAE_model/contrastive.py). Metrics (VAE_model/scorecard.py, with 95% intervals):
precision@10, 5-fold linear probe and random forest on every label the run has (the Galaxy Zoo
questions and label columns of class_index.csv; on the mock also the TRUE type of truth.parquet, free
of volunteer noise); orientation, shift and survey ratios (0 = invariant, ~1 = the transform moves a
galaxy as far as another galaxy); on runs with overlap pairs, cross-survey retrieval top-1 and a
forest trained on DECaLS features scored on BASS+MzLS features. The supervised CNN of
analysis/decals_5.py is quoted from its results (same folds) where it ran.

READS   RUN/best.pt (Galaxy_VAE_n.py), RUN/train.txt and its cache RUN/cache/ (make_datatxt.py)
        RUN/selection/class_index.csv (analysis/decals_2_1.py; optional: labels)
        RUN/transfer/pairs.csv, decals_pairs.txt, bass_pairs.txt (transfer/make_pairs.py; optional)
        RUN/classification/results.csv (analysis/decals_5.py; optional: the CNN's accuracies)
        RUN/loss_history.csv (the VAE's training time, the contrastive encoder's budget)
        MOCK_DIR/truth.parquet (the mock's true types; optional)
WRITES  RUN/scorecard/scorecard.csv    long: feature_set, metric, label, value, low, high, n
        RUN/scorecard/scorecard.md     the table (feature sets x metrics) and plain verdicts
        RUN/scorecard/scorecard.json   flags, seed, verdicts, timings
        RUN/scorecard/contrastive.pt   the contrastive encoder that was scored

    python analysis/decals_7.py --run runs/demo --mock-dir data/mock
    python analysis/decals_7.py --run runs/real --mock-dir none --contrastive-seconds 600
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from VAE_model.cli_args import (add_mock_dir_argument, add_quiet_argument, add_runtime_arguments, cli_main, comma_list,
                                describe_args, non_negative_float, positive_int)

TABLE_COLUMNS = [("precision_at_10", "true_type", "P@10 (true type)"), ("linear", "true_type", "linear (true type)"),
                 ("forest", "true_type", "forest (true type)"), ("gz_forest_mean", "", "forest (GZ mean)"),
                 ("gz_precision_mean", "", "P@10 (GZ mean)"),
                 ("ratio_quarter_turn", "", "quarter turn"), ("ratio_any_angle", "", "any angle"),
                 ("ratio_mirror", "", "mirror"), ("ratio_shift", "", "shift 0.5 px"), ("ratio_survey", "", "survey"),
                 ("retrieval_top1", "", "retrieval top-1"), ("forest_same_survey", "pairs", "forest DECaLS"),
                 ("forest_other_survey", "pairs", "forest BASS+MzLS")]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    add_mock_dir_argument(parser)
    parser.add_argument("--contrastive-seconds", type=non_negative_float, default=None,
                        help="wall time of the contrastive encoder's training (default: the VAE's, from "
                             "RUN/loss_history.csv); 0 leaves the contrastive encoder out")
    parser.add_argument("--invariance-galaxies", type=positive_int, default=1000,
                        help="galaxies whose turned/shifted/survey copies give the ratios (default: %(default)s)")
    parser.add_argument("--max-galaxies", type=positive_int, default=20000,
                        help="galaxies scored (a seeded random subset above it) (default: %(default)s)")
    parser.add_argument("--questions", default=None,
                        help="comma list of the class_index.csv questions / label columns to score (default: all; "
                             "the forest on every question is the slow part: about a minute per 2,000 galaxies)")
    parser.add_argument("--no-morphology", action="store_true", help="leave out the classical morphology set")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import feature_sets, provenance, readers, runfiles
from VAE_model.stage import Stage
from VAE_model.contrastive import train_contrastive
from VAE_model.data import image_cache, image_name, split_indices
from VAE_model.feature_sets import Pairs
from VAE_model.nuisance import NuisanceSpec
from VAE_model.runtime import atomic_torch_save, load_model, pick_device, seed_everything, write_json


def labelings(run, paths: list[str], rows: np.ndarray, mock_dir, stage: Stage,
              questions: list[str] | None = None) -> dict[str, np.ndarray]:
    """label name -> label per scored galaxy (None where it has none): the mock's true type, then every
    question / label column of class_index.csv (or those named in ``questions``)."""
    out = {}
    truth_path = readers.mock_truth_path(mock_dir)
    if truth_path is not None:
        stage.uses(provenance.Input.file(truth_path))
        out["true_type"] = readers.mock_true_types(truth_path, [paths[i] for i in rows])
    if (Path(run) / runfiles.CLASS_INDEX_CSV).exists():
        index = readers.read_class_index(run)
        position = {int(r): i for i, r in enumerate(rows)}
        for question, group in index.groupby("question", sort=False):
            if questions is not None and str(question) not in questions:
                continue
            labels = np.full(len(rows), None, dtype=object)
            for image_index, label in zip(group["image_index"], group["label"]):
                if int(image_index) in position:
                    labels[position[int(image_index)]] = label
            out[str(question)] = labels
    # a labelling that names none of these galaxies (e.g. a mock truth table of another sample) is left out
    return {name: labels for name, labels in out.items() if sum(v is not None for v in labels) >= 2}


def survey_pairs(run, image_size: int, name_to_row: dict[str, int], labels: np.ndarray | None) -> Pairs | None:
    """The overlap pairs of transfer/make_pairs.py as float images (DECaLS, BASS+MzLS), their test rows and
    the labels of their DECaLS galaxies; None when the run has no pairs."""
    if not (Path(run) / runfiles.TRANSFER_PAIRS_CSV).exists():
        return None
    pairs = readers.read_pairs(run)
    caches = []
    for name in (runfiles.TRANSFER_DECALS_LIST, runfiles.TRANSFER_BASS_LIST):
        readers.read_train_list(run, name, readers.PAIRS)
        caches.append(image_cache(Path(run) / name, image_size, Path(run) / runfiles.CACHE_DIR, progress=False))
    test = np.flatnonzero(pairs["split"].to_numpy() == "test")
    pair_labels = None
    if labels is not None:
        pair_labels = np.array([labels[name_to_row[n]] if n in name_to_row else None
                                for n in pairs["decals_iauname"]], dtype=object)
        known = np.array([v is not None for v in pair_labels])
        test = test[known[test]]
        train = np.flatnonzero(known & (pairs["split"].to_numpy() != "test"))
        keep = np.sort(np.concatenate([train, test]))
        caches = [c[keep] for c in caches]
        test = np.searchsorted(keep, test)
        pair_labels = pair_labels[keep]
    return Pairs(decals=feature_sets.as_float(caches[0]), bass=feature_sets.as_float(caches[1]),
                 labels=pair_labels, test=test)


def vae_training_seconds(run) -> float:
    table = readers.read_table(run, runfiles.LOSS_CSV, readers.TRAIN, columns=("seconds",))
    return float(pd.to_numeric(table["seconds"], errors="coerce").sum())


def cnn_accuracy(run) -> float | None:
    """Mean over questions of the supervised CNN's 5-fold accuracy in analysis/decals_5.py's results."""
    if not (Path(run) / runfiles.CLASSIFICATION_RESULTS_CSV).exists():
        return None
    results = readers.read_table(run, runfiles.CLASSIFICATION_RESULTS_CSV, readers.CLASSIFY,
                                 columns=("method", "accuracy_mean"))
    cnn = results[results["method"] == "cnn"]
    return float(cnn["accuracy_mean"].mean()) if len(cnn) else None


def add_question_means(table: pd.DataFrame, questions: list[str]) -> pd.DataFrame:
    """Rows gz_forest_mean / gz_precision_mean: each feature set's mean over the Galaxy Zoo questions."""
    extra = []
    for (feature_set, metric), group in table[table["label"].isin(questions)].groupby(["feature_set", "metric"]):
        if metric in ("forest", "precision_at_10"):
            name = "gz_forest_mean" if metric == "forest" else "gz_precision_mean"
            extra.append({"feature_set": feature_set, "metric": name, "label": "", "value": group["value"].mean(),
                          "low": group["low"].mean(), "high": group["high"].mean(), "n": int(group["n"].sum())})
    return pd.concat([table, pd.DataFrame(extra)], ignore_index=True) if extra else table


def cell(table: pd.DataFrame, feature_set: str, metric: str, label: str) -> pd.Series | None:
    hit = table[(table.feature_set == feature_set) & (table.metric == metric) & (table.label == label)]
    return None if hit.empty else hit.iloc[0]


def verdicts(table: pd.DataFrame) -> list[str]:
    """Plain sentences: does the VAE beat pixel PCA (beyond the 95% intervals), match aligned PCA and the
    contrastive encoder, and is it invariant (ratios <= 0.15)?"""
    lines = []
    for metric, label in (("precision_at_10", "true_type"), ("forest", "true_type"), ("gz_forest_mean", "")):
        vae = cell(table, "vae", metric, label)
        if vae is None:
            continue
        for other in ("pixel_pca", "aligned_pca", "contrastive"):
            ref = cell(table, other, metric, label)
            if ref is None:
                continue
            if vae["low"] > ref["high"]:
                word = "above"
            elif vae["high"] < ref["low"]:
                word = "below"
            else:
                word = "level with (intervals overlap)"
            lines.append(f"{metric} {label or ''}: VAE {vae['value']:.3f} is {word} {other} {ref['value']:.3f}".replace("  ", " "))
    ratios = table[(table.feature_set == "vae") & table.metric.str.startswith("ratio_")]
    if len(ratios):
        worst = ratios.loc[ratios["value"].idxmax()]
        lines.append(f"invariance: largest VAE ratio {worst['value']:.3f} ({worst['metric'][6:]}); "
                     f"{'all' if worst['value'] <= 0.15 else 'not all'} <= 0.15")
    return lines


def write_markdown(table: pd.DataFrame, path: Path, lines: list[str], cnn: float | None) -> None:
    present = [c for c in TABLE_COLUMNS if ((table.metric == c[0]) & (table.label == c[1])).any()]
    rows = ["| features | " + " | ".join(c[2] for c in present) + " |", "|---|" + "---|" * len(present)]
    for name in table["feature_set"].unique():
        cells = []
        for metric, label, _ in present:
            r = cell(table, name, metric, label)
            cells.append("" if r is None else f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    text = ["# Feature scorecard", "", "Same galaxies, folds and transformed copies for every feature set; "
            "95% intervals in brackets. Ratios: median distance to the transformed copy over the median distance "
            "between two galaxies (0 = invariant).", "", *rows, ""]
    if cnn is not None:
        text += [f"Supervised CNN (analysis/decals_5.py, same folds): mean accuracy over the Galaxy Zoo questions "
                 f"{cnn:.3f}.", ""]
    text += ["Verdicts:", "", *[f"- {line}" for line in lines], ""]
    path.write_text("\n".join(text))


def score_run(args) -> dict:
    with Stage(args.run, "analysis/decals_7.py", args) as stage:
        return _score(args, stage)


def _score(args, stage: Stage) -> dict:
    run = Path(args.run)
    device = pick_device(args.device)
    checkpoint = readers.checkpoint_path(run)
    model = load_model(checkpoint, device)
    paths = readers.read_train_list(run)
    image_size = model.config.image_size
    cache = image_cache(run / runfiles.TRAIN_TXT, image_size, run / runfiles.CACHE_DIR, progress=not args.quiet)
    rng = np.random.default_rng(args.seed)
    rows = np.arange(len(cache)) if len(cache) <= args.max_galaxies else \
        np.sort(rng.choice(len(cache), args.max_galaxies, replace=False))
    images = feature_sets.as_float(cache[rows])
    questions = comma_list(args.questions)
    labels = labelings(run, paths, rows, args.mock_dir, stage, questions)
    name_to_row = {image_name(paths[i]): k for k, i in enumerate(rows)}
    pair_label_name = "true_type" if "true_type" in labels else (max(labels, key=lambda q: sum(v is not None for v in labels[q]))
                                                                 if labels else None)
    pairs = survey_pairs(run, image_size, name_to_row, labels.get(pair_label_name))
    spec = NuisanceSpec(pixel_scale_arcsec=readers.images_pixel_scale(run, image_size))
    extractors = {"vae": feature_sets.vae_features(model),
                  "pixel_pca": feature_sets.pca_features(images, model.config.latent_dim, seed=args.seed),
                  "aligned_pca": feature_sets.pca_features(images, model.config.latent_dim, aligned=True, seed=args.seed)}
    if not args.no_morphology:
        extractors["morphology"] = feature_sets.morphology_features()
    timings = {"vae_training_s": vae_training_seconds(run)}
    seconds = timings["vae_training_s"] if args.contrastive_seconds is None else args.contrastive_seconds
    if seconds > 0:
        train_idx, _ = split_indices(len(cache), 0.1, args.seed)
        start = time.perf_counter()
        contrastive, _ = train_contrastive(cache, train_idx, dataclasses.replace(model.config, pose="none"),
                                           device, seconds=seconds, seed=args.seed, spec=spec, progress=not args.quiet)
        timings["contrastive_training_s"] = time.perf_counter() - start
        atomic_torch_save({"model": contrastive.state_dict(), "model_config": contrastive.config.to_dict(),
                           "kind": "contrastive"}, runfiles.run_path(run, runfiles.SCORECARD_CONTRASTIVE))
        extractors["contrastive"] = feature_sets.contrastive_features(contrastive)
    invariance_rows = np.sort(rng.choice(len(rows), min(args.invariance_galaxies, len(rows)), replace=False))
    table = pd.DataFrame(feature_sets.score_sets(extractors, images, labels, invariance_rows, pairs, args.seed,
                                                 spec, progress=not args.quiet))
    questions = [q for q in labels if q != "true_type"]
    table = add_question_means(table, questions)
    out = runfiles.run_path(run, runfiles.SCORECARD_CSV)
    table.to_csv(out, index=False)
    lines = verdicts(table)
    cnn = cnn_accuracy(run)
    write_markdown(table, runfiles.run_path(run, runfiles.SCORECARD_MD), lines, cnn)
    write_json(describe_args(args, verdicts=lines, timings_s=timings, n_galaxies=len(rows), labels=list(labels),
                             cnn_mean_accuracy=cnn, model_config=model.config.to_dict(),
                             n_pairs=None if pairs is None else len(pairs.decals)),
               runfiles.run_path(run, runfiles.SCORECARD_JSON))
    return {"table": table, "verdicts": lines}


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    seed_everything(args.seed)
    result = score_run(args)
    for line in result["verdicts"]:
        print(line)
    print(f"done: scorecard in {Path(args.run) / runfiles.SCORECARD_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
