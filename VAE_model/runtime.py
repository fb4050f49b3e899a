"""Where and how things run: device, precision, seeds, distributed set-up, checkpoints.

One place picks the device (CUDA when present, else CPU) and the precision; one checkpoint
format (a dict of state dicts, saved atomically); one way to record the configuration.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import GalaxyVAEError, RunPathError


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


def _checked(kind: str, test, convert=float):
    """An argparse type: converts, then checks; a bad value gives one line naming the flag."""
    import argparse

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text}")
        return value

    parse.__name__ = kind
    return parse


positive_int = _checked("an integer >= 1", lambda v: v >= 1, int)
positive_float = _checked("a number > 0", lambda v: v > 0 and math.isfinite(v))
non_negative_float = _checked("a number >= 0", lambda v: v >= 0 and math.isfinite(v))
fraction_below_one = _checked("a fraction with 0 <= f < 1", lambda v: 0 <= v < 1)
image_side = _checked("a multiple of 64 (>= 64)", lambda v: v >= 64 and v % 64 == 0, int)


def add_amp_argument(parser) -> None:
    parser.add_argument("--amp", choices=["auto", "on", "off"], default="auto",
                        help="mixed precision: auto (bfloat16/float16 on CUDA, float32 on CPU), on, off")


def add_quiet_argument(parser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_batch_size_argument(parser, default: int, what: str = "images per batch") -> None:
    parser.add_argument("--batch-size", type=positive_int, default=default, help=f"{what} (default: %(default)s)")


def add_workers_argument(parser) -> None:
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes for decoding images (default: all cores, at most 8)")


def add_mock_dir_argument(parser) -> None:
    """--mock-dir: where the mock survey (and its ground truth, used only to score results) lives."""
    from .runfiles import DEFAULT_MOCK_DIR

    parser.add_argument("--mock-dir", default=DEFAULT_MOCK_DIR,
                        help="mock survey folder; its truth table scores the results (never used to compute "
                             "them); 'none' on real data (default: %(default)s)")


def cli_main(main):
    """Wrap a script's main(argv): an expected error (GalaxyVAEError, or an OSError on a run path)
    becomes one line on stderr and exit status 1, never a traceback."""
    import functools

    @functools.wraps(main)
    def wrapped(argv=None) -> int:
        try:
            return main(argv)
        except GalaxyVAEError as error:
            print(f"error: {error}", file=sys.stderr)
        except OSError as error:
            print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 1

    return wrapped


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
    """Write to a temporary file, flush to disk, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise RunPathError(f"{path}: is a directory, cannot write a checkpoint there")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise RunPathError(f"{path}: cannot write ({error.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_json(data, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
        os.replace(tmp, path)
    except OSError as error:
        raise RunPathError(f"{path}: cannot write ({error.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)


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
