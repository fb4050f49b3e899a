"""Scale benchmark: every stage of the label-free chain timed at two or three survey sizes.

Writes N fake cutouts (Gaussian-blob galaxies plus sky noise, FITS with RA/DEC cards) for each size,
runs the chain on them, one process per stage as `make demo` runs it, and measures each stage's wall
time and peak memory (the process's maximum resident set, from os.wait4):

    make_datatxt    make_datatxt.py --images DIR             (scan, validate, images.csv)
    train           Galaxy_VAE_n.py, --epochs epochs         (cache build + training)
    latents         analysis/decals_2_2.py --skip-classes    (extraction)
    maps            analysis/decals_3.py                     (PCA, t-SNE, UMAP on <= --map-max-points)
    outliers        analysis/decals_4.py --mock-dir none     (isolation forest, LOF, reconstruction MSE)
    query_first     analysis/decals_6.py --ra --dec          (first query: index, positions)
    query_later     analysis/decals_6.py --name              (a later query)
    explorer        analysis/explore.py                      (the page; its size is reported too)
    stale           python -m VAE_model.provenance stale     (the Makefile's provenance check)

Before it runs it prints its plan: the disk each size takes (cutouts, the decode-once cache, the run)
and its expected CPU time, and stops if the disk has not that much free. For each stage: CPU seconds
(user + system; the wall time is kept in scale.json) and peak MB at every size, the growth exponent b
of time ~ N^b between the two largest sizes and, with three sizes or more, between the smallest and
the largest (fixed costs such as imports make it low at small N: read it with the times), and
the time and the peak memory extrapolated to 300,000 (a Galaxy Zoo DECaLS run) and 10^7 galaxies (the
Legacy Surveys) along their measured slopes between the two largest sizes, on this machine (a lower
bound, marked '>=', where the growing part is super-linear: b > 1.15). With three sizes or more, each stage's time is also fitted as
t = a + c N^b (a: the fixed cost of starting the stage, imports and model load), whose b says how the
part that grows with N grows (noisy when that part is a few seconds). --code-dir runs the stages of another checkout (e.g. the commit
before a change) on the same fake images, for a before/after table.

READS   nothing (the cutouts are written here)
WRITES  OUT/images_<N>/, OUT/run_<N>/   the fake survey and its run, per size (--keep; else removed)
        OUT/scale.json, scale.csv        every measurement, the exponents and extrapolations, settings
        OUT/scale.md                     the table (as README's "Scale" section shows it), with the peak
                                         memory of each stage (latent extraction named) at 300,000

    OMP_NUM_THREADS=1 python bench/scale.py --sizes 1000,4000,16000 --epochs 1      # ~10 min, 1 core
    OMP_NUM_THREADS=1 python bench/scale.py --sizes 16000,32000,64000 --epochs 1    # issue 19's range: ~40 min CPU, 4.4 GB
    python bench/scale.py --sizes 2000,8000 --code-dir /tmp/before --out runs/scale_before
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from VAE_model.cli_args import cli_main

ROOT = Path(__file__).resolve().parent.parent
TARGETS = (300_000, 10_000_000)
# For the plan printed before a run (measured with this script, README "Scale": 1,000 to 9,000 fake 64 px
# galaxies, one torch/OpenMP thread): the whole chain took ~96 CPU s of fixed costs (imports, model loads)
# plus ~12 ms per galaxy, and writing a fake 64 px cutout ~5 ms; per-galaxy costs taken to grow with the
# pixels, (S / 64)^2. The superlinear parts (none expected now) would make it longer.
CHAIN_FIXED_S, CHAIN_PER_GALAXY_S, CUTOUT_PER_GALAXY_S = 96.0, 0.012, 0.005
RUN_BYTES_PER_GALAXY = 2_000       # latents, tables, neighbour graph, records of a run (a generous bound)
MEMORY_TARGET_MB = 4096            # issue 19: every stage's peak under 4 GB at 300,000 galaxies
STAGES = ("make_datatxt", "train", "latents", "maps", "outliers", "query_first", "query_later", "explorer", "stale")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,4000,16000",
                        help="comma-separated numbers of galaxies, two or more (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=64, help="cutout side in pixels (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch (default: %(default)s)")
    parser.add_argument("--latent-dim", type=int, default=32, help="latent size (default: %(default)s)")
    parser.add_argument("--map-max-points", type=int, default=4000,
                        help="decals_3 --max-points: t-SNE/UMAP run on this many at most (default: %(default)s; "
                             "the stage's own default is 20000)")
    parser.add_argument("--stages", default=",".join(STAGES), help="stages to run, in chain order (default: all)")
    parser.add_argument("--code-dir", default=str(ROOT),
                        help="checkout whose stage scripts run (default: this one)")
    parser.add_argument("--out", default="runs/scale", help="output folder (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="--device of every stage (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fake images and every stage (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the images and runs (default: removed after each size)")
    parser.add_argument("--quiet", action="store_true", help="no per-stage lines while it runs")
    parser.add_argument("--neighbours", default=None,
                        help="only time the neighbour search, exact vs HNSW, at these comma-separated numbers of "
                             "fake latents (e.g. 20000,40000,80000); writes OUT/neighbours.md")
    parser.add_argument("--from-json", default=None,
                        help="re-make the table from an earlier OUT/scale.json (its sizes and stages) without running")
    args = parser.parse_args(argv)
    args.neighbours = sorted({int(s) for s in args.neighbours.split(",")}) if args.neighbours else None
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if len(args.sizes) < 2 or args.sizes[0] < 50:
        parser.error("--sizes: give two or more sizes of at least 50 galaxies")
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        parser.error(f"--stages: unknown {', '.join(sorted(unknown))} (known: {', '.join(STAGES)})")
    return args


# ----------------------------------------------------------------------------- fake survey
def fake_cutouts(folder: Path, n: int, size: int, seed: int) -> list[str]:
    """n FITS cutouts: an elliptical Gaussian galaxy in g, r, z (nanomaggies) plus sky noise, RA/DEC cards
    on a 0.01 deg grid (as the tests' cutouts)."""
    from VAE_model.imageio import write_fits_cutout

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    paths = []
    for i in range(n):
        angle, axis_ratio, sigma = rng.uniform(0, np.pi), rng.uniform(0.3, 1.0), rng.uniform(0.06, 0.15) * size
        u = x * np.cos(angle) + y * np.sin(angle)
        v = (-x * np.sin(angle) + y * np.cos(angle)) / axis_ratio
        image = rng.uniform(0.5, 2.0, 3)[:, None, None] * 20.0 * np.exp(-0.5 * (u ** 2 + v ** 2) / sigma ** 2)[None]
        image = (image + rng.normal(0, 0.01, (3, size, size))).astype(np.float32)
        ra, dec = 150.0 + (i % 1000) * 0.01, 2.0 + (i // 1000) * 0.01
        path = folder / f"F{i:08d}.fits"
        write_fits_cutout(path, image, {"SURVEY": "fake", "RA": ra, "DEC": dec})
        paths.append(str(path))
    return paths


# ----------------------------------------------------------------------------- one stage
def stage_commands(args, run: Path, images: Path) -> dict[str, list[str]]:
    py, code = sys.executable, Path(args.code_dir)
    common = ["--run", str(run), "--seed", str(args.seed), "--device", args.device]
    return {
        "make_datatxt": [py, str(code / "make_datatxt.py"), "--images", str(images), "--run", str(run),
                         "--image-size", str(args.image_size), "--seed", str(args.seed), "--quiet"],
        "train": [py, str(code / "Galaxy_VAE_n.py"), *common, "--image-size", str(args.image_size),
                  "--latent-dim", str(args.latent_dim), "--epochs", str(args.epochs), "--batch-size",
                  str(args.batch_size), "--lr", "1e-3", "--beta", "0.0625", "--quiet"],
        "latents": [py, str(code / "analysis/decals_2_2.py"), *common, "--skip-classes", "--quiet"],
        "maps": [py, str(code / "analysis/decals_3.py"), *common, "--max-points", str(args.map_max_points),
                 "--thumbnails", "0"],
        "outliers": [py, str(code / "analysis/decals_4.py"), *common, "--mock-dir", "none", "--quiet"],
        # fake cutout 1 sits at RA 150.01, Dec 2.0 (fake_cutouts)
        "query_first": [py, str(code / "analysis/decals_6.py"), *common, "--ra", "150.01", "--dec", "2.0", "--quiet"],
        "query_later": [py, str(code / "analysis/decals_6.py"), *common, "--name", "F00000002", "--quiet"],
        "explorer": [py, str(code / "analysis/explore.py"), *common, "--quiet"],
        "stale": [py, "-m", "VAE_model.provenance", "stale", str(run)],
    }


def cutout_bytes(size: int) -> int:
    """Bytes of one fake cutout on disk (FITS: 2,880-byte blocks of header and data; one written and measured)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return Path(fake_cutouts(Path(folder), 1, size, 0)[0]).stat().st_size


def plan(args) -> tuple[list[str], int]:
    """Lines saying, before anything runs, the disk each size takes (cutouts + the decode-once cache + the
    run) and the CPU time it is expected to take; and the bytes needed at once (all sizes with --keep,
    else the largest)."""
    per_image = cutout_bytes(args.image_size) + 3 * args.image_size ** 2 + RUN_BYTES_PER_GALAXY
    pixels = (args.image_size / 64) ** 2
    lines, total_s = [], 0.0
    for n in args.sizes:
        seconds = CHAIN_FIXED_S + n * pixels * (CHAIN_PER_GALAXY_S + CUTOUT_PER_GALAXY_S)
        total_s += seconds
        lines.append(f"  N = {n:,}: {per_image * n / 1e9:.1f} GB on disk, ~{duration(seconds)} CPU")
    needed = per_image * (sum(args.sizes) if args.keep else max(args.sizes))
    lines.append(f"  all sizes: ~{duration(total_s)} CPU (wall about the same on an idle machine with one thread, "
                 f"2-3x on a loaded one); {needed / 1e9:.1f} GB of disk at most "
                 f"({'all sizes kept, --keep' if args.keep else 'each size removed after it is measured'})")
    return lines, needed


def anonymous_mb(pid: int) -> float | None:
    """The process's resident anonymous memory now (RssAnon of /proc/PID/status), None where unreadable.
    Unlike the resident set it leaves out file pages mapped and read (the memory-mapped image cache,
    which the page cache gives back under pressure)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def run_stage(command: list[str], env: dict, log: Path) -> tuple[float, float, float, float | None, int]:
    """(wall seconds, CPU seconds, peak resident MB, peak anonymous MB (sampled every 50 ms; None where
    /proc is not there), exit status) of one stage process. CPU time (user + system, the stage and the
    worker processes it waited for) is what the growth is read from: on a shared machine the wall time
    also counts the waits for other people's processes."""
    start = time.perf_counter()
    anonymous = None
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=env["SCALE_CWD"])
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            now = anonymous_mb(process.pid)
            anonymous = now if anonymous is None or (now is not None and now > anonymous) else anonymous
            time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss / 1024.0, anonymous, process.returncode   # ru_maxrss: KiB


# ----------------------------------------------------------------------------- growth
def growth(sizes: list[int], values: list[float]) -> float | None:
    """Exponent b of value ~ N^b between the two largest sizes (None without two positive values)."""
    (n1, v1), (n2, v2) = list(zip(sizes, values))[-2:]
    if not (v1 and v2 and v1 > 0 and v2 > 0):
        return None
    return math.log(v2 / v1) / math.log(n2 / n1)


def fixed_cost_fit(sizes: list[int], seconds: list[float]) -> tuple[float, float, float] | None:
    """(a, c, b) of t = a + c N^b through the three largest sizes: a is the fixed cost of a stage
    (interpreter, torch/numba imports, model load: 3-30 s here), c N^b the part that grows with N.
    None when the increments are not both positive (timing noise larger than the growth)."""
    if len(sizes) < 3:
        return None
    (n1, t1), (n2, t2), (n3, t3) = list(zip(sizes, seconds))[-3:]
    if not (t2 > t1 and t3 > t2):
        return None
    ratio = (t3 - t1) / (t2 - t1)

    def excess(b):   # increases with b
        return (n3 ** b - n1 ** b) / (n2 ** b - n1 ** b) - ratio

    low, high = 0.01, 4.0
    if excess(low) > 0 or excess(high) < 0:
        return None
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if excess(middle) < 0 else (low, middle)
    b = (low + high) / 2
    c = (t2 - t1) / (n2 ** b - n1 ** b)
    return t1 - c * n1 ** b, c, b


def extrapolate_time(sizes, seconds, target: int) -> float | None:
    """Along the measured slope between the two largest sizes (the fixed cost stays, the rest grows in
    proportion to N; a negative slope, timing noise, counts as 0). A lower bound for a stage whose
    growing part is super-linear (``superlinear``): the table marks those with '>='. The fitted power
    law t = a + c N^b is not used for this: from three sizes whose increments are a few seconds, its b
    follows the noise (measured: training, linear in N per epoch, fitted b 1.8 in one run, 1.6 in another)."""
    (n1, t1), (n2, t2) = list(zip(sizes, seconds))[-2:]
    return t2 + max((t2 - t1) / (n2 - n1), 0.0) * (target - n2)


def superlinear(row: dict) -> bool:
    b = row["growing_exponent"] if row["growing_exponent"] is not None else row["exponent"]
    return b is not None and b > 1.15


def extrapolate_memory(sizes, megabytes, target: int) -> float:
    """Along the measured slope between the two largest sizes (memory = fixed part + per-galaxy part)."""
    (n1, m1), (n2, m2) = list(zip(sizes, megabytes))[-2:]
    slope = max((m2 - m1) / (n2 - n1), 0.0)
    return m2 + slope * (target - n2)


def summarise(args, measured: dict) -> list[dict]:
    rows = []
    for stage in args.stages:
        seconds = [measured[n][stage]["seconds"] for n in args.sizes]
        memory = [measured[n][stage]["peak_mb"] for n in args.sizes]
        b = growth(args.sizes, seconds)
        fit = fixed_cost_fit(args.sizes, seconds)
        whole = growth([args.sizes[0], args.sizes[-1]], [seconds[0], seconds[-1]])
        row = {"stage": stage, **{f"s_{n}": round(s, 2) for n, s in zip(args.sizes, seconds)},
               **{f"mb_{n}": round(m) for n, m in zip(args.sizes, memory)},
               "exponent": None if b is None else round(b, 2),
               "exponent_whole_range": None if whole is None else round(whole, 2),
               "fixed_s": None if fit is None else round(fit[0], 1),
               "growing_exponent": None if fit is None else round(fit[2], 2)}
        anonymous = [measured[n][stage].get("peak_anonymous_mb") for n in args.sizes]
        for target in TARGETS:
            t = extrapolate_time(args.sizes, seconds, target)
            row[f"s_at_{target}"] = None if t is None else round(t, 1)
            row[f"mb_at_{target}"] = round(extrapolate_memory(args.sizes, memory, target))
            row[f"anonymous_mb_at_{target}"] = (None if None in anonymous else
                                                round(extrapolate_memory(args.sizes, anonymous, target)))
        rows.append(row)
    return rows


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def memory(megabytes: float) -> str:
    return f"{megabytes / 1024:.1f} GB" if megabytes >= 1024 else f"{megabytes:.0f} MB"


def markdown(args, rows: list[dict], measured: dict) -> str:
    sizes = args.sizes
    whole = len(sizes) >= 3         # with two sizes the whole range is the last step
    head = (["stage"] + [f"{n:,}: CPU s / peak" for n in sizes] + [f"b ({sizes[-2]:,} to {sizes[-1]:,})"]
            + ([f"b ({sizes[0]:,} to {sizes[-1]:,})"] if whole else []) + ["fixed s + b of the rest"]
            + [f"at {t:,}: time / peak" for t in TARGETS])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["stage"]] + [f"{row[f's_{n}']:.1f} s / {memory(row[f'mb_{n}'])}" for n in sizes]  # CPU s
        cells.append("-" if row["exponent"] is None else f"{row['exponent']:.2f}")
        if whole:
            b = row.get("exponent_whole_range")
            cells.append("-" if b is None else f"{b:.2f}")
        cells.append("-" if row["growing_exponent"] is None else f"{row['fixed_s']:.0f} s + N^{row['growing_exponent']:.2f}")
        bound = ">= " if superlinear(row) else ""
        cells += [f"{bound}{duration(row[f's_at_{t}'])} / {memory(row[f'mb_at_{t}'])}" for t in TARGETS]
        lines.append("| " + " | ".join(cells) + " |")
    total = {n: sum(measured[n][s]["seconds"] for s in args.stages) for n in sizes}
    lines.append("")
    lines.append("chain total (CPU): " + ", ".join(f"{n:,}: {duration(t)}" for n, t in total.items()))
    at = TARGETS[0]
    for key, what in ((f"mb_at_{at}", "resident set, counting the image-cache pages read"),
                      (f"anonymous_mb_at_{at}", "anonymous memory, sampled: without the cache pages")):
        peaks = {row["stage"]: row[key] for row in rows if row.get(key) is not None}
        if not peaks:
            continue
        top = max(peaks, key=peaks.get)
        extraction = f"latent extraction {memory(peaks['latents'])}, " if "latents" in peaks else ""
        lines.append(f"peak memory at {at:,} ({what}; along the slope between the two largest sizes): "
                     f"{extraction}largest {memory(peaks[top])} ({top}); target under {memory(MEMORY_TARGET_MB)}"
                     f"{'' if peaks[top] < MEMORY_TARGET_MB else ' (NOT met)'}")
    pages = {n: measured[n].get("explorer", {}).get("page_mb") for n in sizes}
    if any(v is not None for v in pages.values()):
        lines.append("explorer page: " + ", ".join(f"{n:,}: {v:.1f} MB" for n, v in pages.items() if v is not None))
    return "\n".join(lines)


