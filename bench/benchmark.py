"""Benchmark: three rows, one run, the same images, split and number of epochs.

(a) the reference: the reference study's architecture (VAEConfig arch='reference') and its data
    path: a torch Dataset that opens every FITS file with astropy in __getitem__, in every
    epoch, and normalises each image on its own (min-max, numpy); DataLoader(batch_size,
    shuffle); float32; channels-first; no cache.
(b) this project's data path with the reference architecture: the decode-once uint8 cache
    (data.image_cache), whole batches sliced from the memmap, augmentation on the device,
    training.train_one_epoch as Galaxy_VAE_n.py runs it (channels-last; bfloat16 autocast only
    with --amp on, or auto on CUDA), latents through features.encode_arrays with the model as
    runtime.load_model returns it (as analysis/decals_2_2.py runs it).
(c) this project's default: (b) with the default architecture (VAEConfig.arch, or --arch).

Measured for each row: training and latent-extraction images/s (the rows take turns epoch by
epoch and extraction by extraction, and the best of each is kept: a shared machine only ever
slows a run down) and the validation MSE per pixel after --epochs epochs, on the held-out images
(data.split_indices, --val-fraction, --seed). All three are measured on the same target, the
project's stretched image (the cache, [0, 1]); row (a)'s reconstructions are first mapped back
from its per-image min-max units to flux (x * (max - min) + min) and stretched the same way, and
its MSE in its own units is reported too. Also: the ratios of (c) and (b) to (a), the one-off cost
of building the cache, the share of a training step spent waiting for data (a synchronised pass:
an upper bound), model FLOPs per image (torch.utils.flop_counter) of each architecture and the
achieved TFLOP/s, against the GPU's peak when the GPU is in the table below; mock galaxies
rendered per second. Defaults of the model and training settings come from the VAEConfig and
TrainSettings dataclasses (latent size, learning rate, beta, validation fraction, architecture).

READS   --images DIR (FITS cutouts, searched recursively), or nothing: --n-images fake FITS
        cutouts (Gaussian blobs plus sky noise) are written to a temporary folder first
WRITES  RUN/bench/benchmark.json (or --output): every figure, the configuration, the device

    python bench/benchmark.py --image-size 128 --n-images 512 --epochs 3 --lr 1e-3       # 2 CPU cores
    python bench/benchmark.py --image-size 256 --n-images 8192 --batch-size 512         # one GPU
    python bench/benchmark.py --images data/mock/decals --n-images 640 --image-size 64  # mock or real cutouts

Fake cutouts sit in the page cache after being written; real survey folders read from disk make
the reference path slower still. On a shared machine set OMP_NUM_THREADS and expect noise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from VAE_model import runfiles
from VAE_model.cli_args import add_amp_argument, add_quiet_argument, add_runtime_arguments, cli_main, describe_args
from VAE_model.config import ARCHITECTURES, TrainSettings, VAEConfig

ROWS = {"a": "reference: reference architecture + reference data path (astropy per epoch, per-image min-max, float32)",
        "b": "project data path (cache, channels-last) + reference architecture",
        "c": "project default: project data path + default architecture"}

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
    model, train = VAEConfig(), TrainSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)
    parser.add_argument("--image-size", type=int, default=128, help="image side in px, divisible by 64 (default: %(default)s)")
    parser.add_argument("--n-images", type=int, default=512, help="fake FITS cutouts to write when --images is not given, "
                        "else the first N cutouts of --images (default: %(default)s)")
    parser.add_argument("--images", default=None, help="folder of real (or mock) FITS cutouts to use instead")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"batch size of every row (default: {train.batch_size} on CUDA, as the reference; 64 on CPU)")
    parser.add_argument("--latent-dim", type=int, default=model.latent_dim, help="(default: %(default)s)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default=model.arch,
                        help="architecture of row (c), the project default (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=1,
                        help="training epochs of every row; validation MSE after the last (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="latent extractions per row, taking turns; the best images/s is kept (default: %(default)s)")
    parser.add_argument("--wait-steps", type=int, default=None,
                        help="steps of the synchronised data-wait pass (default: 20 on CUDA, 4 on CPU)")
    parser.add_argument("--lr", type=float, default=train.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--beta", type=float, default=train.beta, help="weight of the KL term (default: %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=train.val_fraction,
                        help="held-out fraction for the validation MSE (default: %(default)s)")
    add_amp_argument(parser)
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="rows (b), (c) memory format (auto: as Galaxy_VAE_n.py, TrainSettings.channels_last)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the project models")
    parser.add_argument("--workers", type=int, default=train.workers,
                        help="DataLoader workers on CUDA, every row (CPU: 0) (default: %(default)s)")
    parser.add_argument("--mock-galaxies", type=int, default=24, help="galaxies of the mock-survey rendering test (default: %(default)s)")
    parser.add_argument("--skip-mock", action="store_true", help="do not time the mock survey")
    parser.add_argument("--tmp-dir", default=None, help="where fake images and the cache go (default: system temp)")
    parser.add_argument("--output", default=None, help=f"JSON path (default: RUN/{runfiles.BENCH_JSON})")
    add_quiet_argument(parser)
    return parser.parse_args(argv)


# Parsed before the imports below, so that --help and a mistyped flag answer at once, without loading
# torch, pandas and the rest (seconds); main() parses the same arguments again.
if __name__ == "__main__":
    parse_args()

import numpy as np
import torch

from VAE_model.batches import augment, batch_loader, device_batches, draw_augmentation
from VAE_model.data import image_cache, make_batches, split_indices, write_image_list
from VAE_model.features import encode_arrays
from VAE_model.imageio import FITS_SUFFIXES, asinh_stretch, resize, write_fits_cutout
from VAE_model.models import VAE, vae_loss
from VAE_model.runtime import DistInfo, pick_device, pick_precision, seed_everything, write_json
from VAE_model.training import build_model, evaluate, train_one_epoch, wrap_model


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



# ----------------------------------------------------------------------------- (a) the reference
class ReferenceMinMaxDataset(ReferenceFITSDataset):
    """The reference images plus the per-image minimum and maximum, to map a reconstruction back to flux."""

    def __getitem__(self, i: int):
        from astropy.io import fits

        with fits.open(self.paths[i]) as hdul:
            image = np.asarray(hdul[0].data, dtype=np.float32)
        if image.shape[1] != self.image_size:
            image = resize(image, self.image_size)
        low, high = float(image.min()), float(image.max())
        return torch.from_numpy(np.ascontiguousarray((image - low) / (high - low + 1e-12))), low, high


class ReferencePipeline:
    """Row (a): the reference architecture trained and used the reference way (FITS read and
    per-image normalisation per image per epoch, float32, channels-first)."""

    def __init__(self, paths, train_idx, val_idx, config: VAEConfig, args, device, seed: int):
        torch.manual_seed(seed)
        self.paths, self.config, self.args, self.device, self.seed = paths, config, args, device, seed
        self.train_paths = [paths[i] for i in train_idx]
        self.val_paths, self.val_idx = [paths[i] for i in val_idx], np.asarray(val_idx)
        self.model = VAE(config).to(device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        warm_up(self.model, config, device, min(args.batch_size, len(self.train_paths)))

    def train_epoch(self, epoch: int) -> dict:
        from tqdm import tqdm

        model, device = self.model.train(), self.device
        loader = reference_loader(self.train_paths, self.config.image_size, self.args.batch_size, device,
                                  self.args.workers, True, self.seed + epoch)
        iterator = iter(loader)
        n_images, wait, busy = 0, 0.0, 0.0
        start = time.perf_counter()
        for _ in tqdm(range(len(loader)), desc=f"(a) epoch {epoch}", leave=False, disable=self.args.quiet):
            t0 = time.perf_counter()
            images = next(iterator).to(device)
            synchronize(device)
            t1 = time.perf_counter()
            reconstruction, mu, logvar = model(images)
            loss = vae_loss(reconstruction, images, mu, logvar, self.args.beta)[0]
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

    @torch.no_grad()
    def validation_mse(self, cache) -> dict:
        """MSE per pixel of the validation images, in the reference's own (min-max) units and on the
        project's target (the cache): reconstruction -> flux -> the project's asinh stretch."""
        model = self.model.eval()
        loader = torch.utils.data.DataLoader(ReferenceMinMaxDataset(self.val_paths, self.config.image_size),
                                             batch_size=self.args.batch_size, shuffle=False)
        own, project, seen = 0.0, 0.0, 0
        for images, low, high in loader:
            reconstruction = model(images.to(self.device))[0].float().cpu()
            own += float((reconstruction - images).pow(2).flatten(1).mean(1).sum())
            scale = (high - low + 1e-12).double().view(-1, 1, 1, 1)
            flux = reconstruction.double() * scale + low.double().view(-1, 1, 1, 1)
            stretched = torch.from_numpy(asinh_stretch(flux.numpy()))
            target = torch.from_numpy(np.ascontiguousarray(cache[self.val_idx[seen:seen + len(images)]])).float() / 255
            project += float((stretched - target).pow(2).flatten(1).mean(1).sum())
            seen += len(images)
        return {"val_mse_per_pixel": project / max(seen, 1), "val_mse_per_pixel_own_units": own / max(seen, 1)}


# ----------------------------------------------------------------------------- (b), (c) this project
class ProjectPipeline:
    """training.train_one_epoch on the decode-once cache, the loop Galaxy_VAE_n.py runs (one process);
    latents with features.encode_arrays."""

    def __init__(self, cache, train_idx, val_idx, config: VAEConfig, args, device, precision, channels_last: bool,
                 seed: int):
        self.cache, self.config, self.args, self.device, self.precision = cache, config, args, device, precision
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        self.settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                                      augment=True, seed=seed, workers=args.workers, channels_last=channels_last,
                                      compile=args.compile)
        self.model = build_model(config, device, self.settings)
        self.module = wrap_model(self.model, device, DistInfo(), self.settings)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.scaler = precision.scaler()
        warm_up(self.module, config, device, min(args.batch_size, len(self.train_idx)), precision, channels_last)

    def train_epoch(self, epoch: int) -> dict:
        start = time.perf_counter()
        row = train_one_epoch(self.module, self.optimizer, self.scaler, self.precision, self.cache, self.train_idx,
                              epoch, self.settings, self.device, DistInfo(), self.config,
                              progress=not self.args.quiet)
        synchronize(self.device)
        return {"images": len(self.train_idx), "seconds": time.perf_counter() - start, "train_loss": row["train_loss"]}

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

    def validation_mse(self, cache=None) -> dict:
        values = evaluate(self.module, self.precision, self.cache, self.val_idx, self.args.batch_size, self.device,
                          DistInfo(), self.args.beta, self.settings.channels_last)
        return {"val_mse_per_pixel": values["val_mse_per_pixel"]}

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
        from VAE_model.mock import build_mock_survey
    except ImportError as error:
        return {"skipped": f"VAE_model.mock not importable ({error})"}
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
    float32 = pick_precision(device, "off")
    channels_last = TrainSettings.channels_last if args.channels_last == "auto" else args.channels_last == "on"
    args.batch_size = args.batch_size or (TrainSettings.batch_size if device.type == "cuda" else 64)
    args.wait_steps = args.wait_steps or (20 if device.type == "cuda" else 4)
    for flag, value, low in (("--epochs", args.epochs, 1), ("--repeats", args.repeats, 1), ("--batch-size", args.batch_size, 1),
                             ("--n-images", args.n_images, 4)):
        if value < low:
            raise ValueError(f"{flag} {value}: must be >= {low}")
    seed_everything(args.seed)
    configs = {"a": VAEConfig(latent_dim=args.latent_dim, image_size=args.image_size, arch="reference"),
               "b": VAEConfig(latent_dim=args.latent_dim, image_size=args.image_size, arch="reference"),
               "c": VAEConfig(latent_dim=args.latent_dim, image_size=args.image_size, arch=args.arch)}
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
        train_idx, val_idx = split_indices(len(paths), args.val_fraction, args.seed)
        if len(val_idx) == 0:
            raise ValueError(f"--val-fraction {args.val_fraction}: the validation MSE needs held-out images")

        flops = {arch: count_flops(VAEConfig(latent_dim=args.latent_dim, image_size=args.image_size, arch=arch),
                                   args.batch_size, device, precision, channels_last) for arch in ARCHITECTURES}
        if progress:
            print(f"{len(paths)} images ({len(train_idx)} train, {len(val_idx)} validation) of {args.image_size} px, "
                  f"batch {args.batch_size}, latent {args.latent_dim}, {args.epochs} epochs, {device}; GFLOP per "
                  f"training image: " + ", ".join(f"{a} {f['train_gflop_per_image']:.3f}" for a, f in flops.items()))

        start = time.perf_counter()
        cache = image_cache(list_path, args.image_size, tmp / "cache", progress=progress)
        cache_seconds = time.perf_counter() - start
        pipelines = {"a": ReferencePipeline(paths, train_idx, val_idx, configs["a"], args, device, args.seed),
                     "b": ProjectPipeline(cache, train_idx, val_idx, configs["b"], args, device, precision,
                                          channels_last, args.seed),
                     "c": ProjectPipeline(cache, train_idx, val_idx, configs["c"], args, device, precision,
                                          channels_last, args.seed)}
        # the rows take turns, epoch by epoch, so all see the same (shared, noisy) machine
        train_runs = {row: [] for row in pipelines}
        extract_runs = {row: [] for row in pipelines}
        for epoch in range(1, args.epochs + 1):
            for row, pipeline in pipelines.items():
                train_runs[row].append(pipeline.train_epoch(epoch))
        validation = {row: pipeline.validation_mse(cache) for row, pipeline in pipelines.items()}
        for _ in range(args.repeats):
            for row, pipeline in pipelines.items():
                extract_runs[row].append(pipeline.extract())
        rows = {}
        for row, pipeline in pipelines.items():
            train_best, train_all = best_rate(train_runs[row])
            extract_best, extract_all = best_rate(extract_runs[row])
            config = configs[row]
            rows[row] = {"description": ROWS[row], "arch": config.arch,
                         "data_path": "reference" if row == "a" else "project",
                         "precision": float32.describe() if row == "a" else precision.describe(),
                         "channels_last": False if row == "a" else channels_last,
                         "train_images_per_s": train_best, "train_images_per_s_all": train_all,
                         "train_images": train_runs[row][0]["images"], "epochs": args.epochs,
                         "extract_images_per_s": extract_best, "extract_images_per_s_all": extract_all,
                         "mu_finite": all(run["finite"] for run in extract_runs[row]),
                         "train_gflop_per_image": flops[config.arch]["train_gflop_per_image"],
                         "encode_gflop_per_image": flops[config.arch]["encode_gflop_per_image"],
                         **validation[row]}
            rows[row]["train_tflops_achieved"] = rows[row]["train_gflop_per_image"] * train_best / 1e3
        runs = train_runs["a"]
        rows["a"]["data_wait_share"] = sum(r["wait"] for r in runs) / max(sum(r["wait"] + r["busy"] for r in runs), 1e-12)
        for row in ("b", "c"):
            rows[row].update(pipelines[row].data_wait(args.wait_steps))
            rows[row]["final_train_loss"] = train_runs[row][-1]["train_loss"]
            epoch_seconds = rows[row]["train_images"] / rows[row]["train_images_per_s"]
            # a first epoch pays for building the cache (later epochs and stages reuse it)
            rows[row]["first_epoch_images_per_s_incl_cache_build"] = rows[row]["train_images"] / (epoch_seconds + cache_seconds)
        cache_info = {"cache_build_s": cache_seconds, "cache_build_images_per_s": len(cache) / cache_seconds}
        del cache, pipelines

        mock = ({"skipped": "--skip-mock"} if args.skip_mock else
                time_mock_survey(args.mock_galaxies, args.image_size, args.seed, tmp / "mock", progress))

    peak = peak_tflops(device, precision)
    default = rows["c"]
    gpu = {"peak_tflops": peak, "peak_precision": precision.describe() if peak else None,
           "train_tflops_achieved": default["train_tflops_achieved"],
           "extract_tflops_achieved": default["encode_gflop_per_image"] * default["extract_images_per_s"] / 1e3,
           "train_share_of_peak": default["train_tflops_achieved"] / peak if peak else None}
    ratios = {f"{num}_over_{den}_{kind}": rows[num][f"{kind}_images_per_s"] / rows[den][f"{kind}_images_per_s"]
              for num, den in (("c", "a"), ("b", "a"), ("c", "b")) for kind in ("train", "extract")}
    ratios["c_over_a_val_mse"] = default["val_mse_per_pixel"] / rows["a"]["val_mse_per_pixel"]
    goal = {"target": "(c) >= 3x (a) training images/s in float32 at equal or better validation MSE",
            "float32": default["precision"] == "float32", "train_ratio": ratios["c_over_a_train"],
            "mse_equal_or_better": default["val_mse_per_pixel"] <= rows["a"]["val_mse_per_pixel"]}
    goal["met"] = bool(goal["float32"] and goal["train_ratio"] >= 3 and goal["mse_equal_or_better"])
    device_info = {"type": device.type, "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                   "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__}
    return {"config": describe_args(args, device_used=str(device), n_images_used=len(paths), image_source=source,
                                    n_train=len(train_idx), n_val=len(val_idx)),
            "device": device_info, "rows": rows, "ratios": ratios, "goal": goal, "cache": cache_info,
            "flops": {arch: f for arch, f in flops.items()}, "gpu": gpu, "mock_survey": mock}


def print_table(result: dict) -> None:
    rows = result["rows"]
    print(f"{'row':<4}{'arch':<10}{'data path':<11}{'precision':<10}{'train img/s':>12}{'extract img/s':>14}"
          f"{'val MSE/px':>12}")
    for name, row in rows.items():
        print(f"({name}) {row['arch']:<10}{row['data_path']:<11}{row['precision']:<10}{row['train_images_per_s']:>12.1f}"
              f"{row['extract_images_per_s']:>14.1f}{row['val_mse_per_pixel']:>12.5f}")
    ratios, goal = result["ratios"], result["goal"]
    print(f"(c)/(a): training {ratios['c_over_a_train']:.2f}x, extraction {ratios['c_over_a_extract']:.2f}x, "
          f"val MSE ratio {ratios['c_over_a_val_mse']:.2f}; (b)/(a) training {ratios['b_over_a_train']:.2f}x; "
          f"goal (>= 3x in float32 at equal or better MSE) {'met' if goal['met'] else 'NOT met'}")
    print(f"row (a) val MSE in its own min-max units {rows['a']['val_mse_per_pixel_own_units']:.5f}; data wait share: "
          f"(a) {rows['a']['data_wait_share']:.1%}, (c) {rows['c']['data_wait_share']:.1%}; cache build "
          f"{result['cache']['cache_build_s']:.1f} s (once)")
    gpu = result["gpu"]
    peak = f" of peak {gpu['peak_tflops']:.0f} ({gpu['train_share_of_peak']:.1%})" if gpu["peak_tflops"] else ""
    print(f"(c) achieved {gpu['train_tflops_achieved']:.3f} TFLOP/s training{peak}")
    mock = result["mock_survey"]
    print("mock survey: " + (f"skipped ({mock['skipped']})" if "skipped" in mock else
                             f"{mock['galaxies_per_s']:.2f} galaxies/s ({mock['workers']} workers)"))


@cli_main
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
    print(f"done: (c) trains {result['ratios']['c_over_a_train']:.2f}x and extracts latents "
          f"{result['ratios']['c_over_a_extract']:.2f}x as fast as (a) ({result['device']['name']}); written {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
