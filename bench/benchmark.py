"""Benchmark: the reference-style data path against this project's path, side by side, in one run.

(a) reference style: a torch Dataset that opens every FITS file with astropy in __getitem__, in
    every epoch, and normalises each image in numpy (min-max); DataLoader(batch_size, shuffle);
    float32; the VAE of VAE_model.models; no cache.
(b) this project: the decode-once uint8 cache (data.image_cache), whole batches sliced from the
    memmap, augmentation on the device, training.train_one_epoch as Galaxy_VAE_n.py runs it
    (channels-last; bfloat16 autocast on CUDA), latents through features.encode_arrays with the
    model as runtime.load_model returns it (as analysis/decals_2_2.py runs it).

Measured: training and latent-extraction images/s of both (and their ratios); the one-off cost of
building the cache; the share of a training step spent waiting for the next batch (a separate pass
with a synchronisation after each phase, so an upper bound: real training overlaps the two);
model FLOPs per image (torch.utils.flop_counter) and the achieved TFLOP/s, against the GPU's peak
when the GPU is in the table below; mock galaxies rendered per second (mock_survey).

READS   --images DIR (FITS cutouts, searched recursively), or nothing: --n-images fake FITS
        cutouts (Gaussian blobs plus sky noise) are written to a temporary folder first
WRITES  RUN/bench/benchmark.json (or --output): every figure, the configuration, the device

    python bench/benchmark.py --image-size 128 --n-images 512                 # 2 CPU cores, < 3 minutes
    python bench/benchmark.py --image-size 256 --n-images 16384 --batch-size 512 --epochs 2   # a GPU
    torch threads: set OMP_NUM_THREADS to share a machine fairly; numbers on a busy machine are noisy.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from VAE_model import runfiles  # noqa: E402
from VAE_model.data import (augment, batch_loader, device_batches, draw_augmentation, image_cache,  # noqa: E402
                            make_batches, write_image_list)
from VAE_model.features import encode_arrays  # noqa: E402
from VAE_model.imageio import FITS_SUFFIXES, resize, write_fits_cutout  # noqa: E402
from VAE_model.models import VAE, VAEConfig, vae_loss  # noqa: E402
from VAE_model.runtime import (DistInfo, add_runtime_arguments, describe_args, pick_device,  # noqa: E402
                               pick_precision, seed_everything, write_json)
from VAE_model.training import TrainSettings, build_model, train_one_epoch, wrap_model  # noqa: E402

BENCH_JSON = "bench/benchmark.json"

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
    parser.add_argument("--epochs", type=int, default=1, help="timed training epochs per path (default: %(default)s)")
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
    parser.add_argument("--output", default=None, help=f"JSON path (default: RUN/{BENCH_JSON})")
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


def warm_up(model, device, image_size: int, batch_size: int, precision=None, channels_last: bool = False) -> None:
    """One untimed step on random data (library initialisation, cuDNN/oneDNN kernel choice)."""
    images = torch.rand(min(batch_size, 16), 3, image_size, image_size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    context = precision.autocast() if precision is not None else torch.autocast(device.type, enabled=False)
    with context:
        reconstruction, mu, logvar = model(images)
    vae_loss(reconstruction, images, mu, logvar)[0].backward()
    model.zero_grad(set_to_none=True)
    synchronize(device)


# ----------------------------------------------------------------------------- (a) reference style
def reference_train(paths, config: VAEConfig, args, device, seed: int) -> dict:
    """Reference-style training: FITS read + numpy normalisation per image per epoch, float32."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    model = VAE(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    warm_up(model, device, config.image_size, args.batch_size)
    n_images, wait, busy = 0, 0.0, 0.0
    start = time.perf_counter()
    for epoch in range(args.epochs):
        loader = reference_loader(paths, config.image_size, args.batch_size, device, args.workers, True, seed + epoch)
        iterator = iter(loader)
        for _ in tqdm(range(len(loader)), desc=f"reference epoch {epoch + 1}", leave=False, disable=args.quiet):
            t0 = time.perf_counter()
            images = next(iterator).to(device)
            synchronize(device)
            t1 = time.perf_counter()
            reconstruction, mu, logvar = model(images)
            loss = vae_loss(reconstruction, images, mu, logvar)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()                      # the reference logs the loss every step
            synchronize(device)
            wait, busy, n_images = wait + t1 - t0, busy + time.perf_counter() - t1, n_images + len(images)
    seconds = time.perf_counter() - start
    return {"train_images_per_s": n_images / seconds, "train_seconds": seconds, "train_images": n_images,
            "data_wait_share": wait / max(wait + busy, 1e-12), "model": model}


