"""Synth engines: one interface (:class:`SynthEngine`), one module per synth."""

from __future__ import annotations

from functools import lru_cache

from patchpilot.constants import BUILTIN_SYNTHS
from patchpilot.errors import SynthError
from patchpilot.synths.base import Preset, RenderPool, RenderRequest, SynthEngine, Voice
from patchpilot.synths.params import Param, ParamSpace

__all__ = ["Param", "ParamSpace", "Preset", "RenderPool", "RenderRequest", "SynthEngine", "Voice", "get_engine"]


@lru_cache(maxsize=None)
def get_engine(name: str) -> SynthEngine:
    """The engine for a synth name (``vital`` or ``dexed``), created once per process."""
    key = name.strip().lower()
    if key == "vital":
        from patchpilot.synths.vital import VitalEngine

        return VitalEngine()
    if key in ("dexed", "dx7"):
        from patchpilot.synths.dexed import DexedEngine

        return DexedEngine()
    raise SynthError(f"unknown synth {name!r}; built-in synths: {', '.join(BUILTIN_SYNTHS)}")
