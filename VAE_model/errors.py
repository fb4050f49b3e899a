"""The one error base class: every error a user's input or run directory can cause.

Each subclass's ``str()`` is one line naming the file (or flag) and the problem, so every
script's ``main`` catches ``GalaxyVAEError`` alone and prints ``error: <message>``.
"""
from __future__ import annotations


class GalaxyVAEError(Exception):
    """Base of every expected failure; str() is one line for the user."""


class MissingInputError(GalaxyVAEError):
    """A stage's input is absent: the message names the file and the stage that writes it."""


class StaleInputError(GalaxyVAEError):
    """A stage's input was made from files that have changed since: the message names the file that
    changed and the stage to re-run."""


class RunLockedError(GalaxyVAEError):
    """Another live process holds the run directory's lock (the message names its PID)."""


class RunPathError(GalaxyVAEError):
    """A run-directory path that cannot be used (read-only, a file where a folder should be, ...)."""


class NotEnoughDataError(GalaxyVAEError, ValueError):
    """Too few images, galaxies, pairs or classes for what was asked (the message names the counts)."""


class Interrupted(GalaxyVAEError):
    """Ctrl-C inside a stage: the message says what was kept and the command that continues."""
