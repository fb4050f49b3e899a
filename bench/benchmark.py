"""Benchmark: the reference-style data path against this project's path, side by side, in one run.

(a) reference style: a torch Dataset that opens every FITS file with astropy in __getitem__, in
    every epoch, and normalises each image in numpy (min-max); DataLoader(batch_size, shuffle);
    float32; the VAE of VAE_model.models; no cache.
(b) this project: the decode-once uint8 cache (data.image_cache), whole batches sliced from the
    memmap, augmentation on the device, training.train_one_epoch as Galaxy_VAE_n.py runs it
    (channels-last; bfloat16 autocast on CUDA), latents through features.encode_arrays with the
    model as runtime.load_model returns it (as analysis/decals_2_2.py runs it).

Measured: training and latent-extraction images/s of both and their ratios (the two paths take
turns --repeats times and the best of each is kept: a shared machine only ever slows a run down);
the one-off cost of building the cache; the share of a training step spent waiting for the next
batch (a separate pass with a synchronisation after each phase, so an upper bound: real training
overlaps the two); model FLOPs per image (torch.utils.flop_counter) and the achieved TFLOP/s,
against the GPU's peak when the GPU is in the table below; mock galaxies rendered per second.

READS   --images DIR (FITS cutouts, searched recursively), or nothing: --n-images fake FITS
        cutouts (Gaussian blobs plus sky noise) are written to a temporary folder first
WRITES  RUN/bench/benchmark.json (or --output): every figure, the configuration, the device

    python bench/benchmark.py --image-size 128 --n-images 512                  # 2 CPU cores, < 3 minutes
    python bench/benchmark.py --image-size 256 --n-images 8192 --batch-size 512  # one GPU (~7 GB of fake FITS)
    python bench/benchmark.py --images /data/decals_cutouts --n-images 20000 --image-size 256   # real cutouts

Fake cutouts sit in the page cache after being written; real survey folders read from disk make
the reference path slower still. On a shared machine set OMP_NUM_THREADS and expect noise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


from VAE_model import runfiles
from VAE_model.data import (augment, batch_loader, device_batches, draw_augmentation, image_cache,
                            make_batches, write_image_list)
from VAE_model.features import encode_arrays
from VAE_model.imageio import FITS_SUFFIXES, resize, write_fits_cutout
from VAE_model.models import VAE, VAEConfig, vae_loss
from VAE_model.runtime import (DistInfo, add_runtime_arguments, describe_args, pick_device,
                               pick_precision, seed_everything, write_json)
from VAE_model.training import TrainSettings, build_model, train_one_epoch, wrap_model

# Dense peak TFLOP/s (vendor data sheets, no sparsity): (bf16/fp16 tensor cores, fp32 without TF32).
# Matched in order against torch.cuda.get_device_name(); an unknown GPU gives None.
PEAK_TFLOPS = [
    ("H100 NVL", 835.0, 60.0),
    ("H100 PCIe", 756.0, 51.0),
    ("H100", 989.0, 67.0),        # SXM ("NVIDIA H100 80GB HBM3")
    ("H200", 989.0, 67.0),        # also GH200
    ("H800", 989.0, 67.0),
    ("B200", 2250.0, 80.0),
    ("A100", 312.0, 19.5),
    ("A800", 312.0, 19.5),
    ("L40S", 362.0, 91.6),
    ("L40", 181.0, 90.5),
    ("L4", 121.0, 30.3),
    ("A10G", 70.0, 31.2),
    ("A10", 125.0, 31.2),
    ("RTX 4090", 165.0, 82.6),
    ("RTX 3090", 71.0, 35.6),
    ("V100", 125.0, 15.7),        # float16 (no bfloat16)
    ("T4", 65.0, 8.1),            # float16
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--image-size", type=int, default=128, help="image side in px, divisible by 64 (default: %(default)s)")
    parser.add_argument("--n-images", type=int, default=512, help="fake FITS cutouts to write when --images is not given (default: %(default)s)")
    parser.add_argument("--images", default=None, help="folder of real FITS cutouts to use instead (the first --n-images files)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size of both paths (default: 512 on CUDA, as the reference; 64 on CPU)")
    parser.add_argument("--latent-dim", type=int, default=40, help="(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per path and repeat (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="the paths take turns this many times; the best images/s of each is reported (default: %(default)s)")
    parser.add_argument("--wait-steps", type=int, default=None,
                        help="steps of the synchronised data-wait pass (default: 20 on CUDA, 4 on CPU)")
    parser.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--amp", choices=["auto", "on", "off"], default="auto", help="project path mixed precision (auto: on CUDA)")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="project path memory format (auto: as Galaxy_VAE_n.py, i.e. channels-last)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the project model")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers on CUDA, both paths (CPU: 0) (default: %(default)s)")
    parser.add_argument("--mock-galaxies", type=int, default=24, help="galaxies of the mock-survey rendering test (default: %(default)s)")
    parser.add_argument("--skip-mock", action="store_true", help="do not time the mock survey")
    parser.add_argument("--tmp-dir", default=None, help="where fake images and the cache go (default: system temp)")
    parser.add_argument("--output", default=None, help=f"JSON path (default: RUN/{runfiles.BENCH_JSON})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- data
def fake_cutouts(folder: Path, n: int, size: int, seed: int, progress: bool = True) -> list[Path]:
    """n FITS cutouts (3, size, size) in nanomaggies: an elliptical Gaussian blob plus sky noise."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    paths = []
    for i in tqdm(range(n), desc="write fake FITS", unit="img", leave=False, disable=not progress):
        angle, axis_ratio, sigma = rng.uniform(0, np.pi), rng.uniform(0.3, 1), rng.uniform(0.04, 0.12) * size
        u = x * np.cos(angle) + y * np.sin(angle)
        v = (-x * np.sin(angle) + y * np.cos(angle)) / axis_ratio
        profile = np.exp(-0.5 * (u ** 2 + v ** 2) / sigma ** 2)
        flux = rng.uniform(0.5, 2.0, 3)[:, None, None] * 20 * profile + rng.normal(0, 0.01, (3, size, size))
        path = folder / f"J{i:06d}+300000.0.fits"
        write_fits_cutout(path, flux.astype(np.float32), {"SURVEY": "bench"})
        paths.append(path)
    return paths


