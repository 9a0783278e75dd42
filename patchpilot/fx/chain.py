"""An effect chain after the synth: what pedalboard effects an answer adds, in order.

Every answer may carry one (``Match.fx``): the synth's preset makes the dry sound, the chain
puts it in a room, a delay, a chorus, a compressor, a drive or an EQ, as the input was
recorded. Settings are in each effect's own units (pedalboard's argument names), so the JSON
a user reads is the JSON ``patchpilot render --fx`` loads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpilot.errors import UsageError


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


@dataclass(frozen=True)
class EffectKind:
    """An effect the chain can hold: pedalboard's class, the controls searched and the
    arguments held fixed."""

    name: str
    controls: tuple[Control, ...]
    fixed: Mapping[str, float]

    def make(self, settings: Mapping[str, float]):  # noqa: ANN201 - a pedalboard.Plugin
        import pedalboard

        return getattr(pedalboard, self.name)(**{**self.fixed, **settings})


#: The effects, in the order a chain applies them (drive and tone before dynamics, then
#: modulation, echoes and the room last, as a producer's insert chain runs).
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
                          Control("wet_level", 0.03, 0.8)), {"dry_level": 1.0, "width": 1.0}),
)
KINDS_BY_NAME = {kind.name.lower(): kind for kind in EFFECT_KINDS}


@dataclass(frozen=True)
class Effect:
    """One effect of a chain with its settings (the searched controls only)."""

    kind: str
    settings: tuple[tuple[str, float], ...]

    @property
    def spec(self) -> EffectKind:
        return KINDS_BY_NAME[self.kind.lower()]

    def to_dict(self) -> dict:
        return {"effect": self.spec.name, **{name: round(value, SETTING_DECIMALS) for name, value in self.settings}}


@dataclass(frozen=True)
class FxChain:
    """Effects applied in order after the synth; empty when the dry sound matched best."""

    effects: tuple[Effect, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.effects)

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The chain over mono (or ``(channels, frames)``) audio; same length, float32."""
        if not self.effects:
            return np.asarray(audio, dtype=np.float32)
        import pedalboard

        board = pedalboard.Pedalboard([e.spec.make(dict(e.settings)) for e in self.effects])
        out = board(np.asarray(audio, dtype=np.float32), sample_rate)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def with_effect(self, effect: Effect) -> FxChain:
        """The chain with ``effect`` put in its place in the standard order (replacing one
        of the same kind)."""
        order = [kind.name.lower() for kind in EFFECT_KINDS]
        kept = [e for e in self.effects if e.kind.lower() != effect.kind.lower()]
        return FxChain(tuple(sorted([*kept, effect], key=lambda e: order.index(e.kind.lower()))))

    def to_list(self) -> list[dict]:
        return [effect.to_dict() for effect in self.effects]

    @classmethod
    def from_list(cls, items: Sequence[Mapping], source: str = "the effect chain") -> FxChain:
        """A chain from its JSON form; unknown effects and out-of-range settings are one
        clear error."""
        effects = []
        if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
            raise UsageError(f"{source}: expected a list of effects")
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("effect"), str):
                raise UsageError(f"{source}: each effect needs an \"effect\" name")
            kind = KINDS_BY_NAME.get(item["effect"].lower())
            if kind is None:
                known = ", ".join(k.name for k in EFFECT_KINDS)
                raise UsageError(f"{source}: unknown effect {item['effect']!r} (known: {known})")
            settings = []
            for control in kind.controls:
                value = item.get(control.name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise UsageError(f"{source}: {kind.name} {control.name} must be a number")
                settings.append((control.name, float(value)))
            extra = set(item) - {"effect"} - {c.name for c in kind.controls}
            if extra:
                raise UsageError(f"{source}: {kind.name} has no setting {sorted(extra)[0]!r}")
            effect = Effect(kind.name, tuple(settings))
            try:
                effect.spec.make(dict(effect.settings))
            except (ValueError, TypeError) as exc:
                raise UsageError(f"{source}: {kind.name}: {exc}") from None
            effects.append(effect)
        return cls(tuple(effects))

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

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"fx": self.to_list()}, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FxChain:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read the effect chain ({exc})") from None
        items = data.get("fx") if isinstance(data, Mapping) else data
        return cls.from_list(items if items is not None else [], str(path))


def _format(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
