"""Command-line flags every script shares, and ``cli_main``, the wrapper around every script's main.

No torch and nothing heavy here: every script builds its parser from this and config.py (the
defaults) and parses its arguments before importing anything heavy, so ``--help`` answers at once.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from .errors import GalaxyVAEError, Interrupted


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


def _kl_weight_value(text: str) -> float | str:
    from .config import kl_weight_value

    return kl_weight_value(text)


# --beta: a KL weight >= 0, or 'calibrated' (models.vae_loss)
kl_weight = _checked("a number >= 0 or 'calibrated'", lambda v: isinstance(v, str) or (v >= 0 and math.isfinite(v)),
                     _kl_weight_value)


def comma_list(text: str | None) -> list[str] | None:
    """A comma-separated flag value (e.g. --questions a,b) as its non-empty, stripped items; None stays None."""
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


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
    becomes one line on stderr and exit status 1, never a traceback; Ctrl-C stops with one line
    (exit status 130) that says how to continue (the stage contract, VAE_model/stage.py, turns an
    interruption inside a stage into an ``Interrupted`` error naming the command that resumes it)."""
    import functools

    @functools.wraps(main)
    def wrapped(argv=None) -> int:
        try:
            return main(argv)
        except Interrupted as error:
            print(f"error: {error}", file=sys.stderr)
            return 130
        except KeyboardInterrupt:
            print("error: interrupted (Ctrl-C); nothing half-written is kept: re-run the same command", file=sys.stderr)
            return 130
        except GalaxyVAEError as error:
            print(f"error: {error}", file=sys.stderr)
        except OSError as error:
            print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 1

    return wrapped


def ignore_interrupts() -> None:
    """Pool initializer: Ctrl-C reaches every process of the terminal's group; only the parent acts on
    it (one line from cli_main instead of a traceback from every worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
