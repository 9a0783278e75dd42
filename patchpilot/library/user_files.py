"""Reading the user's own preset files (``.vital`` presets, DX7 ``.syx`` banks and voices)
without letting one bad file stop the rest."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from patchpilot.errors import PatchPilotError
from patchpilot.synths import Preset, get_engine


def read_preset_files(paths: Iterable[Path], synths: Sequence[str]) -> tuple[list[tuple[Path, list[Preset]]],
                                                                          list[tuple[Path, str]]]:
    """The presets of every file in ``paths`` (folders searched recursively by suffix, in
    sorted order) for the given synths, and the files skipped with the reason: missing,
    unsupported suffix (only for files named explicitly: a folder's other files are not
    presets), unreadable or damaged. Never raises for a file's content."""
    by_suffix = {suffix: name for name in synths for suffix in get_engine(name).bank_suffixes}
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in by_suffix and p.is_file())
        elif not path.exists():
            skipped.append((path, "no such file or folder"))
        elif path.suffix.lower() not in by_suffix:
            skipped.append((path, f"unsupported preset file; expected one of {', '.join(sorted(by_suffix))}"))
        else:
            files.append(path)
    items: list[tuple[Path, list[Preset]]] = []
    for file in files:
        try:
            presets = get_engine(by_suffix[file.suffix.lower()]).read_presets(file)
        except PatchPilotError as error:
            skipped.append((file, _reason(str(error), file)))
            continue
        if presets:
            items.append((file, presets))
        else:
            skipped.append((file, "holds no preset"))
    return items, skipped


def _reason(message: str, file: Path) -> str:
    """The error without the file name it starts with (the caller pairs it with the path)."""
    prefix = f"{file}: "
    return message[len(prefix):] if message.startswith(prefix) else message
