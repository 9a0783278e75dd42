"""Factory banks: presets designed by us, stored as reviewable TOML.

A bank file holds presets of one synth as overrides of its init patch, in the units the
synth's panel shows (Hz, seconds, dB, option labels)::

    category = "bass"                 # default for the file

    [[preset]]
    name = "Reese Growl"
    tags = ["gritty", "detuned", "dark"]
    [preset.params]
    osc_1_wavetable = "Saw"
    osc_1_unison_voices = 4
    filter_1_on = true
    filter_1_cutoff = 420             # Hz

Files live in ``presets/<synth>/*.toml``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from patchpilot.errors import PatchPilotError, PresetError
from patchpilot.synths import Preset, get_engine

#: Categories every factory preset belongs to (the text search relies on them).
CATEGORIES = ("bass", "lead", "pad", "pluck", "keys", "bell", "brass", "strings", "organ", "fx")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "preset"


def factory_preset_id(synth: str, name: str) -> str:
    return f"{synth}:{slug(name)}"


def load_bank_file(path: Path, synth: str | None = None) -> list[Preset]:
    """Presets of one TOML bank file. The synth is the parent folder's name unless given."""
    synth = synth or path.parent.name
    engine = get_engine(synth)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{path}: {exc}") from None
    default_category = doc.get("category", "")
    presets = []
    for number, entry in enumerate(doc.get("preset", []), start=1):
        where = f"{path.name} preset {number} ({entry.get('name', '?')})"
        try:
            name = str(entry["name"])
            category = str(entry.get("category", default_category))
            if category not in CATEGORIES:
                raise PresetError(f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}")
            preset = engine.make_preset(
                name,
                entry.get("params", {}),
                category=category,
                tags=[str(t).lower() for t in entry.get("tags", [])],
                origin=f"factory:{synth}/{path.name}",
            )
        except KeyError as exc:
            raise PresetError(f"{where}: missing {exc}") from None
        except PatchPilotError as exc:
            raise PresetError(f"{where}: {exc}") from None
        presets.append(preset)
    return presets


def load_factory_bank(synth: str, root: Path) -> list[Preset]:
    """Every preset in ``root/<synth>/*.toml``, in file order. Names must be unique."""
    folder = root / synth
    if not folder.is_dir():
        raise PresetError(f"no factory bank for {synth} in {root}")
    presets: list[Preset] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")):
        for preset in load_bank_file(path, synth):
            key = slug(preset.name)
            if key in seen:
                raise PresetError(f"{path.name}: preset name {preset.name!r} repeats one in {seen[key]}")
            seen[key] = path.name
            presets.append(preset)
    return presets

