"""Part II gap sweep: what the north/south survey gap costs the Part I features, and how much
domain adaptation wins back, as the gap grows.

For each gap level (``--gaps``, default 0 0.5 1 2) the mock's north (BASS+MzLS) is re-rendered for
the same galaxies (``VAE_model.mock.build_mock_survey(..., gap=g)``; the DECaLS images do not depend
on the gap and stay identical): gap 0 identical surveys (up to noise), 1 the realistic north, 2
harsher. At each gap these models are scored on the same test galaxies (``--methods``; default all,
plain_none only with ``--reference-checkpoint``):
  plain_none       a reference model as it is, e.g. the plain VAE (Galaxy_VAE_n.py --pose none)
  none             the Part I model as it is (RUN/best.pt; the pose-separated VAE by default): no transfer
  consistency      Part I fine-tuned on both surveys, unpaired, with the consistency term of invariant
                   training and no alignment term: "invariant training alone"
                   (VAE_model.adaptation.adapt, method consistency; nuisances from VAE_model/nuisance.py)
  consistency_mmd  the same plus the MMD term: "invariant training + MMD"  (method consistency_mmd)
  mmd              Part I fine-tuned with the MMD alignment term   (method mmd)
  paired           Part I fine-tuned with the paired-latent term    (method paired; the only one that
                   uses the pairs)
Metrics (VAE_model.adaptation.sweep_metrics), each with a 95% bootstrap interval over the test
galaxies: retrieval top-1 / top-10 / median rank of the true DECaLS counterpart of each
BASS+MzLS image, median paired / random-pair latent distance ratio, random forest trained on
DECaLS latents and tested on the BASS+MzLS latents of the test galaxies (cross-survey), random
forests trained and tested within each survey, and the DECaLS reconstruction MSE per pixel.
Pairs are the galaxies of the north footprint (truth table) whose two cutouts the loader accepts
at every gap (a band missing over more than 20% of a cutout gets it rejected, as make_datatxt /
make_pairs reject it), so every gap scores the same galaxies; a seeded random 30%
(``--test-fraction``) are test galaxies at every gap; labels are the DECaLS catalog's
vote-fraction classes (threshold 0.6).

READS   RUN/best.pt (the Part I model), MOCK_DIR/mock_meta.json (the mock's galaxies, size, seed),
        the --reference-checkpoint model when given
WRITES  RUN/gap_sweep/gap_<g>/mock/               the mock rendered at gap g (reused when current)
        RUN/gap_sweep/gap_<g>/pairs.csv, *.txt     the pairs, their split and image lists
        RUN/gap_sweep/gap_<g>/transfer/<method>/   adaptation checkpoints and history
        RUN/gap_sweep/gap_sweep.csv                gap, method, metric, value, ci95_low, ci95_high
        RUN/gap_sweep/gap_sweep.json               the same rows + the settings
        RUN/gap_sweep/gap_sweep.png                metric vs gap, a line per method
        RUN/gap_sweep/gap_examples.png             DECaLS and the north of the same galaxies per gap

    python transfer/gap_sweep.py --run runs/demo --mock-dir data/mock
    python transfer/gap_sweep.py --run runs/demo --gaps 0 1 2 --epochs 4      # quicker
    python transfer/gap_sweep.py --run runs/demo --reference-checkpoint runs/demo_plain/best.pt
    python transfer/gap_sweep.py --run runs/demo --methods none consistency consistency_mmd
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from VAE_model import runfiles
from VAE_model.cli_args import (add_batch_size_argument, add_quiet_argument, add_runtime_arguments,
                                add_workers_argument, cli_main, non_negative_float)
from VAE_model.config import ADAPT_CONSISTENCY_WEIGHT, ADAPT_NUISANCE_SCALE

SWEEP_DIR = "gap_sweep"
# in the order the table and the figure's legend read them
METHODS = ("plain_none", "none", "consistency", "consistency_mmd", "mmd", "paired")
REFERENCE = "plain_none"                               # needs --reference-checkpoint
ADAPTED = ("consistency", "consistency_mmd", "mmd", "paired")   # fine-tuned by VAE_model.adaptation.adapt
METHOD_LABELS = {"plain_none": "reference (plain VAE), no transfer", "none": "no transfer",
                 "consistency": "invariant training alone", "consistency_mmd": "invariant training + MMD",
                 "mmd": "MMD", "paired": "paired (uses the pairs)"}
DEFAULT_GAPS = (0.0, 0.5, 1.0, 2.0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--mock-dir", default=runfiles.DEFAULT_MOCK_DIR,
                        help="the mock the Part I model was trained on (default: %(default)s)")
    parser.add_argument("--gaps", type=float, nargs="+", default=list(DEFAULT_GAPS),
                        help="gap levels, 0 identical surveys .. 1 realistic .. 2 harsher (default: %(default)s)")
    parser.add_argument("--test-fraction", type=float, default=0.3, help="test share of the pairs (default: %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=0.15,
                        help="train pairs held out to choose the adaptation epoch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8, help="adaptation epochs per method and gap (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=2e-4, help="adaptation Adam learning rate (default: %(default)s)")
    add_batch_size_argument(parser, 64, "images per survey per step")
    parser.add_argument("--lambda-mmd", type=float, default=0.1, help="weight of the MMD term (default: %(default)s)")
    parser.add_argument("--lambda-paired", type=float, default=0.1, help="weight of the paired term (default: %(default)s)")
    parser.add_argument("--lambda-consistency", type=non_negative_float, default=ADAPT_CONSISTENCY_WEIGHT,
                        help="weight of the consistency term, methods consistency and consistency_mmd "
                             "(default: %(default)s)")
    parser.add_argument("--nuisance-scale", type=non_negative_float, default=ADAPT_NUISANCE_SCALE,
                        help="multiplies the survey-like nuisances of the consistency term (seeing, depth, "
                             "calibration; 1 = Part I's) (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=None,
                        help="models to score at each gap (default: all; plain_none only with --reference-checkpoint)")
    parser.add_argument("--reference-checkpoint", default=None, metavar="PATH",
                        help="a second Part I model scored as it is, row plain_none: e.g. the plain VAE "
                             "(Galaxy_VAE_n.py --pose none into a side run directory)")
    parser.add_argument("--bootstrap", type=int, default=300, help="bootstrap resamplings (default: %(default)s)")
    add_workers_argument(parser)
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import pandas as pd

from VAE_model import provenance, readers
from VAE_model.adaptation import MMD_METHODS, SWEEP_METRICS, AdaptSettings, adapt, part1_training_setting, sweep_metrics
from VAE_model.data import image_cache, write_image_list
from VAE_model.errors import GalaxyVAEError
from VAE_model.features import encode_arrays, reconstruct_arrays
from VAE_model.imageio import load_image
from VAE_model.morph_classes import CLASS_QUESTIONS, DEFAULT_THRESHOLD, class_labels
from VAE_model.runtime import load_model, pick_device, pick_precision, seed_everything
from VAE_model.files import write_json
from VAE_model.stage import Stage, note_input, note_output


def gap_label(gap: float) -> str:
    return f"gap_{gap:g}"


def read_mock_meta(mock_dir: str | Path) -> dict:
    path = Path(mock_dir) / runfiles.MOCK_META
    if not path.exists():
        raise runfiles.MissingInputError(f"{path}: no mock survey there; run make_datatxt.py --mock N first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise runfiles.MissingInputError(f"{path}: not valid JSON ({error.msg}); rebuild the mock") from None


def render_gap_mock(meta: dict, gap: float, out_dir: Path, workers=None, progress: bool = True) -> Path:
    """The base mock's galaxies with the north at ``gap`` (rebuilt only when not current)."""
    from VAE_model.mock import build_mock_survey, mock_is_current

    if np.isclose(float(meta.get("gap", -1.0)), gap) and meta.get("_dir"):
        return Path(meta["_dir"])                     # the base mock itself is at this gap

    settings = dict(n_galaxies=meta["n_galaxies"], image_size=meta["image_size"], seed=meta["seed"],
                    defect_fraction=meta["defect_fraction"], gap=gap, north_fraction=meta["north_fraction"])
    if not mock_is_current(out_dir, **settings):
        build_mock_survey(out_dir, workers=workers, progress=progress, **settings)
    return out_dir


