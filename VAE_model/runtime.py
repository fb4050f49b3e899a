"""Where and how things run: device, precision, seeds, distributed set-up, checkpoints.

One place picks the device (CUDA when present, else CPU) and the precision; one checkpoint
format (a dict of state dicts, saved atomically); one way to record the configuration.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


# ----------------------------------------------------------------------------- device
def pick_device(requested: str = "auto") -> torch.device:
    """'auto' -> the local CUDA GPU when present (LOCAL_RANK under torchrun), else CPU."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


@dataclass
class Precision:
    """Mixed precision as one context plus a scaler that does nothing when off.

    On CUDA: bfloat16 autocast where the GPU supports it (no scaler needed), else float16
    with a gradient scaler. On CPU: float32, a null context and a disabled scaler, unless asked
    for (--amp on): bfloat16 autocast, fast on CPUs with AMX/AVX512-BF16 units.
    """

    device: torch.device
    enabled: bool

    @property
    def dtype(self) -> torch.dtype:
        if self.device.type == "cpu" or (self.device.type == "cuda" and torch.cuda.is_bf16_supported()):
            return torch.bfloat16
        return torch.float16

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        use = self.enabled and self.dtype == torch.float16
        return torch.amp.GradScaler(self.device.type, enabled=use)

    def describe(self) -> str:
        return str(self.dtype).replace("torch.", "") if self.enabled else "float32"


def pick_precision(device: torch.device, amp: str = "auto") -> Precision:
    """amp: 'auto' (mixed precision on CUDA only), 'on' (also bfloat16 on CPU) or 'off'."""
    enabled = {"auto": device.type == "cuda", "on": True, "off": False}[amp]
    return Precision(device, enabled and device.type in ("cuda", "cpu"))


def add_runtime_arguments(parser) -> None:
    """Flags every script shares: --run, --seed, --device."""
    from .runfiles import DEFAULT_RUN

    # --run-dir: the same flag under torchrun, whose own --run-path makes a bare --run ambiguous
    parser.add_argument("--run", "--run-dir", dest="run", default=DEFAULT_RUN,
                        help="run directory (default: %(default)s); spell it --run-dir after torchrun")
    parser.add_argument("--seed", type=int, default=0, help="random seed, recorded with every result (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA when present, else CPU), 'cpu' or 'cuda[:N]'")


# ----------------------------------------------------------------------------- seeds
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Global RNG states, saved in checkpoints for the record (resuming does not need them: training
    derives every draw from (seed, epoch), see training.py)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


# ----------------------------------------------------------------------------- distributed
@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); NCCL on CUDA, gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def cleanup_distributed(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.destroy_process_group()


# ----------------------------------------------------------------------------- files
def atomic_torch_save(obj, path: str | Path) -> None:
    """Write to a temporary file, flush to disk, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json(data, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (Path, torch.device)):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe_args(args, **extra) -> dict:
    """The configuration record saved next to a result: all flags, the git commit, the command."""
    record = dict(vars(args)) if args is not None else {}
    record.update(extra)
    record["git_commit"] = git_commit()
    record["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return record


# ----------------------------------------------------------------------------- checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; str() names the file."""


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; run Galaxy_VAE_n.py first")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "model_config" not in checkpoint:
        raise CheckpointError(f"{path}: not a Galaxy_VAE checkpoint (missing model/model_config)")
    return checkpoint


def load_model(path: str | Path, device: torch.device | str = "cpu"):
    """Rebuild the VAE from a checkpoint alone (its VAEConfig is stored inside); eval mode."""
    from .models import VAE, VAEConfig

    checkpoint = load_checkpoint(path)
    model = VAE(VAEConfig.from_dict(checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()
