"""Errors and warnings that reach the user as one line on stderr.

Library code raises these errors; the CLI turns them into a message and an exit code, never
a traceback. Anything else escaping the library is a bug. Library code never prints: what
the user should know but that does not stop the work is a :class:`PatchPilotWarning`
(``warnings.warn``), which the CLI prints as one line.
"""

from __future__ import annotations


class PatchPilotError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # keep it on one line whatever the caller passed
        return " ".join(self.message.split())


class InputAudioError(PatchPilotError):
    """The input is missing, unreadable, not audio, silent or too short."""

    exit_code = 2


class IndexLoadError(PatchPilotError):
    """An index is missing, unreadable, incomplete or built by another embedder."""

    exit_code = 3


class EmbedderMismatchError(IndexLoadError):
    """The index was built by an embedder other than the one asked for."""


class PresetError(PatchPilotError):
    """A preset file or bank is unreadable or holds values out of range."""

    exit_code = 4


class SynthError(PatchPilotError):
    """A synth is unavailable or failed to render."""

    exit_code = 5


class ModelUnavailableError(PatchPilotError):
    """Weights or an optional dependency of a model are missing."""

    exit_code = 2


class MissingExtraError(PatchPilotError):
    """An optional extra (``patchpilot[plot]``, ``patchpilot[serve]``) is not installed."""

    exit_code = 2


class UsageError(PatchPilotError):
    """Options that do not fit together."""

    exit_code = 2


class PatchPilotWarning(UserWarning):
    """The work went on, differently than asked or usual (say, a song matched without
    separation because Demucs is not installed)."""