def unusable_galaxies(mock_dir: Path, image_size: int) -> set[int]:
    """galaxy_id of the north-footprint galaxies with a DECaLS or north cutout the loader rejects."""
    from VAE_model.imageio import ImageError

    truth = pd.read_parquet(mock_dir / runfiles.MOCK_TRUTH)
    bad = set()
    for galaxy_id, decals, bass in truth.loc[truth["in_bass_footprint"],
                                             ["galaxy_id", "decals_iauname", "bass_iauname"]].itertuples(index=False):
        for path in (mock_dir / runfiles.MOCK_DECALS_IMAGES / f"{decals}.fits",
                     mock_dir / runfiles.MOCK_BASS_IMAGES / f"{bass}.fits"):
            try:
                load_image(path, image_size)
            except ImageError:
                bad.add(int(galaxy_id))
    return bad


def gap_pairs(mock_dir: Path, test_fraction: float, seed: int, threshold: float = DEFAULT_THRESHOLD,
              exclude=()):
    """(pairs, labels): one row per galaxy of the north footprint (less ``exclude``, galaxy ids) with
    both image paths and a seeded train/test split by galaxy_id (the same at every gap); DECaLS
    class labels per question."""
    if not 0.0 < test_fraction < 1.0:
        raise runfiles.MissingInputError(f"--test-fraction must lie in (0, 1), got {test_fraction}")
    truth = pd.read_parquet(mock_dir / runfiles.MOCK_TRUTH)
    keep = truth["in_bass_footprint"] & ~truth["galaxy_id"].isin(set(exclude))
    pairs = truth.loc[keep, ["galaxy_id", "decals_iauname", "bass_iauname"]]
    pairs = pairs.sort_values("galaxy_id").reset_index(drop=True)
    if len(pairs) < 4:
        raise runfiles.MissingInputError(f"{mock_dir}: only {len(pairs)} galaxies in the north footprint")
    pairs["decals_path"] = [str((mock_dir / runfiles.MOCK_DECALS_IMAGES / f"{n}.fits").resolve())
                            for n in pairs["decals_iauname"]]
    pairs["bass_path"] = [str((mock_dir / runfiles.MOCK_BASS_IMAGES / f"{n}.fits").resolve())
                          for n in pairs["bass_iauname"]]
    # test galaxies: a seeded draw per galaxy_id, so a galaxy is a test galaxy at every gap
    draw = np.random.default_rng([seed, 12]).uniform(size=int(truth["galaxy_id"].max()) + 1)
    pairs["split"] = np.where(draw[pairs["galaxy_id"].to_numpy()] < test_fraction, "test", "train")
    if (pairs["split"] == "test").sum() < 2 or (pairs["split"] == "train").sum() < 2:
        raise runfiles.MissingInputError(f"{mock_dir}: too few galaxies for a train/test split ({len(pairs)} pairs)")
    catalog = pd.read_parquet(mock_dir / runfiles.MOCK_DECALS_CATALOG).set_index("iauname")
    rows = catalog.loc[pairs["decals_iauname"]].reset_index()
    labels = {question: class_labels(rows, question, threshold).to_numpy(dtype=object) for question in CLASS_QUESTIONS}
    return pairs, labels


