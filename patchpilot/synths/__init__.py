"""Synth engines: one interface (:class:`SynthEngine`), one module per synth.

Built-in synths are listed in ``registry.py`` (``vital``, ``dexed``). A VST3 instrument is ``vst3:<name>``
(``vst3:surge-xt``): :func:`register_plugin` loads one by path or name and remembers how to
load it again, and an index records that for every plugin it holds (``PresetStore`` calls
:func:`remember_engine` when it opens), so ``match --synth vst3:surge-xt`` finds the plugin
a build used. A plugin name nobody registered is looked up in the standard VST3 folders.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from patchpilot.errors import SynthError
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, Preset, RenderPool, RenderRequest, SynthEngine, Voice
from patchpilot.synths.params import Param, ParamSpace
from patchpilot.synths.registry import PLUGIN_PREFIX, builtin_name, entry, is_plugin_synth, unknown_synth

__all__ = ["PLUGIN_PREFIX", "Param", "ParamSpace", "Preset", "RenderPool", "RenderRequest", "SynthEngine", "Voice",
           "get_engine", "is_plugin_synth", "play_fresh_native", "register_plugin", "remember_engine"]

#: How to create the engines of non-built-in synths: name -> the engine's ``index_record``.
_RECORDS: dict[str, dict] = {}


def remember_engine(name: str, record: dict, *, replace: bool = False) -> None:
    """Remember how to create the engine of ``name`` (an index's record of a plugin). A
    plugin registered in this process wins over an index's record unless ``replace``."""
    if replace or name not in _RECORDS:
        if _RECORDS.get(name) != record:
            _RECORDS[name] = dict(record)
            get_engine.cache_clear()


def register_plugin(reference: str | Path, *, plugin_name: str | None = None, profile: str = "",
                    factory: str = "") -> str:
    """Load a VST3 instrument by path or name (or a ``module:callable`` stand-in), make its
    engine and return the synth name it goes by (``vst3:surge-xt``)."""
    from patchpilot.synths.vst3 import PluginSpec, VST3Engine, plugin_synth_name

    spec = PluginSpec("", str(reference) if not factory else "", plugin_name, factory, profile)
    plugin = spec.load()
    from patchpilot.plugins.host import find_plugin

    path = "" if factory else str(find_plugin(reference).resolve())
    spec = PluginSpec(plugin_synth_name(str(getattr(plugin, "name", reference))), path, plugin_name, factory, profile)
    engine = VST3Engine(spec, plugin)
    remember_engine(spec.synth, spec.record(), replace=True)
    _ENGINES[spec.synth] = engine
    return spec.synth


#: Engines made by :func:`register_plugin` (they hold the plugin it loaded).
_ENGINES: dict[str, SynthEngine] = {}


@lru_cache(maxsize=None)
def get_engine(name: str) -> SynthEngine:
    """The engine for a synth name (``vital``, ``dexed`` or an alias, ``vst3:<plugin>``), created
    once per process."""
    key = name.strip().lower()
    builtin = builtin_name(key)
    if builtin is not None:
        return get_builtin_engine(builtin)
    if key.startswith(PLUGIN_PREFIX):
        from patchpilot.synths.vst3 import PluginSpec, VST3Engine

        if key in _ENGINES and _ENGINES[key].index_record() == _RECORDS.get(key):
            return _ENGINES[key]
        record = _RECORDS.get(key)
        if record is None:  # never registered nor in an open index: look for it by name
            register_plugin(name.strip()[len(PLUGIN_PREFIX):])
            if key not in _ENGINES:
                raise SynthError(f"{name}: the plugin found by that name is called "
                                 f"{', '.join(n for n in _ENGINES) or 'something else'}")
            return _ENGINES[key]
        return VST3Engine(PluginSpec.from_record(record))
    raise unknown_synth(name)


@lru_cache(maxsize=None)
def get_builtin_engine(name: str) -> SynthEngine:
    """A built-in synth's engine, from the registry (``registry.py``)."""
    return entry(name).engine_class()()


def play_fresh_native(_voice: Voice, request: RenderRequest) -> np.ndarray:
    """``request`` as the user hears it: its preset's file on a fresh instance of its synth,
    at the synth's native rate (a pool's function: module level, so that a pool in worker
    processes can send it; the pool's voice is not used)."""
    return get_engine(request.preset.synth).render(request.preset, request.note, request.velocity,
                                                   request.note_seconds, request.total_seconds, NATIVE_SAMPLE_RATE_HZ)