@torch.no_grad()
def reference_extract(model, paths, config: VAEConfig, args, device) -> dict:
    model.eval()
    loader = reference_loader(paths, config.image_size, args.batch_size, device, args.workers, False, 0)
    start = time.perf_counter()
    mu = [model.encode(images.to(device))[0].cpu() for images in loader]
    seconds = time.perf_counter() - start
    return {"extract_images_per_s": len(paths) / seconds, "extract_seconds": seconds,
            "mu_finite": bool(torch.isfinite(torch.cat(mu)).all())}


# ----------------------------------------------------------------------------- (b) this project
def project_train(cache, config: VAEConfig, args, device, precision, channels_last: bool, seed: int) -> dict:
    """training.train_one_epoch on the cache, exactly the loop Galaxy_VAE_n.py runs (one process)."""
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, augment=True, seed=seed,
                             workers=args.workers, channels_last=channels_last, compile=args.compile)
    model = build_model(config, device, settings)
    module = wrap_model(model, device, DistInfo(), settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scaler = precision.scaler()
    warm_up(module, device, config.image_size, args.batch_size, precision, channels_last)
    indices = np.arange(len(cache))
    n_images = 0
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        row = train_one_epoch(module, optimizer, scaler, precision, cache, indices, epoch, settings, device,
                              DistInfo(), config.latent_dim, progress=not args.quiet)
        n_images += len(indices)
    synchronize(device)
    seconds = time.perf_counter() - start
    out = {"train_images_per_s": n_images / seconds, "train_seconds": seconds, "train_images": n_images,
           "final_train_loss": row["train_loss"], "model": model}
    out.update(data_wait(module, optimizer, scaler, precision, cache, settings, config, device, args.wait_steps))
    return out


def data_wait(module, optimizer, scaler, precision, cache, settings: TrainSettings, config: VAEConfig, device,
              steps: int) -> dict:
    """Share of a synchronised training step spent waiting for the next batch on the device.

    The same pieces as train_one_epoch (batch_loader, device_batches, augment, autocast), with a
    synchronisation after the batch arrives and after the step. That removes the overlap real
    training has, so the share is an upper bound on the time the GPU starves for data.
    """
    batches = make_batches(np.arange(len(cache)), settings.batch_size, shuffle=True, seed=settings.seed + 1)
    batches = (batches * (steps // max(len(batches), 1) + 1))[:steps]
    generator = torch.Generator().manual_seed(settings.seed)
    module.train()
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
        with precision.autocast():
            reconstruction, mu, logvar = module(images, torch.randn(len(batch), config.latent_dim, device=device))
        loss = vae_loss(reconstruction, images, mu, logvar, settings.beta)[0]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if stream is not None:
            stream.synchronize()
        wait, busy = wait + t1 - t0, busy + time.perf_counter() - t1
    share = wait / max(wait + busy, 1e-12)
    return {"data_wait_share": share, "busy_share": 1 - share, "wait_steps": len(batches),
            "step_seconds": busy / max(len(batches), 1)}


def project_extract(model, cache, args, device, precision) -> dict:
    encode_arrays(model, cache[: min(len(cache), 16)], device, precision, batch_size=args.batch_size)   # warm-up
    synchronize(device)
    start = time.perf_counter()
    mu, _ = encode_arrays(model, cache, device, precision, batch_size=args.batch_size, progress=not args.quiet)
    seconds = time.perf_counter() - start
    return {"extract_images_per_s": len(cache) / seconds, "extract_seconds": seconds,
            "mu_finite": bool(np.isfinite(mu).all())}


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

        reference = reference_train(paths, config, args, device, args.seed)
        reference.update(reference_extract(reference.pop("model"), paths, config, args, device))

        start = time.perf_counter()
        cache = image_cache(list_path, args.image_size, tmp / "cache", progress=progress)
        cache_seconds = time.perf_counter() - start
        project = {"cache_build_s": cache_seconds, "cache_build_images_per_s": len(cache) / cache_seconds,
                   "precision": precision.describe(), "channels_last": channels_last, "compile": args.compile}
        project.update(project_train(cache, config, args, device, precision, channels_last, args.seed))
        model = project.pop("model").to(memory_format=torch.contiguous_format)   # as runtime.load_model gives it
        project.update(project_extract(model, cache, args, device, precision))
        project["train_images_per_s_incl_cache_build"] = project["train_images"] / (project["train_seconds"] + cache_seconds)
        del cache

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
              "train_incl_cache_build": project["train_images_per_s_incl_cache_build"] / reference["train_images_per_s"],
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
    output = Path(args.output) if args.output else runfiles.run_path(args.run, BENCH_JSON)
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
