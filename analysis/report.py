"""The demo report: every stage's figures and key numbers in one Markdown file.

Reads what the stages wrote (nothing is recomputed) and writes RUN/REPORT.md with the PNG
figures embedded by relative link, the key tables, and under each section the command that
produced it (taken from the configuration JSON the stage saved). Sections whose files are
missing say which stage to run.

READS   RUN/* (every stage's outputs, RUN/notebooks/ included), MOCK_DIR/mock_meta.json and examples_by_class.png
WRITES  RUN/REPORT.md, RUN/report_figures/ (copies of the mock-survey figure)

    python analysis/report.py --run runs/demo
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from VAE_model import runfiles as rf
from VAE_model.cli_args import add_runtime_arguments, cli_main, git_commit


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--mock-dir", default=rf.DEFAULT_MOCK_DIR, help="mock survey folder (default: %(default)s)")
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import pandas as pd

from VAE_model import provenance
from VAE_model.files import write_text
from VAE_model.scorecard import wilson_interval


def find_command(data) -> str | None:
    """The first 'command' entry anywhere in a stage's configuration JSON."""
    if isinstance(data, dict):
        if isinstance(data.get("command"), str):
            return data["command"]
        for value in data.values():
            found = find_command(value)
            if found:
                return found
    if isinstance(data, list):
        for value in data:
            found = find_command(value)
            if found:
                return found
    return None