def pair_images(pairs: pd.DataFrame, folder: Path, image_size: int, progress: bool = True):
    """uint8 caches (N, 3, S, S) of both surveys' pair images, row-aligned with ``pairs``."""
    caches = []
    for column, name in (("decals_path", "decals_pairs.txt"), ("bass_path", "bass_pairs.txt")):
        write_image_list(pairs[column], folder / name)
        caches.append(image_cache(folder / name, image_size, folder / "cache", progress=progress))
    return caches


def recon_mse(model, images: np.ndarray, device) -> np.ndarray:
    """Per-image reconstruction MSE per pixel (z = mu) in the stretched [0, 1] units."""
    reconstruction = reconstruct_arrays(model, images, device)
    return ((reconstruction - np.asarray(images, np.float32) / 255.0) ** 2).reshape(len(images), -1).mean(axis=1)


def sweep_methods(methods, reference) -> list[str]:
    """The methods to score, in table order: ``methods`` (None: all that apply, plain_none only with a
    reference checkpoint)."""
    if methods is None:
        return [m for m in METHODS if m != REFERENCE or reference is not None]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise runfiles.MissingInputError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if REFERENCE in methods and reference is None:
        raise runfiles.MissingInputError(f"--methods {REFERENCE}: give the reference model with "
                                         "--reference-checkpoint PATH (e.g. a Galaxy_VAE_n.py --pose none run's best.pt)")
    return [m for m in METHODS if m in methods]


