"""A VST3 effect the user names, as one more kind of the effect chain.

``match --fx-plugin ZamComp`` adds the plugin to the kinds the chain search tries: its
controls are the plugin's own automatable continuous parameters, in its names and units
(up to MAX_PLUGIN_CONTROLS of them, in the plugin's order), except post-gain levels, which
a loudness-normalised distance cannot hear; switches, choices and the rest keep the
plugin's defaults. It takes its place in the chain from the plugin's VST3 category (a
"Fx|Dynamics" plugin right after the built-in compressor, a "Fx|Reverb" one last), and the
JSON names its file (``{"effect": "ZamComp", "plugin": "/usr/lib/vst3/ZamComp.vst3", ...}``),
which ``patchpilot render --fx`` loads again.

One loaded instance serves every use of a plugin file in the process (loading some takes
seconds); calls are serialised on it, its parameters are set before each call and it is
reset, so a call never hears the one before. Mono plugins run on each channel, stereo ones
on the note doubled to two channels and mixed back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from patchpilot.fx.chain import EFFECT_KINDS, Control, EffectKind
from patchpilot.plugins.host import (
    ParameterInfo,
    PluginHolder,
    describe_parameters,
    find_plugin,
    load_plugin_by_name_or_path,
    quiet_plugin_output,
    save_state,
)

#: Settings of one plugin the chain search moves at most (the rest keep their defaults).
MAX_PLUGIN_CONTROLS = 12
#: Parameters left alone: output and make-up levels (the distance is loudness-normalised).
LEVEL_ONLY = re.compile(r"(^|_)(output|master|makeup|make_up)(_|$)")
#: Units searched on a log scale where the range is positive.
LOG_UNITS = {"hz", "khz", "ms", "s", "sec", "seconds"}
#: Where a plugin of each VST3 category goes: just after the built-in effect of that family.
CATEGORY_AFTER = {"distortion": "Distortion", "eq": "LowpassFilter", "filter": "LowpassFilter",
                  "dynamics": "Compressor", "modulation": "Chorus", "delay": "Delay", "reverb": "Reverb"}
#: Where a plugin of another category goes: after the dynamics, before the modulation.
DEFAULT_AFTER = "Compressor"


@dataclass(frozen=True, eq=False)
class PluginEffectKind(EffectKind):
    """A loaded VST3 effect's searchable controls, and how to run it."""

    path: str = ""
    category: str = ""
    channels: int = 1
    parameters: Mapping[str, ParameterInfo] = field(default_factory=dict, repr=False)
    holder: PluginHolder | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def slot(self) -> float:
        families = [part.lower() for part in self.category.split("|")]
        after = next((CATEGORY_AFTER[f] for f in families if f in CATEGORY_AFTER), DEFAULT_AFTER)
        return next(i for i, kind in enumerate(EFFECT_KINDS) if kind.name == after) + 0.5

    def source(self) -> dict[str, str]:
        return {"plugin": self.path}

    def neutral(self) -> dict[str, float]:
        """The plugin's defaults (where most effects leave a sound alone), rounded as the
        search writes settings."""
        out = {}
        for control in self.controls:
            info = self.parameters[control.name]
            out[control.name] = control.value(control.position(info.to_value(info.default)))
        return out

    def check(self, settings: Mapping[str, float]) -> None:
        for control in self.controls:
            value = settings.get(control.name)
            if value is not None and not control.low <= value <= control.high:
                raise ValueError(f"{control.name} {value:g} is outside {control.low:g}..{control.high:g}")

    def _set(self, plugin: Any, settings: Mapping[str, float]) -> None:
        for control in self.controls:
            info = self.parameters[control.name]
            value = settings.get(control.name, info.to_value(info.default))
            plugin.parameters[control.name].raw_value = float(np.clip(info.to_normalised(value), 0.0, 1.0))

    def process(self, settings: Mapping[str, float], audio: np.ndarray, sample_rate: int) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        block = audio[None, :] if audio.ndim == 1 else audio
        assert self.holder is not None and self.holder.plugin is not None
        plugin = self.holder.plugin
        with self.lock, quiet_plugin_output():
            self._set(plugin, settings)
            if self.channels == 1:
                out = np.stack([plugin.process(channel[None, :], sample_rate, reset=True)[0] for channel in block])
            else:
                doubled = np.repeat(block, 2, axis=0) if block.shape[0] == 1 else block
                out = plugin.process(doubled, sample_rate, reset=True)
                if block.shape[0] == 1:
                    out = out.mean(axis=0, keepdims=True)
        return out[0] if audio.ndim == 1 else out

    def state(self, settings: Mapping[str, float]) -> bytes:
        """A ``.vstpreset`` of the plugin at these settings (for a DAW's copy of it)."""
        assert self.holder is not None and self.holder.plugin is not None
        with self.lock:
            self._set(self.holder.plugin, settings)
            return save_state(self.holder.plugin, "preset")


def searched_controls(parameters: list[ParameterInfo]) -> tuple[Control, ...]:
    """The plugin parameters the chain search moves (see the module's docstring)."""
    controls = []
    for info in parameters:
        if info.kind != "continuous" or LEVEL_ONLY.search(info.name) or info.minimum is None or info.maximum is None:
            continue
        low, high = float(info.minimum), float(info.maximum)
        if not high > low:
            continue
        log = info.unit.lower() in LOG_UNITS and low > 0
        controls.append(Control(info.name, low, high, log=log, unit=info.unit))
    return tuple(controls[:MAX_PLUGIN_CONTROLS])


def plugin_effect_kind(reference: str | Path) -> PluginEffectKind:
    """The effect kind of a VST3 effect, by path or name; one per plugin file in a process.
    Raises PluginLoadError (one line) where it is missing, broken or an instrument."""
    return _load(str(find_plugin(reference).resolve()))


@lru_cache(maxsize=None)
def _load(path: str) -> PluginEffectKind:
    plugin = load_plugin_by_name_or_path(path, instrument=False)
    with quiet_plugin_output():
        automatable = {name for name, parameter in plugin.parameters.items() if parameter.is_automatable}
        category = str(getattr(plugin, "category", "") or "")
        name = str(plugin.name)
    parameters = [info for info in describe_parameters(plugin) if info.name in automatable]
    return PluginEffectKind(name, searched_controls(parameters), {}, path=path, category=category,
                            channels=_channels(plugin), parameters={info.name: info for info in parameters},
                            holder=PluginHolder(plugin))


def _channels(plugin: Any) -> int:
    """1 where the plugin takes a mono block, else 2."""
    with quiet_plugin_output():
        try:
            plugin.process(np.zeros((1, 64), np.float32), 44100, reset=True)
            return 1
        except (RuntimeError, ValueError):
            return 2
