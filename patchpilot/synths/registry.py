"""The synths Patch Pilot knows, in one place: each built-in synth's name, the names it also
answers to, its preset files and where its engine lives. Everything else asks here (the CLI's
``--synth``, the facade's preset files, the build's defaults, the corpus) instead of spelling
``("vital", "dexed")`` or a suffix list again. What an engine does (its parameters, the
choices refinement sweeps, how its parameters group into modules, how it renders in a pool)
is declared on its class (``base.SynthEngine``). VST3 instruments are ``vst3:<name>``
(``synths/__init__.py``).

Importing this module imports no engine: entries name their class by path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patchpilot.errors import SynthError

if TYPE_CHECKING:
    from patchpilot.synths.base import SynthEngine

#: Prefix of the names of plugin synths.
PLUGIN_PREFIX = "vst3:"
#: The files a VST3 instrument's presets come in (``.fxp`` only for some plugins).
PLUGIN_PRESET_SUFFIXES = (".vstpreset", ".fxp")


@dataclass(frozen=True)
class SynthEntry:
    """A built-in synth."""

    name: str
    display_name: str
    #: The engine class, as ``module:Class`` (imported on first use).
    engine: str
    #: The suffix of the preset files Patch Pilot writes for it.
    preset_suffix: str
    #: Suffixes of the users' preset files and banks it reads.
    bank_suffixes: tuple[str, ...]
    #: Other names a user may type (``dx7``).
    aliases: tuple[str, ...] = ()
    #: Whether it ships a factory bank in ``presets/`` (indexes and corpora start from it).
    factory_bank: bool = True

    def engine_class(self) -> type[SynthEngine]:
        module, _, attribute = self.engine.partition(":")
        return getattr(importlib.import_module(module), attribute)


VITAL = SynthEntry("vital", "Vital", "patchpilot.synths.vital.engine:VitalEngine", ".vital", (".vital",))
DEXED = SynthEntry("dexed", "Dexed (DX7)", "patchpilot.synths.dexed:DexedEngine", ".syx", (".syx",),
                   aliases=("dx7",))
#: Every built-in synth, in the order commands list and default to them.
BUILTIN: dict[str, SynthEntry] = {entry.name: entry for entry in (VITAL, DEXED)}


def builtin_synths() -> tuple[str, ...]:
    """The built-in synths' names (the default of every command that takes ``--synth``)."""
    return tuple(BUILTIN)


def is_plugin_synth(name: str) -> bool:
    return name.strip().lower().startswith(PLUGIN_PREFIX)


def builtin_name(name: str) -> str | None:
    """The built-in synth a name or alias means (any case), or None."""
    key = name.strip().lower()
    for entry in BUILTIN.values():
        if key == entry.name or key in entry.aliases:
            return entry.name
    return None


def unknown_synth(name: str) -> SynthError:
    """The one line for a synth name nobody knows, naming the known ones."""
    return SynthError(f"unknown synth {name!r}; built-in synths: {', '.join(BUILTIN)}, "
                      f"or a VST3 instrument as {PLUGIN_PREFIX}NAME")


def entry(name: str) -> SynthEntry:
    """The entry of a built-in synth (by name or alias)."""
    found = builtin_name(name)
    if found is None:
        raise unknown_synth(name)
    return BUILTIN[found]


def synth_for_file(suffix: str) -> str | None:
    """The built-in synth whose preset files end with ``suffix`` (``.vital``), or None."""
    suffix = suffix.lower()
    return next((e.name for e in BUILTIN.values() if suffix in e.bank_suffixes), None)


def preset_file_suffixes() -> tuple[str, ...]:
    """Every suffix a preset file may have: the built-in synths' and the plugins'."""
    suffixes = [s for e in BUILTIN.values() for s in e.bank_suffixes]
    return tuple(dict.fromkeys([*suffixes, *PLUGIN_PRESET_SUFFIXES]))


def describe_builtin() -> str:
    """``vital or dexed`` (with aliases: ``dexed (dx7)``), for messages."""
    names = [e.name + (f" ({', '.join(e.aliases)})" if e.aliases else "") for e in BUILTIN.values()]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
