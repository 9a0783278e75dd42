"""Where things live: the shipped index and banks, the user's own index, caches."""

from __future__ import annotations

import os
from pathlib import Path

from patchpilot.constants import DEFAULT_INDEX_NAME

_PACKAGE = Path(__file__).resolve().parent
#: In a wheel the banks and the default index are package data; in a source tree they sit
#: beside the package.
_DATA_CANDIDATES = (_PACKAGE / "_data", _PACKAGE.parent)

MANIFEST_NAME = "manifest.json"
#: In an index folder: the name of its published version (``index/layout.py``).
CURRENT_NAME = "current"


def holds_index(folder: Path) -> bool:
    """Whether ``folder`` has a published index (versioned or a flat legacy one)."""
    return (folder / CURRENT_NAME).is_file() or (folder / MANIFEST_NAME).exists()


def _first_existing(relative: str) -> Path | None:
    for root in _DATA_CANDIDATES:
        candidate = root / relative
        if candidate.exists():
            return candidate
    return None


def factory_presets_dir() -> Path:
    """The factory banks (``presets/`` of the source tree)."""
    found = _first_existing("presets")
    return found if found is not None else _PACKAGE.parent / "presets"


def shipped_index_dir() -> Path:
    """The default index that ships with Patch Pilot."""
    for root in _DATA_CANDIDATES:
        if holds_index(root / "indexes" / DEFAULT_INDEX_NAME):
            return root / "indexes" / DEFAULT_INDEX_NAME
    return _PACKAGE.parent / "indexes" / DEFAULT_INDEX_NAME


def data_home() -> Path:
    """Per-user data folder: ``$PATCHPILOT_HOME``, else ``$XDG_DATA_HOME/patchpilot``."""
    explicit = os.environ.get("PATCHPILOT_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "patchpilot"


def user_index_dir() -> Path:
    """Where ``build-index`` writes unless told otherwise."""
    return data_home() / "indexes" / DEFAULT_INDEX_NAME


def default_index_dir() -> Path:
    """The index ``match`` searches unless told otherwise: ``$PATCHPILOT_INDEX``, else the
    user's own index if one was built, else the shipped one."""
    explicit = os.environ.get("PATCHPILOT_INDEX")
    if explicit:
        return Path(explicit).expanduser()
    user = user_index_dir()
    if holds_index(user):
        return user
    return shipped_index_dir()
