"""An effect chain after the synth: what pedalboard effects an answer adds, in order.

Every answer may carry one (``Match.fx``): the synth's preset makes the dry sound, the chain
puts it in a room, a delay, a chorus, a compressor, a drive or an EQ, as the input was
recorded. Settings are in each effect's own units (pedalboard's argument names), so the JSON
a user reads is the JSON ``patchpilot render --fx`` loads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pedalboard import Plugin

#: Decimals an effect setting is searched, stored and written with.
SETTING_DECIMALS = 4


@dataclass(frozen=True)
class Control:
    """One searched setting of an effect: its range where the search may go, and whether
    it is searched on a log scale (frequencies, times)."""

    name: str
    low: float
    high: float
    log: bool = False
    unit: str = ""

    def value(self, unit_position: float) -> float:
        """The setting at a position of the range, rounded as the JSON writes it (so the
        chain a user loads is the chain that was scored)."""
        u = float(np.clip(unit_position, 0.0, 1.0))
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return round(float(value), SETTING_DECIMALS)

    def position(self, value: float) -> float:
        if self.log:
            return float(np.clip((math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low)), 0, 1))
        return float(np.clip((value - self.low) / (self.high - self.low), 0, 1))


@dataclass(frozen=True, eq=False)
class EffectKind:
    """An effect the chain can hold: pedalboard's class, the controls searched and the
    arguments held fixed. Kinds compare by identity: the built-in ones are the objects of
    EFFECT_KINDS, a VST3 plugin's is made once per plugin file (``fx/plugin.py``)."""

    name: str
    controls: tuple[Control, ...]
    fixed: Mapping[str, float]

    @property
    def slot(self) -> float:
        """Where the effect sits in a chain (chains run in ascending slots)."""
        return float(_BUILTIN_SLOTS[self.name])

    def source(self) -> dict[str, str]:
        """What the JSON needs besides the name to find the effect again (built-ins: nothing)."""
        return {}

    def make(self, settings: Mapping[str, float]) -> Plugin:
        import pedalboard

        return getattr(pedalboard, self.name)(**{**self.fixed, **settings})

    def neutral(self) -> dict[str, float]:
        """Settings that leave the sound as it is, where the effect has them (a plugin's
        defaults); empty for the built-in effects, which are off until added."""
        return {}

    def state(self, settings: Mapping[str, float]) -> bytes | None:
        """The effect at these settings as a file its host loads (a VST3 plugin's
        ``.vstpreset``); None for the built-in effects, which the ``.fx.json`` holds."""
        return None

    def check(self, settings: Mapping[str, float]) -> None:
        """Raise ValueError or TypeError where the effect refuses these settings."""
        self.make(settings)

    def process(self, settings: Mapping[str, float], audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The effect over ``audio`` (mono or ``(channels, frames)``), from a reset state."""
        return self.make(settings)(audio, sample_rate)


#: The effects, in the order a chain applies them (drive and tone before dynamics, then
#: modulation, echoes and the room last, as a producer's insert chain runs). Between its
#: searched controls and its fixed arguments, each names every argument of its pedalboard
#: class, so that the JSON rebuilds the chain in plain pedalboard (whose defaults differ:
#: Reverb's dry_level is 0.4 there, 1.0 here).
EFFECT_KINDS: tuple[EffectKind, ...] = (
    EffectKind("Distortion", (Control("drive_db", 2.0, 36.0, unit="dB"),), {}),
    EffectKind("HighpassFilter", (Control("cutoff_frequency_hz", 40.0, 1500.0, log=True, unit="Hz"),), {}),
    EffectKind("LowpassFilter", (Control("cutoff_frequency_hz", 600.0, 16000.0, log=True, unit="Hz"),), {}),
    EffectKind("Compressor", (Control("threshold_db", -40.0, -6.0, unit="dB"), Control("ratio", 1.5, 12.0, log=True),
                              Control("attack_ms", 0.5, 60.0, log=True, unit="ms"),
                              Control("release_ms", 20.0, 400.0, log=True, unit="ms")), {}),
    EffectKind("Chorus", (Control("rate_hz", 0.2, 4.0, log=True, unit="Hz"), Control("depth", 0.05, 0.7),
                          Control("mix", 0.15, 0.7)), {"centre_delay_ms": 7.0, "feedback": 0.0}),
    EffectKind("Delay", (Control("delay_seconds", 0.06, 0.7, log=True, unit="s"), Control("feedback", 0.0, 0.7),
                         Control("mix", 0.05, 0.5)), {}),
    EffectKind("Reverb", (Control("room_size", 0.05, 0.98), Control("damping", 0.0, 1.0),
                          Control("wet_level", 0.03, 0.8)), {"dry_level": 1.0, "width": 1.0, "freeze_mode": 0.0}),
)
KINDS_BY_NAME = {kind.name.lower(): kind for kind in EFFECT_KINDS}
_BUILTIN_SLOTS = {kind.name: i for i, kind in enumerate(EFFECT_KINDS)}


@dataclass(frozen=True)
class Effect:
    """One effect of a chain with its settings (the searched controls only). ``spec`` may
    be given as a built-in effect's name (``Effect("Reverb", ...)``)."""

    spec: EffectKind
    settings: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if isinstance(self.spec, str):
            object.__setattr__(self, "spec", KINDS_BY_NAME[self.spec.lower()])

    @property
    def kind(self) -> str:
        """The effect's name (pedalboard's class, or the plugin's own name)."""
        return self.spec.name

    def to_dict(self) -> dict:
        """The effect as JSON: its name, where a plugin effect comes from, and every argument
        (the fixed ones too): ``pedalboard.<effect>(**the rest)`` is this effect."""
        return {"effect": self.spec.name, **self.spec.source(), **self.spec.fixed,
                **{name: round(value, SETTING_DECIMALS) for name, value in self.settings}}

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """This effect alone over ``audio``."""
        return self.spec.process(dict(self.settings), audio, sample_rate)


@dataclass(frozen=True)
class FxChain:
    """Effects applied in order after the synth; empty when the dry sound matched best."""

    effects: tuple[Effect, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.effects)

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The chain over mono (or ``(channels, frames)``) audio; same length, float32."""
        out = np.asarray(audio, dtype=np.float32)
        for effect in self.effects:
            out = effect.apply(out, sample_rate)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def heard_at(self, native: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
        """The chain over a render at NATIVE_SAMPLE_RATE_HZ (effects run at the rate the user
        hears: a reverb at 22.05 kHz sounds different), then at ``sample_rate``."""
        from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, from_native_rate

        wet = self.apply(native, NATIVE_SAMPLE_RATE_HZ) if self.effects else native
        return from_native_rate(wet, sample_rate, seconds)

    def with_effect(self, effect: Effect) -> FxChain:
        """The chain with ``effect`` put in its place by its kind's slot (replacing one of
        the same kind)."""
        kept = [e for e in self.effects if e.spec is not effect.spec]
        return FxChain(tuple(sorted([*kept, effect], key=lambda e: (e.spec.slot, e.kind, e.spec.source().get("plugin", "")))))

    def to_list(self) -> list[dict]:
        return [effect.to_dict() for effect in self.effects]

    def describe(self) -> str:
        """One line for the table: ``Reverb (room_size 0.6, ...) -> Delay (...)``."""
        if not self.effects:
            return "none"
        parts = []
        for effect in self.effects:
            units = {c.name: c.unit for c in effect.spec.controls}
            shown = ", ".join(f"{name} {_format(value)}{(' ' + units[name]) if units.get(name) else ''}"
                              for name, value in effect.settings)
            parts.append(f"{effect.spec.name} ({shown})")
        return " -> ".join(parts)

    def to_json(self) -> str:
        """The ``.fx.json`` file's text (``fx/files.py`` reads it back)."""
        return json.dumps({"fx": self.to_list()}, indent=2) + "\n"

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

def _format(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
