"""What a build indexes: factory presets and their variants, the user's preset files, and
the user presets an index already holds (kept across rebuilds from its store, not from
their paths, which may have moved or changed)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpilot.errors import PresetError
from patchpilot.index.store import PresetStore
from patchpilot.library.bank import factory_preset_id, load_factory_bank, slug
from patchpilot.library.sampler import make_variant, variants_per_preset
from patchpilot.library.user_files import read_preset_files
from patchpilot.synths import Preset, get_engine, is_plugin_synth
from patchpilot.synths.registry import builtin_synths

#: Presets read from a user's file have ids ``<synth>:user:<file>[:<voice>]``.
USER_MARK = ":user:"


@dataclass(frozen=True)
class Source:
    """Where a user preset came from: its file when it was added, and that file's hash."""

    path: str
    sha1: str
    added: str = ""


@dataclass(frozen=True)
class Gathered:
    """Presets to index (id, preset, source for user presets) and files that could not be read."""

    items: list[tuple[str, Preset, Source | None]]
    unreadable: list[tuple[str, str]]


def is_user_preset(preset_id: str) -> bool:
    return USER_MARK in preset_id


def designed_and_variants(synth: str, factory_root: Path, size_per_synth: int, seed: int) -> list[tuple[str, Preset]]:
    """The factory bank of a synth and its seeded variants, ``size_per_synth`` in all. A
    plugin's factory bank is its own programs (or its init patch)."""
    engine = get_engine(synth)
    if is_plugin_synth(synth):
        designed = engine.factory_presets()  # type: ignore[attr-defined]
    else:
        designed = load_factory_bank(synth, factory_root)
    by_category: dict[str, list[Preset]] = defaultdict(list)
    for preset in designed:
        by_category[preset.category].append(preset)
    count = variants_per_preset(len(designed), size_per_synth)
    items: list[tuple[str, Preset]] = []
    taken: set[str] = set()
    for preset in designed:
        base_id = factory_preset_id(synth, preset.name)
        if base_id in taken:  # two programs of a plugin may share a name
            base_id = f"{base_id}-{sum(1 for t in taken if t.startswith(base_id)) + 1}"
        taken.add(base_id)
        items.append((base_id, preset))
        relatives = [p for p in by_category[preset.category] if p is not preset]
        for number in range(1, count + 1):
            variant = make_variant(engine, preset, number, seed=seed, relatives=relatives)
            items.append((f"{base_id}~{number:03d}", variant))
    return items


def user_presets(paths: Iterable[Path], synths: Sequence[str] | None = None,
                 taken: Iterable[str] = ()) -> Gathered:
    """Presets from user files and folders (``.vital`` presets, DX7 ``.syx`` banks/voices).
    A file that cannot be read is named in ``unreadable``; the others are still read. A path
    that does not exist is an error (a mistyped path: said before any work). Ids avoid those
    in ``taken``."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise PresetError(f"{path}: no such file or folder")
    read, skipped = read_preset_files(paths, builtin_synths() if synths is None else synths)
    unreadable = [(str(path), why) for path, why in skipped]
    items: list[tuple[str, Preset, Source | None]] = []
    used = set(taken)
    for file, presets in read:
        synth = presets[0].synth
        try:
            source = Source(str(file.resolve()), hashlib.sha1(file.read_bytes()).hexdigest())
        except OSError as error:
            unreadable.append((str(file), f"cannot read ({error.strerror or error})"))
            continue
        for number, preset in enumerate(presets, start=1):
            stem = f"{synth}{USER_MARK}{slug(file.stem)}" + (f":{number:02d}" if len(presets) > 1 else "")
            preset_id, n = stem, 2
            while preset_id in used:
                preset_id, n = f"{stem}-{n}", n + 1
            used.add(preset_id)
            items.append((preset_id, preset, source))
    return Gathered(items, unreadable)


def kept_user_presets(store: PresetStore) -> list[tuple[str, Preset, Source | None]]:
    """The user presets of an index, with their sources, to carry into a rebuild."""
    sources = store.sources()
    rows = [row for row, (preset_id, *_rest) in sorted(store.labels().items()) if is_user_preset(preset_id)]
    return [(sp.preset_id, sp.preset, _source(sources.get(sp.preset_id))) for sp in store.iter_presets(rows)]


def _source(record: tuple[str, str, str] | None) -> Source | None:
    return None if record is None else Source(*record)


def as_stored(preset: Preset) -> Preset:
    """The preset exactly as the store will hand it back (float32 values)."""
    return preset.with_values({k: float(np.float32(v)) for k, v in preset.values.items()})