def adapt_settings(method: str, settings: dict, seed: int) -> AdaptSettings:
    """The sweep's fine-tuning settings for one method (the MMD weight for both MMD methods)."""
    align_weight = (settings["lambda_mmd"] if method in MMD_METHODS
                    else settings["lambda_paired"] if method == "paired" else 0.0)
    return AdaptSettings(method=method, align_weight=align_weight, consistency_weight=settings["lambda_consistency"],
                         pixel_scale_arcsec=settings["pixel_scale_arcsec"], nuisance_scale=settings["nuisance_scale"],
                         epochs=settings["epochs"],
                         batch_size=settings["batch_size"], lr=settings["lr"], beta=settings["beta"], seed=seed)


def score_gap(model_path: Path, folder: Path, pairs: pd.DataFrame, labels: dict, settings: dict, device,
              seed: int, n_boot: int, progress: bool = True, log=print, methods=METHODS[1:],
              reference: Path | None = None) -> list[dict]:
    """Rows (method, metric, value, ci95_low, ci95_high) of each of ``methods`` at one gap
    (plain_none: the ``reference`` model as it is)."""
    precision = pick_precision(device)
    image_size = int(load_model(model_path).config.image_size)
    decals, bass = pair_images(pairs, folder, image_size, progress)
    split = pairs["split"].to_numpy()
    train = np.flatnonzero(split == "train")
    test = np.flatnonzero(split == "test")
    order = np.random.default_rng([seed, 13]).permutation(train)
    n_val = int(round(len(train) * settings["val_fraction"])) if len(train) >= 10 else 0
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    rows = []
    for method in methods:
        model = load_model(reference if method == REFERENCE else model_path, device)
        if method in ADAPTED:
            seed_everything(seed)
            adapt(folder, model, decals, bass, train_idx, val_idx, adapt_settings(method, settings, seed), device,
                  precision, progress=progress, log=lambda *a: None)
            best = folder / runfiles.ADAPT_BEST.format(method=method)
            model = load_model(best, device)
        mu_d, _ = encode_arrays(model, decals, device, precision)
        mu_b, _ = encode_arrays(model, bass, device, precision)
        metrics = sweep_metrics(mu_d, mu_b, split, labels, recon_mse(model, decals[test], device),
                                n_boot=n_boot, seed=seed)
        for metric, (value, low, high) in metrics.items():
            rows.append({"method": method, "metric": metric, "value": value, "ci95_low": low, "ci95_high": high})
        log(f"  {method:15s} top-1 {metrics['retrieval top-1'][0]:.3f}  ratio "
            f"{metrics['paired / random distance ratio'][0]:.3f}  RF cross {metrics[SWEEP_METRICS[4]][0]:.3f}  "
            f"RF DECaLS {metrics['RF within DECaLS'][0]:.3f}")
    return rows


