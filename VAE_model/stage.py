"""The stage contract: what a stage read and what it wrote, recorded in one place.

Every stage script runs its work inside one ``Stage``::

    with Stage(run, "analysis/decals_3.py", args) as stage:
        latents = readers.read_latents(run)                  # the typed readers report what they read
        table.to_csv(runfiles.run_path(run, MAP_EMBEDDINGS_CSV))   # run_path reports what is written
        save_figure(fig, stage.output("maps/pca.png"))     # a path not made by run_path: stage.output
        stage.uses(Input.file(catalog))                     # an input from outside the run (a catalog)

On leaving the block the stage writes the provenance record (``provenance.record``) of every output
it wrote, with every input it read, so no stage can forget one. A stage that stops early (an error,
a non-finite loss, Ctrl-C) marks what it had written as written by an unfinished run, so that
``provenance stale`` and every reader give that as the reason, not "an edit by hand"; Ctrl-C
becomes one ``Interrupted`` line naming the command that continues. ``stage.record(names)`` records
some outputs before the end (a checkpoint after every epoch, resumable if the run is killed).

A typed reader (``readers.checked``) and ``runfiles.run_path`` report to the stage that is active
for their run directory; outside a stage (tests, notebooks) they report to nobody.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

from . import provenance
from .errors import Interrupted

_ACTIVE: list["Stage"] = []


class Stage:
    """One run of one stage script on one run directory (see the module docstring).

    ``args``: the parsed flags (their description becomes the records' settings; ``settings`` can
    add to it). ``resume``: what to tell the user after Ctrl-C (default: re-run the same command).
    ``active=False``: a process that writes nothing (a non-main process under torchrun)."""

    def __init__(self, run, script: str, args=None, settings: dict | None = None, resume: str | None = None,
                 active: bool = True):
        from .cli_args import describe_args

        self.run = Path(run)
        self.script = script
        self.settings = {**describe_args(args), **(settings or {})}
        self.resume = resume
        self.active = active
        self.inputs: dict[tuple[str, str], provenance.Input] = {}
        self.scoped: dict[str, dict[tuple[str, str], provenance.Input]] = {}   # output prefix -> extra inputs
        self._scope: str | None = None
        self.outputs: list[str] = []
        self._root = self.run.resolve()
        self._started_ns = time.time_ns() - 50_000_000   # file times come from a coarser clock

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "Stage":
        _ACTIVE.append(self)
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if kind is None:
            self.finish()
            return False
        interrupted = issubclass(kind, KeyboardInterrupt)
        reason = "interrupted (Ctrl-C)" if interrupted else _one_line(error)
        # only what this run wrote (a file it named but had not yet rewritten keeps its own record)
        written = [name for name in self.outputs if (self.run / name).is_file()
                   and (self.run / name).stat().st_mtime_ns >= self._started_ns]
        if self.active and written:
            self._record(written, stopped=f"{reason}; {self.resume}" if self.resume else reason)
        if interrupted:
            kept = f"; {len(written)} file(s) it wrote are marked unfinished" if written else ""
            raise Interrupted(f"{self.script} interrupted (Ctrl-C){kept}; "
                              f"{self.resume or 're-run the same command'}") from None
        return False

    # ------------------------------------------------------------------ what was read and written
    def uses(self, *inputs: provenance.Input) -> None:
        """Inputs read other than through the typed readers (a catalog, an image folder, a flag's file)."""
        target = self.inputs if self._scope is None else self.scoped.setdefault(self._scope, {})
        for entry in inputs:
            target.setdefault((entry.kind, str(Path(entry.path).absolute())), entry)

    @contextlib.contextmanager
    def inputs_only_for(self, prefix: str):
        """Inputs read inside this block are inputs of the outputs whose run-relative name starts with
        ``prefix`` only (decals_2_2's per-class files depend on the class index, its latents do not)."""
        self._scope = prefix
        try:
            yield
        finally:
            self._scope = None

    def inputs_of(self, name: str) -> list[provenance.Input]:
        extra = [entry for prefix, entries in self.scoped.items() if name.startswith(prefix)
                 for entry in entries.values()]
        return [*self.inputs.values(), *extra]

    def _record(self, names, stopped: str | None = None) -> None:
        """One record call per distinct input list (outputs of one scope share theirs)."""
        groups: dict[tuple, list[str]] = {}
        for name in names:
            key = tuple(id(entry) for entry in self.inputs_of(name))
            groups.setdefault(key, []).append(name)
        for group in groups.values():
            provenance.record(self.run, group, self.inputs_of(group[0]), self.script, self.settings, stopped=stopped)

    def name_of(self, path) -> str | None:
        """Run-relative name of ``path``, None when it lies outside the run directory."""
        path = Path(path)
        if not path.is_absolute() and not str(path).startswith(str(self.run)):
            return str(path)
        try:
            return str(path.resolve().relative_to(self._root))
        except ValueError:
            return None

    def wrote(self, *paths) -> None:
        """Outputs written by other means (a library function given the path); run-relative names or paths."""
        for path in paths:
            name = self.name_of(path)
            if name is not None and name not in self.outputs:
                self.outputs.append(name)

    def output(self, name: str) -> Path:
        """The path to write RUN/name to (its folder made); remembered as an output of the stage."""
        path = self.run / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.wrote(name)
        return path

    # ------------------------------------------------------------------ records
    def record(self, names) -> None:
        """Record these outputs now (e.g. the checkpoints after each epoch), with the inputs read so far."""
        names = [self.name_of(name) or str(name) for name in names]
        self.wrote(*names)
        if self.active:
            self._record(names)

    def finish(self) -> None:
        """Record every output written (called on leaving the ``with`` block without an error)."""
        # a path asked for but not written (a stage that stopped early with a message) gets no record
        written = [name for name in self.outputs if (self.run / name).is_file()]
        if self.active and written:
            self._record(written)


def _one_line(error) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def active_for(run) -> Stage | None:
    """The innermost stage running on ``run`` (None outside a stage)."""
    if not _ACTIVE:
        return None
    root = Path(run).resolve()
    for stage in reversed(_ACTIVE):
        if stage._root == root:
            return stage
    return None


def note_input(run, *entries: provenance.Input) -> None:
    stage = active_for(run)
    if stage is not None:
        stage.uses(*entries)


def note_output(run, *names: str) -> None:
    stage = active_for(run)
    if stage is not None:
        stage.wrote(*names)


__all__ = ["Stage", "active_for", "note_input", "note_output"]