class ReferenceFITSDataset(torch.utils.data.Dataset):
    """The reference style: open the FITS file with astropy on every access, normalise in numpy."""

    def __init__(self, paths, image_size: int):
        self.paths, self.image_size = [str(p) for p in paths], image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        from astropy.io import fits

        with fits.open(self.paths[i]) as hdul:
            image = np.asarray(hdul[0].data, dtype=np.float32)
        if image.shape[1] != self.image_size:
            image = resize(image, self.image_size)
        image = (image - image.min()) / (image.max() - image.min() + 1e-12)   # per-image min-max
        return torch.from_numpy(np.ascontiguousarray(image))


def reference_loader(paths, image_size: int, batch_size: int, device, workers: int, shuffle: bool, seed: int):
    return torch.utils.data.DataLoader(ReferenceFITSDataset(paths, image_size), batch_size=batch_size,
                                       shuffle=shuffle, num_workers=workers if device.type == "cuda" else 0,
                                       pin_memory=device.type == "cuda",
                                       generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- timing helpers
def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_tflops(device, precision) -> float | None:
    """The GPU's dense peak for the precision in use; None on CPU or for a GPU not in the table."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, half, single in PEAK_TFLOPS:
        if key in name:
            return half if precision.enabled else single
    return None


def count_flops(config: VAEConfig, batch_size: int, device, precision, channels_last: bool) -> dict:
    """Model FLOPs per image: one forward (latent extraction) and one training step (forward + backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = VAE(config).to(device)
    n = max(1, min(batch_size, 8))
    images = torch.rand(n, 3, config.image_size, config.image_size, device=device)
    if channels_last:
        model, images = model.to(memory_format=torch.channels_last), images.contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter, torch.no_grad(), precision.autocast():
        model.encode(images)
    encode = counter.get_total_flops() / n
    with FlopCounterMode(display=False) as counter:
        with precision.autocast():
            reconstruction, mu, logvar = model(images, torch.randn(n, config.latent_dim, device=device))
        vae_loss(reconstruction, images, mu, logvar)[0].backward()
    return {"encode_gflop_per_image": encode / 1e9, "train_gflop_per_image": counter.get_total_flops() / n / 1e9}


def warm_up(model, config: VAEConfig, device, batch_size: int, precision=None, channels_last: bool = False) -> None:
    """One untimed step on random data of the training batch shape (library initialisation,
    cuDNN/oneDNN kernel choice, torch.compile tracing)."""
    images = torch.rand(batch_size, 3, config.image_size, config.image_size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    context = precision.autocast() if precision is not None else torch.autocast(device.type, enabled=False)
    with context:
        reconstruction, mu, logvar = model(images, torch.randn(batch_size, config.latent_dim, device=device))
    vae_loss(reconstruction, images, mu, logvar)[0].backward()
    model.zero_grad(set_to_none=True)
    synchronize(device)


# ----------------------------------------------------------------------------- (a) reference style
class ReferencePipeline:
    """Reference-style training and extraction: FITS read + numpy normalisation per image per epoch, float32."""

    def __init__(self, paths, config: VAEConfig, args, device, seed: int):
        torch.manual_seed(seed)
        self.paths, self.config, self.args, self.device, self.seed = paths, config, args, device, seed
        self.model = VAE(config).to(device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        warm_up(self.model, config, device, min(args.batch_size, len(paths)))

    def train_epoch(self, epoch: int) -> dict:
        from tqdm import tqdm

        model, device = self.model.train(), self.device
        loader = reference_loader(self.paths, self.config.image_size, self.args.batch_size, device, self.args.workers,
                                  True, self.seed + epoch)
        iterator = iter(loader)
        n_images, wait, busy = 0, 0.0, 0.0
        start = time.perf_counter()
        for _ in tqdm(range(len(loader)), desc=f"reference epoch {epoch}", leave=False, disable=self.args.quiet):
            t0 = time.perf_counter()
            images = next(iterator).to(device)
            synchronize(device)
            t1 = time.perf_counter()
            reconstruction, mu, logvar = model(images)
            loss = vae_loss(reconstruction, images, mu, logvar)[0]
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss.item()                      # the reference logs the loss every step
            synchronize(device)
            wait, busy, n_images = wait + t1 - t0, busy + time.perf_counter() - t1, n_images + len(images)
        return {"images": n_images, "seconds": time.perf_counter() - start, "wait": wait, "busy": busy}

    @torch.no_grad()
    def extract(self) -> dict:
        model = self.model.eval()
        loader = reference_loader(self.paths, self.config.image_size, self.args.batch_size, self.device,
                                  self.args.workers, False, 0)
        start = time.perf_counter()
        mu = torch.cat([model.encode(images.to(self.device))[0].cpu() for images in loader])
        return {"images": len(mu), "seconds": time.perf_counter() - start, "finite": bool(torch.isfinite(mu).all())}


# ----------------------------------------------------------------------------- (b) this project
class ProjectPipeline:
    """training.train_one_epoch on the decode-once cache, the loop Galaxy_VAE_n.py runs (one process);
    latents with features.encode_arrays."""

    def __init__(self, cache, config: VAEConfig, args, device, precision, channels_last: bool, seed: int):
        self.cache, self.config, self.args, self.device, self.precision = cache, config, args, device, precision
        self.settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, augment=True,
                                      seed=seed, workers=args.workers, channels_last=channels_last,
                                      compile=args.compile)
        self.model = build_model(config, device, self.settings)
        self.module = wrap_model(self.model, device, DistInfo(), self.settings)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.scaler = precision.scaler()
        warm_up(self.module, config, device, min(args.batch_size, len(cache)), precision, channels_last)

    def train_epoch(self, epoch: int) -> dict:
        indices = np.arange(len(self.cache))
        start = time.perf_counter()
        row = train_one_epoch(self.module, self.optimizer, self.scaler, self.precision, self.cache, indices, epoch,
                              self.settings, self.device, DistInfo(), self.config.latent_dim,
                              progress=not self.args.quiet)
        synchronize(self.device)
        return {"images": len(indices), "seconds": time.perf_counter() - start, "train_loss": row["train_loss"]}

    def extract(self) -> dict:
        # the model as runtime.load_model returns it (standard memory format), as decals_2_2.py uses it
        model = self.model.to(memory_format=torch.contiguous_format)
        encode_arrays(model, self.cache[: min(len(self.cache), 16)], self.device, self.precision,
                      batch_size=self.args.batch_size)   # warm-up
        synchronize(self.device)
        start = time.perf_counter()
        mu, _ = encode_arrays(model, self.cache, self.device, self.precision, batch_size=self.args.batch_size,
                              progress=not self.args.quiet)
        seconds = time.perf_counter() - start
        if self.settings.channels_last:
            self.model.to(memory_format=torch.channels_last)
        return {"images": len(mu), "seconds": seconds, "finite": bool(np.isfinite(mu).all())}

    def data_wait(self, steps: int) -> dict:
        """Share of a synchronised training step spent waiting for the next batch on the device.

        The same pieces as train_one_epoch (batch_loader, device_batches, augment, autocast), with a
        synchronisation after the batch arrives and after the step. That removes the overlap real
        training has, so the share is an upper bound on the time the GPU starves for data.
        """
        settings, config, device, cache = self.settings, self.config, self.device, self.cache
        batches = make_batches(np.arange(len(cache)), settings.batch_size, shuffle=True, seed=settings.seed + 1)
        batches = (batches * (steps // max(len(batches), 1) + 1))[:steps]
        generator = torch.Generator().manual_seed(settings.seed)
        self.module.train()
        stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
        wait = busy = 0.0
        iterator = iter(device_batches(batch_loader(cache, batches, device, settings.workers), device,
                                       settings.channels_last))
        for batch in batches:
            t0 = time.perf_counter()
            images = next(iterator)
            if stream is not None:
                stream.synchronize()           # the compute stream only: the next batch's copy may go on
            t1 = time.perf_counter()
            flips, turns = draw_augmentation(len(batch), generator)
            images = augment(images, flips, turns)
            with self.precision.autocast():
                reconstruction, mu, logvar = self.module(images, torch.randn(len(batch), config.latent_dim,
                                                                             device=device))
            loss = vae_loss(reconstruction, images, mu, logvar, settings.beta)[0]
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if stream is not None:
                stream.synchronize()
            wait, busy = wait + t1 - t0, busy + time.perf_counter() - t1
        share = wait / max(wait + busy, 1e-12)
        return {"data_wait_share": share, "busy_share": 1 - share, "wait_steps": len(batches),
                "step_seconds": busy / max(len(batches), 1)}


def best_rate(runs: list[dict]) -> tuple[float, list[float]]:
    """Best and all images/s of repeated timings (a shared machine only ever slows a run down)."""
    rates = [run["images"] / run["seconds"] for run in runs]
    return max(rates), rates


def time_mock_survey(n_galaxies: int, image_size: int, seed: int, folder: Path, progress: bool) -> dict:
    try:
        from VAE_model.mock_survey import build_mock_survey
    except ImportError as error:
        return {"skipped": f"VAE_model.mock_survey not importable ({error})"}
    start = time.perf_counter()
    summary = build_mock_survey(folder, n_galaxies=n_galaxies, image_size=image_size, seed=seed, workers=None,
                                progress=progress)
    seconds = time.perf_counter() - start
    return {"n_galaxies": n_galaxies, "image_size": image_size, "workers": summary.get("workers"),
            "seconds": seconds, "galaxies_per_s": n_galaxies / seconds,
            "note": "each galaxy is rendered for both surveys (DECaLS-like and, in the footprint, BASS+MzLS-like)"}


# ----------------------------------------------------------------------------- main
def run_benchmark(args) -> dict:
    device = pick_device(args.device)
    precision = pick_precision(device, args.amp)
    channels_last = args.channels_last != "off"
    args.batch_size = args.batch_size or (512 if device.type == "cuda" else 64)
    args.wait_steps = args.wait_steps or (20 if device.type == "cuda" else 4)
    seed_everything(args.seed)
    config = VAEConfig(latent_dim=args.latent_dim, image_size=args.image_size)
    progress = not args.quiet
    with tempfile.TemporaryDirectory(prefix="galaxy_vae_bench_", dir=args.tmp_dir) as tmp:
        tmp = Path(tmp)
        if args.images:
            paths = sorted(p for p in Path(args.images).rglob("*") if p.name.lower().endswith(FITS_SUFFIXES))
            paths = paths[: args.n_images]
            if not paths:
                raise FileNotFoundError(f"{args.images}: no FITS cutouts found")
            source = str(args.images)
        else:
            paths = fake_cutouts(tmp / "images", args.n_images, args.image_size, args.seed, progress)
            source = "fake FITS cutouts (Gaussian blobs), written for this run"
        list_path = tmp / "train.txt"
        write_image_list([str(p) for p in paths], list_path)

        flops = count_flops(config, args.batch_size, device, precision, channels_last)
        if progress:
            print(f"{len(paths)} images of {args.image_size} px, batch {args.batch_size}, latent {args.latent_dim}, "
                  f"{device}; {flops['train_gflop_per_image']:.3f} GFLOP per image per training step")

        reference_pipeline = ReferencePipeline(paths, config, args, device, args.seed)
        start = time.perf_counter()
        cache = image_cache(list_path, args.image_size, tmp / "cache", progress=progress)
        cache_seconds = time.perf_counter() - start
        project_pipeline = ProjectPipeline(cache, config, args, device, precision, channels_last, args.seed)

        # the two paths take turns, repeat by repeat, so both see the same (shared, noisy) machine
        train_runs = {"reference": [], "project": []}
        extract_runs = {"reference": [], "project": []}
        epoch = 0
        for _ in range(args.repeats):
            for _ in range(args.epochs):
                epoch += 1
                train_runs["reference"].append(reference_pipeline.train_epoch(epoch))
                train_runs["project"].append(project_pipeline.train_epoch(epoch))
            extract_runs["reference"].append(reference_pipeline.extract())
            extract_runs["project"].append(project_pipeline.extract())
        results = {}
        for name in ("reference", "project"):
            train_best, train_all = best_rate(train_runs[name])
            extract_best, extract_all = best_rate(extract_runs[name])
            results[name] = {"train_images_per_s": train_best, "train_images_per_s_all": train_all,
                             "train_images": train_runs[name][0]["images"],
                             "extract_images_per_s": extract_best, "extract_images_per_s_all": extract_all,
                             "mu_finite": all(run["finite"] for run in extract_runs[name])}
        reference, project = results["reference"], results["project"]
        runs = train_runs["reference"]
        reference["data_wait_share"] = sum(r["wait"] for r in runs) / max(sum(r["wait"] + r["busy"] for r in runs), 1e-12)
        project.update({"cache_build_s": cache_seconds, "cache_build_images_per_s": len(cache) / cache_seconds,
                        "precision": precision.describe(), "channels_last": channels_last, "compile": args.compile,
                        "final_train_loss": train_runs["project"][-1]["train_loss"]})
        project.update(project_pipeline.data_wait(args.wait_steps))
        # a first epoch pays for building the cache (later epochs and stages reuse it)
        epoch_seconds = project["train_images"] / project["train_images_per_s"]
        project["first_epoch_images_per_s_incl_cache_build"] = project["train_images"] / (epoch_seconds + cache_seconds)
        del cache, project_pipeline

        mock = ({"skipped": "--skip-mock"} if args.skip_mock else
                time_mock_survey(args.mock_galaxies, args.image_size, args.seed, tmp / "mock", progress))

    peak = peak_tflops(device, precision)
    achieved_train = flops["train_gflop_per_image"] * project["train_images_per_s"] / 1e3
    achieved_extract = flops["encode_gflop_per_image"] * project["extract_images_per_s"] / 1e3
    flops.update({"train_tflops_achieved": achieved_train, "extract_tflops_achieved": achieved_extract,
                  "peak_tflops": peak, "peak_precision": precision.describe() if peak else None,
                  "train_share_of_peak": achieved_train / peak if peak else None,
                  "reference_train_tflops_achieved": flops["train_gflop_per_image"] * reference["train_images_per_s"] / 1e3})
    ratios = {"train": project["train_images_per_s"] / reference["train_images_per_s"],
              "first_epoch_incl_cache_build": project["first_epoch_images_per_s_incl_cache_build"]
              / reference["train_images_per_s"],
              "extract": project["extract_images_per_s"] / reference["extract_images_per_s"]}
    device_info = {"type": device.type, "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                   "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__}
    return {"config": describe_args(args, device=str(device), n_images_used=len(paths), image_source=source),
            "device": device_info, "reference": reference, "project": project, "ratios": ratios,
            "flops": flops, "mock_survey": mock}


def print_table(result: dict) -> None:
    ref, own, ratio, flops = result["reference"], result["project"], result["ratios"], result["flops"]
    print(f"{'images/s':<22}{'reference':>12}{'project':>12}{'ratio':>8}")
    print(f"{'training':<22}{ref['train_images_per_s']:>12.1f}{own['train_images_per_s']:>12.1f}{ratio['train']:>7.2f}x")
    print(f"{'latent extraction':<22}{ref['extract_images_per_s']:>12.1f}{own['extract_images_per_s']:>12.1f}{ratio['extract']:>7.2f}x")
    print(f"data wait share of a step: reference {ref['data_wait_share']:.1%}, project {own['data_wait_share']:.1%} "
          f"(project busy {own['busy_share']:.1%}); cache build {own['cache_build_s']:.1f} s "
          f"({own['cache_build_images_per_s']:.0f} images/s, once); project {own['precision']}, "
          f"channels-last {own['channels_last']}")
    peak = f" of peak {flops['peak_tflops']:.0f} ({flops['train_share_of_peak']:.1%})" if flops["peak_tflops"] else ""
    print(f"model: {flops['train_gflop_per_image']:.3f} GFLOP/image/training step; achieved "
          f"{flops['train_tflops_achieved']:.3f} TFLOP/s training{peak}, {flops['extract_tflops_achieved']:.3f} extraction")
    mock = result["mock_survey"]
    print("mock survey: " + (f"skipped ({mock['skipped']})" if "skipped" in mock else
                             f"{mock['galaxies_per_s']:.2f} galaxies/s ({mock['workers']} workers)"))


def main(argv=None) -> int:
    args = parse_args(argv)
    output = Path(args.output) if args.output else runfiles.run_path(args.run, runfiles.BENCH_JSON)
    try:
        result = run_benchmark(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_json(result, output)
    print_table(result)
    print(f"done: training {result['ratios']['train']:.2f}x, latent extraction {result['ratios']['extract']:.2f}x "
          f"the reference-style pipeline ({result['device']['name']}); written {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