def read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def table_md(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    def cell(value):
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


class Report:
    def __init__(self, run: Path):
        self.run = run
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def figure(self, relative: str, caption: str) -> None:
        if (self.run / relative).exists():
            self.add(f"![{caption}]({relative})", "")

    def command(self, *json_paths: str) -> None:
        for relative in json_paths:
            command = find_command(read_json(self.run / relative))
            if command:
                self.add(f"Command: `{command}`", "")
                return

    def missing(self, relative: str, stage: str) -> bool:
        if (self.run / relative).exists():
            return False
        self.add(f"_Not run yet: `{relative}` is missing; run `{stage}`._", "")
        return True

    def csv(self, relative: str, columns: list[str] | None = None, floatfmt: str = ".3f") -> pd.DataFrame | None:
        path = self.run / relative
        if not path.exists():
            return None
        frame = pd.read_csv(path)
        if columns:
            frame = frame[[c for c in columns if c in frame.columns]]
        self.add(table_md(frame, floatfmt), "")
        return frame

    def markdown_file(self, relative: str) -> None:
        path = self.run / relative
        if path.exists():
            self.add(path.read_text().strip(), "")


def section_data(report: Report, mock_dir: Path) -> None:
    report.add("## 1. Data: mock survey and train.txt", "")
    meta = read_json(mock_dir / rf.MOCK_META)
    if meta:
        report.add(f"Mock survey ({mock_dir}): {meta['n_galaxies']} galaxies at {meta['image_size']} px "
                   f"(0.262 arcsec/pixel, bands g, r, z), {meta.get('n_bass', '?')} also in the BASS+MzLS "
                   f"footprint, {meta.get('n_defect_decals', '?')} DECaLS and {meta.get('n_defect_bass', '?')} "
                   f"BASS+MzLS images with a planted defect; rendered at {meta.get('galaxies_per_s', float('nan')):.1f} "
                   f"galaxies/s (seed {meta['seed']}).", "")
        examples = mock_dir / rf.MOCK_EXAMPLES_PNG
        if examples.exists():
            target = report.run / "report_figures" / rf.MOCK_EXAMPLES_PNG
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(examples, target)
            report.figure(f"report_figures/{rf.MOCK_EXAMPLES_PNG}", "mock survey examples by class")
    summary = read_json(report.run / rf.DATATXT_SUMMARY)
    if summary:
        report.add(f"train.txt: {summary['n_accepted']} images accepted, {summary['n_rejected']} rejected "
                   f"(listed with reasons in `{rf.REJECTED_CSV}`).", "")
        report.command(rf.DATATXT_SUMMARY)


def section_training(report: Report) -> None:
    report.add("## 2. VAE training", "")
    if report.missing(rf.LOSS_CSV, "Galaxy_VAE_n.py"):
        return
    history = pd.read_csv(report.run / rf.LOSS_CSV)
    last, best = history.iloc[-1], history.loc[history["val_loss"].idxmin()]
    args = read_json(report.run / rf.TRAIN_ARGS) or {}
    report.add(f"{len(history)} epochs, latent {args.get('latent_dim')}, {args.get('image_size')} px, "
               f"{args.get('n_train')} training / {args.get('n_val')} validation images, device "
               f"{args.get('device_used', args.get('device'))} ({args.get('precision')}). Best validation loss {best['val_loss']:.1f} "
               f"at epoch {int(best['epoch'])}; final validation MSE per pixel {last['val_mse_per_pixel']:.5f} "
               f"(stretched units, [0, 1]); {last['images_per_s']:.0f} training images/s.", "")
    report.command(rf.TRAIN_ARGS)
    report.figure(rf.LOSS_PNG, "loss history")
    report.figure(rf.RECON_PNG, "reconstructions")


def section_latent_size(report: Report) -> None:
    report.add("## 3. Latent size (analysis/decals_2_3.py)", "")
    if report.missing(rf.LATENT_SIZE_CSV, "analysis/decals_2_3.py"):
        return
    report.csv(rf.LATENT_SIZE_CSV, floatfmt=".4f")
    chosen = read_json(report.run / rf.LATENT_SIZE_JSON) or {}
    if "chosen_latent_dim" in chosen:
        report.add(f"**Chosen latent size: {chosen['chosen_latent_dim']}**, used by the main model "
                   f"(`Galaxy_VAE_n.py --latent-dim auto`). MSE knee {chosen.get('mse_knee')}, random-forest "
                   f"accuracy knee {chosen.get('rf_knee')}; rule: {chosen.get('rule', '')}. {chosen.get('note', '')}", "")
    report.command(rf.LATENT_SIZE_JSON)
    report.figure(rf.LATENT_SIZE_PNG, "reconstruction quality and classification vs latent size")
    report.figure(rf.LATENT_SIZE_RECON_PNG, "the same galaxies reconstructed by each latent size")


def section_selection_and_maps(report: Report) -> None:
    report.add("## 4. Class selection and latent-space maps (decals_1, decals_2_1, decals_3)", "")
    if not report.missing(rf.CLASS_COUNTS_CSV, "analysis/decals_1.py"):
        report.csv(rf.CLASS_COUNTS_CSV)
        report.command(rf.SELECTION_CONFIG_JSON)
    if report.missing(rf.MAP_EMBEDDINGS_CSV, "analysis/decals_3.py"):
        return
    report.command(rf.MAPS_CONFIG_JSON)
    for name, caption in (("pca", "PCA"), ("tsne", "t-SNE"), ("umap", "UMAP"), ("umap_thumbnails", "UMAP thumbnails")):
        report.figure(f"{rf.MAPS_DIR}/{name}.png", f"{caption} of the latents")


def section_classification(report: Report) -> None:
    report.add("## 5. Classification on the latents vs baselines (analysis/decals_5.py)", "")
    if report.missing(rf.CLASSIFICATION_RESULTS_CSV, "analysis/decals_5.py"):
        return
    report.markdown_file(rf.CLASSIFICATION_RESULTS_MD)
    report.command(rf.CLASSIFICATION_CONFIG_JSON)
    for png in sorted((report.run / rf.CLASSIFICATION_DIR).glob("confusion_*.png"))[:3]:
        report.figure(f"{rf.CLASSIFICATION_DIR}/{png.name}", png.stem.replace("_", " "))


def section_scorecard(report: Report) -> None:
    report.add("## 5b. Feature scorecard: morphology, not pose or survey? (analysis/decals_7.py)", "")
    if report.missing(rf.SCORECARD_CSV, "analysis/decals_7.py"):
        return
    text = (report.run / rf.SCORECARD_MD).read_text().strip().splitlines()
    report.add(*text[1:], "")     # its own title replaced by this section's
    report.command(rf.SCORECARD_JSON)


def section_outliers(report: Report) -> None:
    report.add("## 6. Outlier screening (analysis/decals_4.py)", "")
    if report.missing(rf.OUTLIER_SCORES_CSV, "analysis/decals_4.py"):
        return
    if (report.run / rf.DEFECT_SCORES_CSV).exists():
        report.add("Planted defective images recovered in the top k (k = number planted):", "")
        report.csv(rf.DEFECT_SCORES_CSV)
    report.command(rf.OUTLIER_CONFIG_JSON)
    report.figure(rf.OUTLIER_GALLERY_PNG, "top outliers")


def section_transfer(report: Report) -> None:
    report.add("## 7. Domain adaptation DECaLS -> BASS+MzLS (transfer/)", "")
    if not report.missing(rf.TRANSFER_PAIRS_JSON, "transfer/make_pairs.py"):
        pairs = read_json(report.run / rf.TRANSFER_PAIRS_JSON) or {}
        counts = {k: v for k, v in pairs.items() if k.startswith("n_") and isinstance(v, (int, float))}
        if counts:
            report.add(", ".join(f"{k[2:].replace('_', ' ')}: {v}" for k, v in counts.items()), "")
        report.command(rf.TRANSFER_PAIRS_JSON)
        report.figure(rf.TRANSFER_EXAMPLES_PNG, "example pairs")
    if report.missing(rf.TRANSFER_BEFORE_AFTER_CSV, "transfer/evaluate.py"):
        return
    report.markdown_file(rf.TRANSFER_BEFORE_AFTER_MD)
    section_transfer_questions(report)
    for method in ("mmd", "paired"):
        report.command(rf.ADAPT_SUMMARY_JSON.format(method=method))
    report.figure(rf.TRANSFER_DISTANCE_HIST_PNG, "paired latent distances before/after")
    report.figure(rf.TRANSFER_MOST_ALIKE_PNG, "most alike pairs (no transfer)")
    report.figure(rf.TRANSFER_LEAST_ALIKE_PNG, "least alike pairs (no transfer)")


def question_table(before: dict, after: dict, method: str) -> tuple[pd.DataFrame, list[str]]:
    """The reference study's table: per question, RF accuracy on DECaLS and on BASS+MzLS test latents,
    before and after adaptation, with 95% intervals, and whether each change is beyond noise."""
    import math

    rows, verdicts = [], []
    for question, b in before["classification"]["questions"].items():
        a = after["classification"]["questions"].get(question)
        if a is None:
            continue
        n = int(b["n_test"])
        row = {"question": question, "n_test": n}
        for survey in ("decals", "bass"):
            for label, values in (("before", b), ("after", a)):
                value = float(values[f"accuracy_{survey}"])
                low, high = wilson_interval(value, n)
                row[f"{label} {'DECaLS' if survey == 'decals' else 'BASS+MzLS'}"] = f"{value:.3f} [{low:.2f}, {high:.2f}]"
            change = float(a[f"accuracy_{survey}"]) - float(b[f"accuracy_{survey}"])
            # unpaired normal approximation: conservative for the same test galaxies before and after
            se = math.sqrt(sum(float(v[f"accuracy_{survey}"]) * (1 - float(v[f"accuracy_{survey}"])) / n for v in (a, b)))
            beyond = abs(change) > 1.96 * se if se > 0 else False
            name = "DECaLS" if survey == "decals" else "BASS+MzLS"
            row[f"change {name}"] = f"{change:+.3f}" + (" (beyond noise)" if beyond else "")
            if beyond:
                verdicts.append(f"{question} on {name}: {change:+.3f}")
        rows.append(row)
    return pd.DataFrame(rows), verdicts


def section_transfer_questions(report: Report) -> None:
    adapted = read_json(report.run / rf.TRANSFER_ADAPTED_JSON)
    before = read_json(report.run / rf.TRANSFER_METRICS_BEFORE)
    if not adapted or not before:
        return
    method = adapted.get("method")
    after = read_json(report.run / rf.ADAPT_METRICS_JSON.format(method=method))
    if not after or "questions" not in before.get("classification", {}):
        return
    table, verdicts = question_table(before, after, method)
    report.add(f"### Per question: random forest trained on DECaLS latents of the train pairs, tested on the test "
               f"pairs' DECaLS and BASS+MzLS latents, before and after adaptation ({method}, the chosen method)", "",
               "Accuracy [95% Wilson interval]; a change is called beyond noise when it exceeds 1.96 standard "
               "errors (unpaired approximation, conservative for the same galaxies). The reference study "
               "(Xu et al. 2023, MNRAS 526, 6391) reports the same kind of table for its overlap galaxies; its "
               "numbers could not be read from the sources available to this project, so they are not printed "
               "beside these: compare by hand.", "",
               table_md(table), "")
    report.add("Changes beyond noise: " + ("; ".join(verdicts) if verdicts else
                                            "**none**: on this mock, adaptation moves no question's accuracy "
                                            "beyond the noise of the test sample."), "")


def section_gap_sweep(report: Report) -> None:
    csv = report.run / "gap_sweep" / "gap_sweep.csv"
    report.add("## 9. Survey-gap sweep (transfer/gap_sweep.py, `make gap-sweep`)", "")
    if not csv.exists():
        report.add("_Not run in this demo (its own target, 13 minutes on 2 cores at two gaps, measured; about twice that at the default four): `make gap-sweep`._", "")
        return
    frame = pd.read_csv(csv)
    frame = frame[frame["metric"] != "retrieval median rank"]   # 1 everywhere on the mock: in the CSV
    frame = frame.assign(value=[f"{v:.4g} [{lo:.3g}, {hi:.3g}]" if pd.notna(lo) else f"{v:.4g}"
                                for v, lo, hi in zip(frame["value"], frame["ci95_low"], frame["ci95_high"])])
    wide = frame.pivot_table(index=["metric", "method"], columns="gap", values="value", aggfunc="first").reset_index()
    wide.columns = [str(c) if not isinstance(c, float) else f"gap {c:g}" for c in wide.columns]
    report.add("The north survey rendered at several gaps (0: identical to DECaLS up to noise, 1: the realistic "
               "north, 2: every difference doubled), the same galaxies and the same Part I model; value [95% "
               "bootstrap interval over test galaxies].", "", table_md(wide), "")
    report.figure("gap_sweep/gap_sweep.png", "metrics vs survey gap, one line per method")
    report.figure("gap_sweep/gap_examples.png", "the same galaxies at each gap")


def section_architecture_and_speed(report: Report) -> None:
    report.add("## 11. Architecture comparison and benchmark (`make compare-arch`, `make bench`)", "")
    compare = report.run / "bench" / "compare_arch" / "compare_arch.csv"
    if compare.exists():
        report.add("Both decoders trained the same way on this run's images and split:", "")
        report.csv("bench/compare_arch/compare_arch.csv", floatfmt=".4g")
        report.command("bench/compare_arch/compare_arch.json")
    else:
        report.add("_Architecture comparison not run for this report: `make compare-arch` (about 10 minutes); "
                   "README gives the measured table._", "")
    bench = read_json(report.run / rf.BENCH_JSON)
    if bench and isinstance(bench.get("rows"), dict):
        rows = [{"row": key, "what": row.get("description"), "training images/s": row.get("train_images_per_s"),
                 "extraction images/s": row.get("extract_images_per_s"), "val MSE / pixel": row.get("val_mse_per_pixel")}
                for key, row in bench["rows"].items()]
        report.add(table_md(pd.DataFrame(rows), floatfmt=".4g"), "")
        report.command(rf.BENCH_JSON)
    else:
        report.add("_Benchmark not run for this report: `make bench`; README gives the measured rows._", "")


def section_explorer(report: Report) -> None:
    if (report.run / rf.EXPLORER_HTML).exists():
        config = read_json(report.run / rf.EXPLORER_CONFIG_JSON) or {}
        report.add("## 10. Explorer page (analysis/explore.py)", "",
                   f"[`{rf.EXPLORER_HTML}`]({rf.EXPLORER_HTML}): one self-contained page "
                   f"({config.get('page_bytes', 0) / 1e6:.1f} MB, {config.get('n_on_page')} galaxies) with the maps, "
                   "each galaxy's 10 nearest neighbours, the outliers and the cross-survey pairs; open it in any "
                   "browser, no server needed.", "")


def section_notebooks(report: Report) -> None:
    from VAE_model.notebooks import NOTEBOOKS

    report.add("## 12. Notebooks (analysis/notebooks.py)", "",
               "Each notebook executed against this run, with its figures: the static page (no kernel needed) "
               "and the executed notebook (opens in JupyterLab, `make notebooks`, or VS Code). The repository's "
               "notebooks themselves hold no outputs.", "")
    rows = []
    for notebook in NOTEBOOKS:
        if (report.run / notebook.executed).exists():
            rows.append(f"| {notebook.title} | [`{notebook.html}`]({notebook.html}) | "
                        f"[`{notebook.executed}`]({notebook.executed}) | `{notebook.source}` |")
        else:
            rows.append(f"| {notebook.title} | _not executed: run `analysis/notebooks.py --run {report.run} "
                        f"--only {notebook.name}`_ | | `{notebook.source}` |")
    report.add("| notebook | page | executed notebook | source |", "|---|---|---|---|", *rows, "")


def section_similarity(report: Report) -> None:
    report.add("## 8. Similarity search (analysis/decals_6.py)", "")
    if report.missing(rf.SIMILARITY_PRECISION_CSV, "analysis/decals_6.py --evaluate"):
        return
    report.add("Precision@10: fraction of the 10 nearest galaxies sharing the query's true type (mock truth).", "")
    report.csv(rf.SIMILARITY_PRECISION_CSV)
    if (report.run / rf.SIMILARITY_CROSS_CSV).exists():
        report.add("BASS+MzLS test images as queries against the DECaLS latents:", "")
        report.csv(rf.SIMILARITY_CROSS_CSV)
    report.command(rf.SIMILARITY_PRECISION_JSON)
    report.figure(rf.SIMILARITY_PRECISION_PNG, "precision at 10 by type")
    queries = sorted((report.run / rf.SIMILARITY_DIR).glob("query_*.png"))
    if queries:
        report.figure(f"{rf.SIMILARITY_DIR}/{queries[0].name}", "example query (query first)")


def build_report(run: Path, mock_dir: Path) -> Path:
    report = Report(run)
    report.add("# Galaxy_VAE demo report", "",
               f"Run directory `{run}`, code commit `{git_commit()[:12]}`. Every number below was read from the "
               "files the stages wrote; each section names the command that produced it.", "")
    for section in (lambda r: section_data(r, mock_dir), section_training, section_latent_size,
                    section_selection_and_maps, section_classification, section_scorecard, section_outliers, section_transfer,
                    section_similarity, section_gap_sweep, section_explorer, section_architecture_and_speed,
                    section_notebooks):
        section(report)
    path = run / rf.REPORT_MD
    write_text("\n".join(report.lines) + "\n", path)
    return path


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    run = Path(args.run)
    if not run.is_dir():
        print(f"error: {run}: run directory not found; run make_datatxt.py and Galaxy_VAE_n.py first", file=sys.stderr)
        return 1
    # a report is never written from results whose inputs changed since they were made
    stale = provenance.stale_files(run)
    if stale:
        for _, reason in stale:
            print(f"out of date: {reason}", file=sys.stderr)
        print(f"error: {len(stale)} result file(s) in {run} are out of date (listed above; first: {stale[0][0]}); "
              "re-run the stages named there (make demo does it)", file=sys.stderr)
        return 1
    path = build_report(run, Path(args.mock_dir))
    print(f"report written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