def save_sweep_figure(table: pd.DataFrame, path: Path) -> Path:
    """One panel per metric: value vs gap with 95% intervals, a line per method."""
    from VAE_model.plots import plt, save_figure

    metrics = list(dict.fromkeys(table["metric"]))
    columns = 4
    n_rows = int(np.ceil(len(metrics) / columns))
    fig, axes = plt.subplots(n_rows, columns, figsize=(3.4 * columns, 2.8 * n_rows), squeeze=False)
    methods = [m for m in METHODS if m in set(table["method"])]
    for ax, metric in zip(axes.flat, metrics):
        for k, method in enumerate(methods):
            part = table[(table["metric"] == metric) & (table["method"] == method)].sort_values("gap")
            if part.empty:
                continue
            x = part["gap"].to_numpy() + (k - (len(methods) - 1) / 2) * 0.03     # side by side, centred on the gap
            error = np.vstack([part["value"] - part["ci95_low"], part["ci95_high"] - part["value"]]).clip(min=0)
            ax.errorbar(x, part["value"], yerr=error, marker="o", ms=3, capsize=2, lw=1,
                        label=METHOD_LABELS[method])
        ax.set_title(metric, fontsize=8)
        ax.set_xlabel("gap (0 identical, 1 realistic north)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    # one legend for the figure (six lines do not fit inside a panel)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3), fontsize=7, frameon=False)
    fig.suptitle("Part II gap sweep (95% bootstrap intervals over the test galaxies)", fontsize=9)
    legend_lines = int(np.ceil(len(names) / 3))
    fig.tight_layout(rect=(0, (0.1 + 0.17 * legend_lines) / fig.get_figheight(), 1, 1))   # room for the legend (inches)
    return save_figure(fig, path)


def run_sweep(run_dir: str | Path, mock_dir: str | Path, gaps, seed: int = 0, test_fraction: float = 0.3,
              settings: dict | None = None, n_boot: int = 300, device="cpu", workers=None, progress: bool = True,
              log=print, methods=None, reference_checkpoint=None) -> pd.DataFrame:
    """The whole sweep as a function (the script's main and the tests call it); returns the table
    and writes RUN/gap_sweep/gap_sweep.csv/.json/.png, recorded by the stage contract. ``methods``:
    as --methods (None: all that apply); ``reference_checkpoint``: the model of the plain_none row."""
    methods = sweep_methods(methods, reference_checkpoint)
    with Stage(run_dir, "transfer/gap_sweep.py", settings={"gaps": list(gaps), "seed": seed, "test_fraction": test_fraction,
                                                          "bootstrap": n_boot, "mock_dir": str(mock_dir),
                                                          "methods": methods,
                                                          "reference_checkpoint": reference_checkpoint and str(reference_checkpoint),
                                                          **(settings or {})}):
        return _sweep(run_dir, mock_dir, gaps, seed, test_fraction, settings, n_boot, device, workers, progress, log,
                      methods, reference_checkpoint)


def _sweep(run_dir, mock_dir, gaps, seed, test_fraction, settings, n_boot, device, workers, progress, log,
           methods, reference_checkpoint) -> pd.DataFrame:
    from tqdm import tqdm

    from VAE_model.mock import check_gap
    from VAE_model.mock.plots import save_gap_examples_png

    import torch

    run_dir, mock_dir, device = Path(run_dir), Path(mock_dir), torch.device(device)
    model_path = readers.checkpoint_path(run_dir)
    part1 = load_model(model_path)
    meta = {**read_mock_meta(mock_dir), "_dir": str(mock_dir)}
    if int(meta["image_size"]) != int(part1.config.image_size):
        raise runfiles.MissingInputError(f"{mock_dir}: mock cutouts are {meta['image_size']} px, the Part I model "
                                         f"({model_path}) takes {part1.config.image_size} px")
    reference = None
    if reference_checkpoint is not None and REFERENCE in methods:
        reference = readers.external_checkpoint(run_dir, reference_checkpoint)
        reference_config = load_model(reference).config
        reference_size = int(reference_config.image_size)
        if reference_config.pose != "none":
            log(f"note: the reference model {reference} is pose-separated (pose {reference_config.pose}), not the "
                f"plain VAE; its row is still named {REFERENCE}")
        if reference_size != int(part1.config.image_size):
            raise runfiles.MissingInputError(f"{reference}: the reference model takes {reference_size} px, the Part I "
                                             f"model ({model_path}) {part1.config.image_size} px")
    gaps = sorted({check_gap(g) for g in gaps})
    settings = {"epochs": 8, "lr": 2e-4, "batch_size": 64, "lambda_mmd": 0.1, "lambda_paired": 0.1,
                "lambda_consistency": AdaptSettings.consistency_weight, "nuisance_scale": AdaptSettings.nuisance_scale,
                "val_fraction": 0.15, **(settings or {})}
    if settings.get("beta") is None:
        settings["beta"] = part1_training_setting(model_path, "beta", 1.0)
    # the nuisance transforms are sized for the images' pixels, as in Part I's training
    settings.setdefault("pixel_scale_arcsec", part1_training_setting(model_path, "pixel_scale_arcsec",
                                                                     AdaptSettings.pixel_scale_arcsec))
    out = runfiles.run_path(run_dir, f"{SWEEP_DIR}/gap_sweep.csv").parent
    rows, mock_dirs, started = [], {}, time.perf_counter()
    for gap in tqdm(gaps, desc="render north", unit="gap", disable=not progress):
        mock_dirs[gap] = render_gap_mock(meta, gap, out / gap_label(gap) / "mock", workers, progress)
    # The same galaxies at every gap: those whose two images the loader accepts at all gaps (a
    # cutout with a band missing over > 20% of it is rejected, as make_datatxt / make_pairs do).
    unusable = {gap: unusable_galaxies(mock_dirs[gap], int(meta["image_size"])) for gap in gaps}
    dropped = set().union(*unusable.values())
    for gap in tqdm(gaps, desc="gap sweep", unit="gap", disable=not progress):
        folder = out / gap_label(gap)
        folder.mkdir(parents=True, exist_ok=True)
        log(f"gap {gap:g}: {len(unusable[gap])} galaxies with an unusable cutout")
        pairs, labels = gap_pairs(mock_dirs[gap], test_fraction, seed, exclude=dropped)
        pairs.to_csv(folder / "pairs.csv", index=False)
        for row in score_gap(model_path, folder, pairs, labels, settings, device, seed, n_boot, progress, log,
                             methods, reference):
            rows.append({"gap": gap, **row, "n_pairs": len(pairs), "n_test_pairs": int((pairs["split"] == "test").sum()),
                         "n_unusable_at_this_gap": len(unusable[gap])})
    table = pd.DataFrame(rows)
    table.to_csv(out / "gap_sweep.csv", index=False, float_format="%.6g")
    record = {"settings": {**settings, "gaps": gaps, "seed": seed, "test_fraction": test_fraction, "bootstrap": n_boot,
                           "mock_dir": str(mock_dir), "part1_model": str(model_path), "methods": methods,
                           "reference_model": str(reference) if reference is not None else None},
              "seconds": round(time.perf_counter() - started, 1), "rows": rows}
    write_json(record, out / "gap_sweep.json")
    save_sweep_figure(table, out / "gap_sweep.png")
    save_gap_examples_png(mock_dirs, out / "gap_examples.png")
    # the sweep's results under the stage contract (the per-gap folders are its work area, as RUN/cache is)
    note_output(run_dir, *(f"{SWEEP_DIR}/{name}" for name in ("gap_sweep.csv", "gap_sweep.json", "gap_sweep.png",
                                                              "gap_examples.png")))
    note_input(run_dir, provenance.Input.file(mock_dir / runfiles.MOCK_META))
    return table


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    seed_everything(args.seed)
    settings = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "lambda_mmd": args.lambda_mmd,
                "lambda_paired": args.lambda_paired, "lambda_consistency": args.lambda_consistency,
                "nuisance_scale": args.nuisance_scale,
                "val_fraction": args.val_fraction}
    log = (lambda *a: None) if args.quiet else print
    try:
        table = run_sweep(args.run, args.mock_dir, args.gaps, args.seed, args.test_fraction, settings, args.bootstrap,
                          device, args.workers, progress=not args.quiet, log=log, methods=args.methods,
                          reference_checkpoint=args.reference_checkpoint)
    except ValueError as error:
        raise GalaxyVAEError(str(error)) from None
    cross = table[table["metric"] == SWEEP_METRICS[4]].pivot(index="gap", columns="method", values="value")
    methods = [m for m in METHODS if m in cross.columns]
    print(f"gap sweep: {len(cross)} gaps -> {Path(args.run) / SWEEP_DIR}/gap_sweep.csv; RF cross-survey accuracy "
          + "; ".join(f"gap {g:g}: " + ", ".join(f"{m} {cross.loc[g, m]:.3f}" for m in methods) for g in cross.index))
    return 0


if __name__ == "__main__":
    sys.exit(main())
