"""Part I, step 5: how well do the VAE latents classify morphology? Latents vs pixel PCA, classical morphology, a CNN.

For every class question (rows of class_index.csv grouped by question) four kinds of features
are compared on the SAME galaxies and the SAME stratified folds (VAE_model.classify):
  latents     mu of the trained VAE with a random forest (200 trees), kNN (k = 10, standardised)
              and logistic regression (standardised)
  pixel PCA   the baseline: PCA of the image pixels (the decode-once cache, block-averaged to at most
              --pca-max-px a side) to as many components as the latent size, fitted on each training
              fold, then the same random forest; latents that do not beat it are not worth having
  morphology  classical non-parametric morphology of the r band (concentration, asymmetry,
              smoothness, Gini, M20, ellipticity; VAE_model.morphology, statmorph definitions in
              simplified form) with a random forest; NaN of undetected galaxies -> fold median
  cnn         a supervised CNN with the VAE encoder's architecture (VAE_model.supervised), trained
              from scratch on the images of each training fold (cross-entropy, Adam 1e-3,
              flips/quarter turns) for --cnn-epochs epochs
Classes with fewer galaxies than the folds are dropped; a question with fewer than two classes
left is skipped and listed. The morphology is measured on the r-band flux (nanomaggies) read from
each FITS file at its own resolution (VAE_model.imageio.read_raw), so the negative sky noise is kept;
for PNG/JPG cutouts, which hold no flux, on the stretched r channel of the cache.

Questions: every question of class_index.csv (the Galaxy Zoo vote-fraction questions and any
``--label-column`` that analysis/decals_1.py recorded there, question = column name); --questions
or --label-column chooses among them. A label column is recorded by decals_1 (not read here from
the catalog) so that all stages see the same galaxies and labels:
    python analysis/decals_1.py --run R --catalog cat.csv --label-column ring
    python analysis/decals_2_1.py --run R
    python analysis/decals_5.py --run R --label-column ring

READS   RUN/selection/class_index.csv (analysis/decals_2_1.py)
        RUN/latents/mu.npy (analysis/decals_2_2.py), rows = lines of RUN/train.txt
        RUN/best.pt (Galaxy_VAE_n.py; only its image size and encoder configuration are used)
        RUN/train.txt, the image cache RUN/cache/ (built if absent), the FITS files (morphology)
WRITES  RUN/classification/results.csv         question, method (latents, pixel_pca, morphology, cnn), model,
                                               n_galaxies, n_classes, folds, accuracy_mean/std, macro_f1_mean/std, seed
        RUN/classification/results.md          table questions x methods (accuracy, macro F1) and whether
                                               "RF on latents ~ CNN on images" holds
        RUN/classification/confusion_<question>.png   confusion matrices (RF on latents first)
        RUN/classification/confusion.json      every confusion matrix (summed over folds) with class order
        RUN/classification/morphology_features.csv    the six morphology numbers per galaxy used
        RUN/classification/classification_config.json flags, seed, git commit, skipped questions, timing

    python analysis/decals_5.py --run runs/demo
    python analysis/decals_5.py --run runs/demo --cnn-epochs 6 --cnn-batch-size 16   # 64 px demo, 2 CPU cores
    python analysis/decals_5.py --run runs/decals --questions bar,edge-on --no-cnn
    python analysis/decals_5.py --run runs/rings --label-column ring --no-cnn
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from VAE_model.cli_args import add_amp_argument, add_quiet_argument, add_runtime_arguments, cli_main, comma_list, describe_args
from VAE_model.config import PCA_MAX_PX

RESULT_COLUMNS = ["question", "method", "model", "n_galaxies", "n_classes", "folds", "accuracy_mean", "accuracy_std",
                  "macro_f1_mean", "macro_f1_std", "seed"]
# (method, model) in table order; the first is the headline, the last the supervised reference
METHODS = [("latents", "random_forest"), ("latents", "knn"), ("latents", "logistic"),
           ("pixel_pca", "random_forest"), ("morphology", "random_forest"), ("cnn", "encoder_cnn")]
METHOD_LABELS = {("latents", "random_forest"): "RF on latents", ("latents", "knn"): "kNN on latents",
                 ("latents", "logistic"): "LR on latents", ("pixel_pca", "random_forest"): "RF on pixel PCA",
                 ("morphology", "random_forest"): "RF on morphology", ("cnn", "encoder_cnn"): "CNN on images"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--folds", type=int, default=5, help="stratified cross-validation folds (default: %(default)s)")
    parser.add_argument("--questions", default=None,
                        help="comma-separated class questions (default: all in class_index.csv), e.g. bar,edge-on")
    parser.add_argument("--max-per-question", type=int, default=None,
                        help="stratified random subsample of at most this many galaxies per question, for speed "
                             "(default: all)")
    parser.add_argument("--cnn-epochs", type=int, default=10,
                        help="epochs of the supervised CNN per fold (default: %(default)s; demo on 2 CPU cores: 6 with "
                             "--cnn-batch-size 16)")
    parser.add_argument("--cnn-batch-size", type=int, default=32,
                        help="CNN batch size (default: %(default)s); a few hundred galaxies per question need "
                             "small batches to get enough optimiser steps")
    parser.add_argument("--cnn-lr", type=float, default=1e-3, help="CNN Adam learning rate (default: %(default)s)")
    parser.add_argument("--no-cnn", dest="cnn", action="store_false", help="skip the supervised CNN baseline")
    parser.add_argument("--no-morphology", dest="morphology", action="store_false",
                        help="skip the classical morphology baseline")
    parser.add_argument("--no-pca", dest="pca", action="store_false",
                        help="skip the pixel-PCA baseline (PCA of the pixels, as many components as the latent size)")
    parser.add_argument("--pca-max-px", type=int, default=PCA_MAX_PX,
                        help="the pixel PCA sees the cached images block-averaged to at most this many pixels a side "
                             "(default: %(default)s; bounds memory at 256 px)")
    parser.add_argument("--label-column", action="append", default=[], metavar="NAME",
                        help="score only these label columns recorded by analysis/decals_1.py --label-column "
                             "(repeat or separate by commas)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="'RF on latents ~ CNN' holds when the mean accuracy difference over questions is within "
                             "this (default: %(default)s, i.e. 5 percentage points)")
    parser.add_argument("--checkpoint", default=None, help="trained VAE giving the image size (default: RUN/best.pt)")
    add_amp_argument(parser)
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import readers, runfiles
from VAE_model.stage import Stage
from VAE_model.errors import StaleInputError
from VAE_model.classify import (MODELS, NotEnoughClassesError, cross_validate, plan_labels, planned_folds,
                                question_labels)
from VAE_model.data import image_cache, image_name
from VAE_model.imageio import FITS_SUFFIXES, ImageError
from VAE_model.models import VAEConfig
from VAE_model.morph_classes import CLASS_QUESTIONS
from VAE_model.runtime import load_checkpoint, pick_device, pick_precision, seed_everything, write_json


# ----------------------------------------------------------------------------- inputs
def load_inputs(run: str, checkpoint: str | None):
    """(class_index table, mu, image paths, VAEConfig), each checked against train.txt."""
    run_path = Path(run)
    index_path = run_path / runfiles.CLASS_INDEX_CSV
    mu_path = run_path / runfiles.LATENT_MU
    classes = readers.read_class_index(run)
    latents = readers.read_latents(run)
    checkpoint = readers.external_checkpoint(run, checkpoint) if checkpoint else readers.checkpoint_path(run)
    config = VAEConfig.from_dict(load_checkpoint(checkpoint)["model_config"])
    readers.check_latents_model(latents, checkpoint, run)
    classes = classes[classes["image_index"].fillna(-1).astype(int) >= 0].copy()
    classes["image_index"] = classes["image_index"].astype(int)
    classes["label"] = classes["label"].astype(str)
    mu = latents.mu
    paths = readers.read_train_list(run)
    if len(mu) != len(paths):
        raise StaleInputError(f"{mu_path}: {len(mu)} rows but train.txt lists {len(paths)} images; "
                              f"re-run `analysis/decals_2_2.py --run {run}`")
    if len(classes) and classes["image_index"].max() >= len(paths):
        raise StaleInputError(f"{index_path}: image_index beyond train.txt; "
                              f"re-run `analysis/decals_2_1.py --run {run}`")
    return classes, np.asarray(mu, dtype=np.float32), paths, config


def choose_questions(classes: pd.DataFrame, requested: str | None, label_columns: list[str] = (),
                     run: str = "RUN") -> list[str]:
    """Questions to score: all of class_index.csv, or those of --questions / --label-column."""
    present = list(dict.fromkeys([q for q in CLASS_QUESTIONS if q in set(classes["question"])] +
                                 list(classes["question"].unique())))
    if label_columns:
        unknown = [q for q in label_columns if q not in present]
        if unknown:
            raise ValueError(f"--label-column {', '.join(unknown)}: not in class_index.csv; record it with "
                             f"`analysis/decals_1.py --run {run} --label-column {','.join(unknown)}` (plus --catalog) "
                             f"and rerun `analysis/decals_2_1.py --run {run}`")
        return list(label_columns)
    if not requested:
        return present
    wanted = comma_list(requested)
    unknown = [q for q in wanted if q not in present]
    if unknown:
        raise ValueError(f"--questions: {', '.join(unknown)} not in class_index.csv (present: {', '.join(present)})")
    return wanted


def schema_order(question: str, classes: list) -> list:
    """Classes in the order of the label schema (morph_classes.CLASS_QUESTIONS), others after, sorted."""
    known = [label for label, _ in CLASS_QUESTIONS.get(question, [])]
    return [c for c in known if c in classes] + sorted(c for c in classes if c not in known)


def stratified_subsample(labels: np.ndarray, max_n: int | None, seed: int, min_per_class: int) -> np.ndarray:
    """Sorted row indices of at most ``max_n`` rows keeping class proportions (all rows if None)."""
    n = len(labels)
    if max_n is None or n <= max_n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    names, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(np.round(counts * max_n / n).astype(int), np.minimum(counts, min_per_class))
    chosen = [rng.choice(np.nonzero(labels == name)[0], size=min(q, c), replace=False)
              for name, q, c in zip(names, quota, counts)]
    return np.sort(np.concatenate(chosen))


def morphology_table(cache, image_indices: np.ndarray, paths: list[str], progress: bool) -> pd.DataFrame:
    """Morphology of the r band of the given images: FITS flux read from the files at their own
    resolution (all cutouts FITS), else the stretched r channel of the cache."""
    from tqdm import tqdm

    from VAE_model.imageio import BANDS, read_raw
    from VAE_model.morphology import FEATURE_NAMES, band_images_from_cache, morphology_one

    image_indices = np.sort(np.asarray(image_indices, dtype=int))
    from_flux = all(p.lower().endswith(FITS_SUFFIXES) for p in paths)
    features = np.full((len(image_indices), len(FEATURE_NAMES)), np.nan)
    unreadable = 0
    with np.errstate(all="ignore"):
        for row, i in enumerate(tqdm(image_indices, desc="morphology", unit="galaxy", disable=not progress,
                                     leave=False)):
            if from_flux:
                try:
                    image = read_raw(paths[i])[BANDS.index("r")]
                except ImageError:
                    unreadable += 1
                    continue
            else:
                image = band_images_from_cache(cache, [i], "r", to_flux=False)[0]
            features[row] = morphology_one(image)
    table = pd.DataFrame(features, columns=list(FEATURE_NAMES))
    table.insert(0, "name", [image_name(paths[i]) for i in image_indices])
    table.insert(0, "image_index", image_indices)
    table.attrs["input"] = ("r-band flux in nanomaggies read from the FITS files" if from_flux
                            else "stretched r channel of the cache (PNG/JPG cutouts hold no flux)")
    table.attrs["unreadable"] = unreadable
    return table


def pixel_table(cache, image_indices: np.ndarray, max_px: int) -> np.ndarray:
    """(N, 3 * s * s) float32 pixels in [0, 1] of the cached images, block-averaged to s <= max_px a side."""
    from VAE_model.feature_sets import block_averaged_pixels

    rows = np.asarray(image_indices, dtype=int)
    return block_averaged_pixels(np.asarray(cache[rows], dtype=np.float32) / 255.0, max_px)


# ----------------------------------------------------------------------------- one question
def classify_question(question: str, table: pd.DataFrame, mu: np.ndarray, morphology: pd.DataFrame | None,
                      cache, config: VAEConfig, args, device, seed: int, pixels: dict | None = None) -> dict:
    """All methods on one question; raises NotEnoughClassesError when it cannot be cross-validated."""
    from VAE_model.supervised import cross_validate_cnn

    plan, y, splits = planned_folds(table["label"].to_numpy(), args.folds, seed)
    plan.classes = schema_order(question, plan.classes)
    image_index = table["image_index"].to_numpy()[plan.keep]
    scores, seconds = {}, {}
    start = time.perf_counter()
    for model in MODELS:
        scores[("latents", model)] = cross_validate(mu[image_index], y, splits, model, seed, plan.classes)
    seconds["latents"] = time.perf_counter() - start
    if pixels is not None:
        start = time.perf_counter()
        x = np.stack([pixels[i] for i in image_index])
        scores[("pixel_pca", "random_forest")] = cross_validate(x, y, splits, "random_forest", seed, plan.classes,
                                                                pca_components=int(mu.shape[1]))
        seconds["pixel_pca"] = time.perf_counter() - start
    if morphology is not None:
        start = time.perf_counter()
        features = morphology.set_index("image_index").loc[image_index, list(morphology.columns[2:])].to_numpy()
        scores[("morphology", "random_forest")] = cross_validate(features, y, splits, "random_forest", seed, plan.classes)
        seconds["morphology"] = time.perf_counter() - start
    if args.cnn:
        start = time.perf_counter()
        scores[("cnn", "encoder_cnn")] = cross_validate_cnn(cache, image_index, y, splits, config, device, args.cnn_epochs,
                                                            args.cnn_batch_size, args.cnn_lr, seed, plan.classes,
                                                            progress=not args.quiet,
                                                            precision=pick_precision(device, args.amp))
        seconds["cnn"] = time.perf_counter() - start
    counts = pd.Series(y).value_counts()
    return {"question": question, "n_galaxies": len(y), "n_classes": len(plan.classes), "folds": plan.folds,
            "folds_requested": plan.folds_requested, "classes": [str(c) for c in plan.classes],
            "class_counts": {str(k): int(v) for k, v in counts.items()}, "majority_fraction": float(counts.max() / len(y)),
            "dropped_classes": plan.dropped_classes, "scores": scores, "seconds": seconds}


def result_rows(result: dict, seed: int) -> list[dict]:
    rows = []
    for (method, model), s in result["scores"].items():
        rows.append({"question": result["question"], "method": method, "model": model,
                     "n_galaxies": result["n_galaxies"], "n_classes": result["n_classes"], "folds": result["folds"],
                     "accuracy_mean": s["accuracy_mean"], "accuracy_std": s["accuracy_std"],
                     "macro_f1_mean": s["macro_f1_mean"], "macro_f1_std": s["macro_f1_std"], "seed": seed})
    return rows


# ----------------------------------------------------------------------------- outputs
def rf_vs_cnn(results: pd.DataFrame, tolerance: float) -> tuple[str, dict]:
    """The sentence (and numbers) on whether RF on latents is as accurate as the CNN on images."""
    acc = results.pivot_table(index="question", columns=["method", "model"], values="accuracy_mean")
    rf, cnn = ("latents", "random_forest"), ("cnn", "encoder_cnn")
    if rf not in acc.columns or cnn not in acc.columns:
        return "RF on latents ~ CNN on images: not tested (CNN baseline not run).", {}
    both = acc[[rf, cnn]].dropna()
    if both.empty:
        return "RF on latents ~ CNN on images: no question scored by both.", {}
    diff = both[rf] - both[cnn]
    mean = float(diff.mean())
    holds = abs(mean) <= tolerance
    verdict = "holds" if holds else ("does not hold: RF on latents is better" if mean > 0
                                     else "does not hold: the CNN is better")
    text = (f"RF on latents ~ CNN on images {verdict}: mean accuracy difference (RF on latents - CNN) over "
            f"{len(diff)} questions = {mean:+.3f} (tolerance +-{tolerance:.3f}; per question: "
            + ", ".join(f"{q} {d:+.3f}" for q, d in diff.items()) + ").")
    return text, {"mean_difference": mean, "holds": holds, "tolerance": tolerance,
                  "per_question": {q: float(d) for q, d in diff.items()}}


def write_markdown(results: pd.DataFrame, infos: list[dict], skipped: dict, verdict: str, path: Path,
                   args) -> None:
    present = [m for m in METHODS if ((results["method"] == m[0]) & (results["model"] == m[1])).any()]
    info = {i["question"]: i for i in infos}
    lines = ["# Morphology classification: latents vs pixel PCA, classical morphology and a supervised CNN", "",
             f"Stratified {args.folds}-fold cross-validation (seed {args.seed}); every method sees the same galaxies "
             "and folds of a question. Cells: mean +- standard deviation over the folds.", ""]
    for metric, title in (("accuracy", "Accuracy"), ("macro_f1", "Macro F1")):
        lines += [f"## {title}", "",
                  "| question | galaxies | classes | folds | largest class | "
                  + " | ".join(METHOD_LABELS[m] for m in present) + " |",
                  "|---|---|---|---|---|" + "---|" * len(present)]
        for question in dict.fromkeys(results["question"]):
            part = results[results["question"] == question]
            cells = []
            for method, model in present:
                row = part[(part["method"] == method) & (part["model"] == model)]
                cells.append(f"{row[f'{metric}_mean'].iloc[0]:.3f} +- {row[f'{metric}_std'].iloc[0]:.3f}"
                             if len(row) else "")
            i = info[question]
            lines.append(f"| {question} | {i['n_galaxies']} | {i['n_classes']} | {i['folds']} | "
                         f"{i['majority_fraction']:.2f} | " + " | ".join(cells) + " |")
        lines.append("")
    means = results.groupby(["method", "model"])["accuracy_mean"].mean()
    lines += ["Mean accuracy over questions: " + ", ".join(f"{METHOD_LABELS[m]} {means[m]:.3f}" for m in present
                                                            if m in means.index) + ".", "", verdict, ""]
    if skipped:
        lines += ["Skipped questions (fewer than two classes with at least as many galaxies as folds):", ""]
        lines += [f"- {q}: {why}" for q, why in skipped.items()] + [""]
    dropped = {i["question"]: i["dropped_classes"] for i in infos if i["dropped_classes"]}
    if dropped:
        lines += ["Classes dropped (fewer galaxies than folds): " +
                  "; ".join(f"{q}: " + ", ".join(f"{c} ({n})" for c, n in d.items()) for q, d in dropped.items()), ""]
    reduced = [f"{i['question']} ({i['folds']})" for i in infos if i["folds"] != i["folds_requested"]]
    if reduced:
        lines += ["Folds reduced to the second-largest class size: " + ", ".join(reduced), ""]
    path.write_text("\n".join(lines))


def plot_confusions(info: dict, path: Path) -> None:
    """Row-normalised confusion matrices of one question, RF on latents first, counts annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in METHODS if m in info["scores"] and m[1] != "knn" and m[1] != "logistic"]
    classes = info["classes"]
    side = 1.0 + 0.55 * len(classes)
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels) + 0.6, side + 0.8), squeeze=False)
    for ax, key in zip(axes[0], panels):
        matrix = np.asarray(info["scores"][key]["confusion"], dtype=float)
        fraction = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
        ax.imshow(fraction, vmin=0, vmax=1, cmap="Blues")
        for (r, c), count in np.ndenumerate(matrix):
            ax.text(c, r, f"{int(count)}", ha="center", va="center", fontsize=7,
                    color="white" if fraction[r, c] > 0.5 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_title(f"{METHOD_LABELS[key]}\nacc {info['scores'][key]['accuracy_mean']:.2f}", fontsize=8)
    axes[0][0].set_ylabel("true (Galaxy Zoo votes)", fontsize=8)
    fig.suptitle(f"{info['question']}: confusion summed over {info['folds']} folds (colour: row fraction)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    run = args.run
    seed_everything(args.seed)
    device = pick_device(args.device)
    started = time.perf_counter()
    with Stage(run, "analysis/decals_5.py", args) as stage:
        try:
            if args.folds < 2:
                raise ValueError(f"--folds must be >= 2, got {args.folds}")
            classes, mu, paths, config = load_inputs(run, args.checkpoint)
            if args.pca_max_px < 1:
                raise ValueError(f"--pca-max-px must be >= 1, got {args.pca_max_px}")
            label_columns = list(dict.fromkeys(n.strip() for v in args.label_column for n in v.split(",") if n.strip()))
            questions = choose_questions(classes, args.questions, label_columns, run)
            tables, skipped = {}, {}
            for number, question in enumerate(questions):
                table = question_labels(classes, question)
                keep = stratified_subsample(table["label"].to_numpy(), args.max_per_question, args.seed + number, args.folds)
                table = table.iloc[keep].reset_index(drop=True)
                try:
                    plan_labels(table["label"].to_numpy(), args.folds)
                    tables[question] = table
                except NotEnoughClassesError as why:
                    skipped[question] = str(why)
            if not tables:
                raise ValueError("no class question has two classes with enough galaxies to cross-validate: "
                                 + "; ".join(f"{q}: {w}" for q, w in skipped.items()))
            needed = np.unique(np.concatenate([t["image_index"].to_numpy() for t in tables.values()]))
            cache = None
            if args.cnn or args.morphology or args.pca:
                cache = image_cache(Path(run) / runfiles.TRAIN_TXT, config.image_size, Path(run) / runfiles.CACHE_DIR,
                                    progress=not args.quiet)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

        out_dir = Path(runfiles.run_path(run, runfiles.CLASSIFICATION_RESULTS_CSV)).parent
        morphology, morphology_seconds = None, 0.0
        if args.morphology:
            start = time.perf_counter()
            morphology = morphology_table(cache, needed, paths, progress=not args.quiet)
            morphology_seconds = time.perf_counter() - start
            morphology.to_csv(runfiles.run_path(run, runfiles.CLASSIFICATION_MORPHOLOGY_CSV), index=False)
        pixels = None
        if args.pca:
            pixels = dict(zip(needed.tolist(), pixel_table(cache, needed, args.pca_max_px)))
        from tqdm import tqdm

        infos, rows = [], []
        for number, (question, table) in enumerate(tqdm(tables.items(), desc="questions", unit="question",
                                                        disable=args.quiet)):
            info = classify_question(question, table, mu, morphology, cache, config, args, device, args.seed, pixels)
            infos.append(info)
            rows += result_rows(info, args.seed)
            plot_confusions(info, runfiles.run_path(run, runfiles.CLASSIFICATION_CONFUSION_PNG.format(question=question)))
        results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
        results.to_csv(runfiles.run_path(run, runfiles.CLASSIFICATION_RESULTS_CSV), index=False)
        verdict, verdict_numbers = rf_vs_cnn(results, args.tolerance)
        write_markdown(results, infos, skipped, verdict, runfiles.run_path(run, runfiles.CLASSIFICATION_RESULTS_MD), args)
        write_json({i["question"]: {f"{m}/{k}": {"classes": s["classes"], "matrix": s["confusion"],
                                                "accuracy_folds": s["accuracy_folds"], "macro_f1_folds": s["macro_f1_folds"]}
                                    for (m, k), s in i["scores"].items()} for i in infos},
                   runfiles.run_path(run, runfiles.CLASSIFICATION_CONFUSION_JSON))
        seconds = time.perf_counter() - started
        record = describe_args(args, device_used=str(device), precision=pick_precision(device, args.amp).describe(),
                                 image_size=config.image_size, latent_dim=int(mu.shape[1]),
                                 morphology_input=morphology.attrs["input"] if morphology is not None else None,
                                 pixel_pca_components=int(mu.shape[1]) if args.pca else None,
                                 questions_scored={i["question"]: {k: i[k] for k in ("n_galaxies", "n_classes", "folds",
                                                                                       "class_counts", "dropped_classes")}
                                                   for i in infos},
                                 questions_skipped=skipped, rf_vs_cnn=verdict_numbers,
                                 seconds={"total": round(seconds, 1), "morphology_features": round(morphology_seconds, 1),
                                          **{f"{q['question']}/{k}": round(v, 1) for q in infos for k, v in q["seconds"].items()}})
        write_json(record, runfiles.run_path(run, runfiles.CLASSIFICATION_CONFIG_JSON))
        stage.settings = record
    means = results.groupby(["method", "model"])["accuracy_mean"].mean()
    summary = ", ".join(f"{METHOD_LABELS[m]} {means[m]:.3f}" for m in METHODS if m in means.index)
    print(f"done: {len(infos)} questions ({len(skipped)} skipped) in {seconds:.0f} s; mean accuracy {summary}; "
          f"in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
