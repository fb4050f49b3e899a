"""Where and how things run: device, precision, seeds, distributed set-up, checkpoints.

One place picks the device (CUDA when present, else CPU) and the precision; one checkpoint
format (a dict of state dicts, saved atomically); one way to record the configuration.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import GalaxyVAEError, RunPathError
from .files import atomic_write, write_json  # noqa: F401  (write_json: kept importable from here)


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


# the flags and cli_main live in cli_args (no torch); kept importable from here
from .cli_args import (add_amp_argument, add_batch_size_argument, add_mock_dir_argument, add_quiet_argument,  # noqa: F401
                       add_runtime_arguments, add_workers_argument, cli_main, fraction_below_one, image_side,
                       describe_args, git_commit, non_negative_float, positive_float, positive_int)


# ----------------------------------------------------------------------------- run directories
def ensure_run_dir(path: str | Path) -> Path:
    """A writable directory at ``path`` (created if absent); RunPathError in one line otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunPathError(f"{path}: is a file, not a run directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunPathError(f"{path}: cannot create the run directory ({error.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunPathError(f"{path}: run directory is not writable")
    return path


def _lock_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(directory: str | Path):
    """Hold ``directory/.lock`` while training or adapting: a second process gets one line naming the
    PID that holds it; the lock of a process that died (kill -9) is taken over."""
    import socket
    from .errors import RunLockedError

    directory = ensure_run_dir(directory)
    path = directory / ".lock"
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
          "started_utc": __import__("time").strftime("%Y-%m-%dT%H:%M:%SZ", __import__("time").gmtime())}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(path)
            pid = int(holder.get("pid", 0) or 0)
            same_host = holder.get("host") in (None, me["host"])
            if pid and (not same_host or _alive(pid)):
                raise RunLockedError(f"{directory}: in use by process {pid} on {holder.get('host')} "
                                     f"({holder.get('command', '?')}); wait for it or stop it") from None
            path.unlink(missing_ok=True)   # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    else:
        raise RunLockedError(f"{directory}: could not take the lock {path}")
    try:
        yield path
    finally:
        if _lock_holder(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


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
    """torch.save through files.atomic_write: a reader never sees half a checkpoint, and a full disk
    is one line naming the file (RunPathError), with the previous checkpoint kept."""
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


# ----------------------------------------------------------------------------- checkpoints
class CheckpointError(GalaxyVAEError):
    """A checkpoint that cannot be used; str() names the file."""


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; run Galaxy_VAE_n.py first")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint")
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