def neighbour_scaling(sizes: list[int], latent_dim: int, seed: int, k: int = 20) -> str:
    """CPU seconds of every galaxy's k nearest neighbours, exact (scikit-learn, what decals_4's LOF and the
    explorer did before) vs the HNSW index (build + all-galaxy search), on clumpy fake latents, with the
    HNSW recall of the true k nearest on 500 galaxies; a markdown table."""
    from sklearn.neighbors import NearestNeighbors

    from VAE_model.neighbours import build

    rng = np.random.default_rng(seed)
    lines = ["| N | exact CPU s | HNSW CPU s (build + all-N search) | HNSW recall@%d |" % k, "|---|---|---|---|"]
    times = {"exact": [], "hnsw": []}
    for n in sizes:
        centres = rng.normal(0, 3, (50, latent_dim))
        mu = (centres[rng.integers(0, 50, n)] + rng.normal(0, 1, (n, latent_dim))).astype(np.float32)
        start = time.process_time()
        exact = NearestNeighbors().fit(mu).kneighbors(mu, k + 1, return_distance=False)
        times["exact"].append(time.process_time() - start)
        start = time.process_time()
        rows, _ = build(mu, "hnsw").graph(k)
        times["hnsw"].append(time.process_time() - start)
        sample = rng.choice(n, min(500, n), replace=False)
        recall = np.mean([len(set(rows[i]) & set(exact[i][exact[i] != i][:k])) / k for i in sample])
        lines.append(f"| {n:,} | {times['exact'][-1]:.1f} | {times['hnsw'][-1]:.1f} | {recall:.3f} |")
    for method, label in (("exact", "exact"), ("hnsw", "HNSW")):
        b = growth(sizes, times[method])
        lines.append(f"\n{label}: b = {b:.2f} between {sizes[-2]:,} and {sizes[-1]:,}; at 300,000 "
                     f"{duration(times[method][-1] * (3e5 / sizes[-1]) ** b)}, at 10^7 "
                     f"{duration(times[method][-1] * (1e7 / sizes[-1]) ** b)}")
    return "\n".join(lines)


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.neighbours:
        table = neighbour_scaling(args.neighbours, args.latent_dim, args.seed)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "neighbours.md").write_text(table + "\n")
        print(table)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.from_json:
        lines, needed = plan(args)
        print(f"plan ({args.image_size} px, {args.epochs} epoch(s)):", *lines, sep="\n", flush=True)
        free = shutil.disk_usage(out).free
        if free < needed * 1.1:
            print(f"error: {out}: {free / 1e9:.1f} GB free, the benchmark needs ~{needed / 1e9:.1f} GB; free some "
                  "space, choose smaller --sizes or another --out", file=sys.stderr)
            return 1
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        measured = {int(n): stages for n, stages in saved["measured"].items()}
        args.sizes, args.stages = sorted(measured), [s for s in STAGES if s in measured[min(measured)]]
        rows = summarise(args, measured)
        table = markdown(args, rows, measured)
        (out / "scale.md").write_text(table + "\n")
        print(table)
        return 0
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(args.code_dir).resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["SCALE_CWD"] = str(Path(args.code_dir).resolve())
    measured: dict = {}
    for n in args.sizes:
        images, run = (out / f"images_{n}").resolve(), (out / f"run_{n}").resolve()
        shutil.rmtree(images, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
        start = time.perf_counter()
        fake_cutouts(images, n, args.image_size, args.seed)
        if not args.quiet:
            print(f"{n:,} fake cutouts written in {time.perf_counter() - start:.1f} s", flush=True)
        commands = stage_commands(args, run, images)
        measured[n] = {}
        for stage in args.stages:
            wall, seconds, peak_mb, anonymous, status = run_stage(commands[stage], env, out / f"log_{n}_{stage}.txt")
            if status != 0:
                print(f"error: stage {stage} at N = {n} exited with {status}; see {out / f'log_{n}_{stage}.txt'}",
                      file=sys.stderr)
                return 1
            measured[n][stage] = {"seconds": round(seconds, 3), "wall_seconds": round(wall, 3), "peak_mb": round(peak_mb, 1),
                                  "peak_anonymous_mb": None if anonymous is None else round(anonymous, 1)}
            if stage == "explorer":
                page = run / "explorer" / "index.html"
                measured[n][stage]["page_mb"] = round(page.stat().st_size / 1e6, 2) if page.exists() else None
            if not args.quiet:
                print(f"  N = {n:,} {stage:12s} {seconds:8.1f} s CPU {wall:8.1f} s wall  peak {peak_mb:7.0f} MB"
                      + ("" if anonymous is None else f" ({anonymous:.0f} MB anonymous)"), flush=True)
        if not args.keep:
            shutil.rmtree(images, ignore_errors=True)
            shutil.rmtree(run, ignore_errors=True)
    rows = summarise(args, measured)
    table = markdown(args, rows, measured)
    settings = {k: v for k, v in vars(args).items()}
    settings["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    settings["cpu_count"] = os.cpu_count()
    (out / "scale.json").write_text(json.dumps({"settings": settings, "measured": measured, "rows": rows}, indent=2))
    import csv

    with open(out / "scale.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "scale.md").write_text(table + "\n")
    print(table)
    print(f"wrote {out / 'scale.json'}, scale.csv, scale.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
