"""The ``build/`` folder of an index: the work of one build, resumable, with its state.

``state.json`` says which build the work belongs to (a key of everything that decides the
result), the name the new version will have, and whether that version is finished. A
finished version that was not published yet (the process died in between) is published by
the next run, whatever that run was asked to do: it is finished work. Unfinished work of
another plan is discarded with a note on stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from patchpilot.errors import PatchPilotWarning
from patchpilot.index.layout import IndexFolder, write_atomically

STATE_NAME = "state.json"
#: Folders beside an index that builds before versioned indexes left behind.
_LEGACY_SUFFIXES = (".partial", ".describe", ".describe-copy", ".copy")


@dataclass
class WorkState:
    key: str
    version: str
    #: The presets to index are in the work store (a resume does not add them again).
    prepared: bool = False
    finished: bool = False
    #: What the finished build reports (kept for a run that only publishes it).
    report: dict = field(default_factory=dict)


class Workdir:
    """The work folder of an index folder. Use with the index's build lock held."""

    def __init__(self, folder: IndexFolder) -> None:
        self.folder = folder
        self.path = folder.build_dir

    @property
    def version_dir(self) -> Path:
        return self.path / self.state.version

    def start(self, key: str) -> WorkState:
        """Resume the work of ``key``, or start it afresh. Call :meth:`recover` first: a
        finished version left by an interrupted run is published before any new work."""
        self._clean_legacy()
        state = self.read_state()
        if state is not None and state.key != key:
            warnings.warn(f"discarded an unfinished build in {self.path} (it was building something else)",
                          PatchPilotWarning, stacklevel=2)
            state = None
        if state is None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            state = WorkState(key, self.folder.new_version_name())
            self._write(state)
        self.state = state
        return state

    def recover(self) -> WorkState | None:
        """Publish a finished version an interrupted run left; returns its state, if any."""
        state = self.read_state()
        if state is None or not state.finished:
            return None
        self.publish_finished(state)
        return state

    def save(self) -> None:
        self._write(self.state)

    def finish(self, report: dict) -> None:
        """Mark the version complete (its folder must be written and closed)."""
        self.state.finished = True
        self.state.report = report
        self._write(self.state)

    def publish_finished(self, state: WorkState | None = None) -> Path:
        """Publish the finished version of ``state`` (default: this run's) and remove the work."""
        state = state or self.state
        staged = self.path / state.version
        published = self.folder.versions / state.version
        result = self.folder.publish(staged if staged.exists() else published)
        shutil.rmtree(self.path, ignore_errors=True)
        return result

    def read_state(self) -> WorkState | None:
        try:
            return WorkState(**json.loads((self.path / STATE_NAME).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def _write(self, state: WorkState) -> None:
        write_atomically(self.path / STATE_NAME, json.dumps(asdict(state), indent=2, default=str))

    def _clean_legacy(self) -> None:
        """Folders an older Patch Pilot left beside the index: a ``.previous`` copy is the
        index itself when the swap was cut short (put back), the rest is unfinished work."""
        parent, name = self.folder.path.parent, self.folder.path.name
        previous = parent / f".{name}.previous"
        if previous.is_dir():
            if not self.folder.exists():
                for item in previous.iterdir():
                    os.replace(item, self.folder.path / item.name)
                previous.rmdir()
            else:
                shutil.rmtree(previous, ignore_errors=True)
        for suffix in _LEGACY_SUFFIXES:
            leftover = parent / f".{name}{suffix}"
            if leftover.is_dir():
                warnings.warn(f"removed {leftover}, left by an interrupted build of an older Patch Pilot",
                              PatchPilotWarning, stacklevel=2)
                shutil.rmtree(leftover, ignore_errors=True)
