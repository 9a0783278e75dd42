"""A VST3 effect the user names, as one more kind of the effect chain.

``match --fx-plugin ZamComp`` adds the plugin to the kinds the chain search tries: its
controls are the plugin's own automatable continuous parameters, in its names and units,
except post-gain levels (a loudness-normalised distance cannot hear them) and meters. Where
there are more than MAX_PLUGIN_CONTROLS, thresholds, gains, frequencies, times and mixes come
first, spread over the plugin's list (ZamGEQ31's 29 bands: twelve across its range), and the
rest are named in a warning. Switches, choices and the rest keep the plugin's defaults; a
plugin with no such setting is tried at its defaults. It takes its place in the chain from
the plugin's VST3 category (a "Fx|Dynamics" plugin right after the built-in compressor, a
"Fx|Reverb" one last), and the
JSON names its file (``{"effect": "ZamComp", "plugin": "/usr/lib/vst3/ZamComp.vst3", ...}``),
which ``patchpilot render --fx`` loads again.

One loaded instance serves every use of a plugin file in the process (loading some takes
seconds); calls are serialised on it, its parameters are set before each call and it is
reset, so a call never hears the one before. Mono plugins run on each channel, stereo ones
on the note doubled to two channels and mixed back.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from patchpilot.errors import PatchPilotWarning, SynthError
from patchpilot.fx.chain import KINDS_BY_NAME, Control, EffectKind
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
#: Parameters left alone: output and make-up levels (the distance is loudness-normalised)
#: and meters some plugins report as automatable.
LEFT_ALONE = re.compile(r"(^|_)(output|master|makeup|make_up|meter|gain_reduction)(_|$)")
#: Settings searched first where a plugin has more than MAX_PLUGIN_CONTROLS.
FIRST_SEARCHED = re.compile(r"thresh|ratio|drive|gain|boost|cut|freq|hz|time|ms|mix|wet|feedback|room|size|decay|"
                            r"depth|rate|tone|damp")
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
        """Just after the built-in effect of the plugin's VST3 category (CATEGORY_AFTER)."""
        families = [part.lower() for part in self.category.split("|")]
        after = next((CATEGORY_AFTER[f] for f in families if f in CATEGORY_AFTER), DEFAULT_AFTER)
        return KINDS_BY_NAME[after.lower()].slot + 0.5

    def source(self) -> dict[str, str]:
        """The plugin's file, which the JSON names."""
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
        """Raise ValueError for a setting outside its control's range."""
        for control in self.controls:
            value = settings.get(control.name)
            if value is not None and not control.low <= value <= control.high:
                raise ValueError(f"{control.name} {value:g} is outside {control.low:g}..{control.high:g}")

    def _set(self, plugin: Any, settings: Mapping[str, float]) -> None:
        """Every searched control at its setting, or at the plugin's default."""
        for control in self.controls:
            info = self.parameters[control.name]
            value = settings.get(control.name, info.to_value(info.default))
            plugin.parameters[control.name].raw_value = float(np.clip(info.to_normalised(value), 0.0, 1.0))

    def _plugin(self) -> Any:
        if self.holder is None or self.holder.plugin is None:
            raise SynthError(f"{self.name}: the plugin was closed")
        return self.holder.plugin

    def process(self, settings: Mapping[str, float], audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The plugin over ``audio`` at ``settings`` (see the module's docstring for channels);
        a plugin that fails is one SynthError line."""
        audio = np.asarray(audio, dtype=np.float32)
        block = audio[None, :] if audio.ndim == 1 else audio
        plugin = self._plugin()
        with self.lock, quiet_plugin_output():
            try:
                self._set(plugin, settings)
                if self.channels == 1:
                    out = np.stack([plugin.process(channel[None, :], sample_rate, reset=True)[0] for channel in block])
                else:
                    doubled = np.repeat(block, 2, axis=0) if block.shape[0] == 1 else block
                    out = plugin.process(doubled, sample_rate, reset=True)
                    if block.shape[0] == 1:
                        out = out.mean(axis=0, keepdims=True)
            except (RuntimeError, ValueError) as error:
                raise SynthError(f"{self.name} ({self.path}) failed to process: {' '.join(str(error).split())}") from None
        return out[0] if audio.ndim == 1 else out

    def state(self, settings: Mapping[str, float]) -> bytes:
        """A ``.vstpreset`` of the plugin at these settings (for a DAW's copy of it)."""
        plugin = self._plugin()
        with self.lock:
            self._set(plugin, settings)
            return save_state(plugin, "preset")


def searchable_controls(parameters: list[ParameterInfo]) -> list[Control]:
    """Every plugin parameter the chain search could move (see the module's docstring):
    continuous, with a finite range and a panel value that maps back to the plugin's."""
    controls = []
    for info in parameters:
        if info.kind != "continuous" or LEFT_ALONE.search(info.name) or info.minimum is None or info.maximum is None:
            continue
        low, high = float(info.minimum), float(info.maximum)
        if not (math.isfinite(low) and math.isfinite(high) and high > low and info.invertible):
            continue
        log = info.unit.lower() in LOG_UNITS and low > 0
        controls.append(Control(info.name, low, high, log=log, unit=info.unit))
    return controls


def chosen_controls(controls: list[Control], limit: int = MAX_PLUGIN_CONTROLS) -> list[Control]:
    """At most ``limit`` of them, in the plugin's order: those FIRST_SEARCHED names first,
    each group taken evenly across the list where it has more than the room left."""
    first = [c for c in controls if FIRST_SEARCHED.search(c.name)]
    rest = [c for c in controls if c not in first]
    taken = _evenly(first, limit)
    taken += _evenly(rest, limit - len(taken))
    return [c for c in controls if c in taken]


def _evenly(items: list[Control], count: int) -> list[Control]:
    if count <= 0:
        return []
    if len(items) <= count:
        return list(items)
    return [items[int(i * len(items) / count)] for i in range(count)]


def plugin_effect_kind(reference: str | Path) -> PluginEffectKind:
    """The effect kind of a VST3 effect, by path or name; one per plugin file in a process.
    Raises PluginLoadError (one line) where it is missing, broken or an instrument."""
    path = str(find_plugin(reference).resolve())
    with _LOADING:
        if path not in _KINDS:
            _KINDS[path] = _load(path)
        return _KINDS[path]


#: The kinds loaded in this process, by plugin file, and the lock that loads each once.
_KINDS: dict[str, PluginEffectKind] = {}
_LOADING = threading.Lock()


def _load(path: str) -> PluginEffectKind:
    plugin = load_plugin_by_name_or_path(path, instrument=False)
    with quiet_plugin_output():
        automatable = {name for name, parameter in plugin.parameters.items() if parameter.is_automatable}
        category = str(getattr(plugin, "category", "") or "")
        name = str(plugin.name)
    parameters = [info for info in describe_parameters(plugin) if info.name in automatable]
    searchable = searchable_controls(parameters)
    controls = chosen_controls(searchable)
    if len(controls) < len(searchable):
        left = ", ".join(c.name for c in searchable if c not in controls)
        warnings.warn(f"{name}: the effect-chain search moves {len(controls)} of its {len(searchable)} settings; "
                      f"these stay at the plugin's defaults: {left}", PatchPilotWarning, stacklevel=2)
    return PluginEffectKind(name, tuple(controls), {}, path=path, category=category,
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
