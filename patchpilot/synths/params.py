"""Parameter spaces: what a matcher or optimiser may change on a synth.

Every parameter has a *raw* value (what the synth engine takes) and a *native* value (what a
producer reads on the synth's panel: Hz, seconds, dB, a label). Preset files and all output
use native values; engines, the sampler and the optimiser use raw ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Union


from patchpilot.errors import PresetError

ParamKind = Literal["continuous", "choice", "switch"]
NativeValue = Union[float, int, str]

#: Display groups, in the order tables print them.
GROUPS = ("oscillator", "filter", "envelope", "modulation", "fx", "global")

SWITCH_LABELS = ("Off", "On")


def _identity(x: float) -> float:
    return x


@dataclass(frozen=True)
class Param:
    """One synth parameter.

    ``low``/``high``/``default`` are raw values. ``musical`` narrows the raw range to where
    the sampler and optimiser may go (an unbounded optimiser "cheats": two-octave detune,
    100 % reverb). ``to_native``/``from_native`` convert raw values to panel units.
    """

    name: str
    kind: ParamKind
    group: str
    low: float
    high: float
    default: float
    unit: str = ""
    options: tuple[str, ...] = ()
    integer: bool = False
    musical: tuple[float, float] | None = None
    to_native: Callable[[float], float] = field(default=_identity, repr=False, compare=False)
    from_native: Callable[[float], float] = field(default=_identity, repr=False, compare=False)
    #: Digits kept when printing native values.
    digits: int = 3
    description: str = ""

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"{self.name}: unknown group {self.group!r}")
        if self.kind == "switch" and not self.options:
            object.__setattr__(self, "options", SWITCH_LABELS)

    # ---- raw values -------------------------------------------------------------------
    @property
    def is_discrete(self) -> bool:
        return self.kind != "continuous" or self.integer

    @property
    def search_range(self) -> tuple[float, float]:
        """Raw range the sampler and the optimiser use."""
        return self.musical if self.musical is not None else (self.low, self.high)

    def clip(self, raw: float) -> float:
        """Clamp to the raw range and round discrete parameters (engines do neither)."""
        value = min(max(float(raw), self.low), self.high)
        return float(round(value)) if self.is_discrete else value

    def to_unit(self, raw: float) -> float:
        """Position of ``raw`` inside the musical range, 0..1 (clamped)."""
        lo, hi = self.search_range
        if hi <= lo:
            return 0.0
        return min(max((raw - lo) / (hi - lo), 0.0), 1.0)

    def from_unit(self, unit: float) -> float:
        lo, hi = self.search_range
        return self.clip(lo + min(max(unit, 0.0), 1.0) * (hi - lo))

    # ---- native values ----------------------------------------------------------------
    def native(self, raw: float) -> NativeValue:
        """Raw value -> what the synth's panel shows (a number in ``unit`` or a label)."""
        raw = self.clip(raw)
        if self.kind in ("choice", "switch"):
            index = int(raw - self.low)
            if 0 <= index < len(self.options):
                return self.options[index]
            return int(raw)
        value = self.to_native(raw)
        if self.integer and self.to_native is _identity:
            return int(round(value))
        return _round_significant(value, self.digits)

    def parse(self, value: object) -> float:
        """Native value (number in ``unit``, label, or bool) -> clipped raw value.

        Raises :class:`PresetError` for unknown labels and values outside the range.
        """
        if self.kind in ("choice", "switch"):
            raw = self._parse_discrete(value)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PresetError(f"{self.name}: expected a number in {self.unit or 'raw units'}, got {value!r}")
            raw = self.from_native(float(value))
        # printed values are rounded (13290 Hz for 13289.7): accept what rounding can add
        tolerance = 1e-3 * max(1.0, abs(self.high - self.low))
        if not (self.low - tolerance <= raw <= self.high + tolerance) or math.isnan(raw):
            raise PresetError(
                f"{self.name}={value!r} is outside its range "
                f"{self.native(self.low)}..{self.native(self.high)} {self.unit}".rstrip()
            )
        return self.clip(raw)

    def _parse_discrete(self, value: object) -> float:
        if isinstance(value, bool):
            if self.kind != "switch":
                raise PresetError(f"{self.name}: expected one of {list(self.options)}, got {value!r}")
            return float(value)
        if isinstance(value, str):
            wanted = value.strip().lower()
            for index, label in enumerate(self.options):
                if label.lower() == wanted:
                    return self.low + index
            raise PresetError(f"{self.name}: unknown option {value!r}; expected one of {list(self.options)}")
        if isinstance(value, (int, float)) and float(value).is_integer():
            return float(value)
        raise PresetError(f"{self.name}: expected one of {list(self.options)}, got {value!r}")


def _round_significant(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return float(value)
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return round(value, decimals)


class ParamSpace(Mapping[str, Param]):
    """An ordered, read-only collection of parameters with vector conversions."""

    def __init__(self, params: Iterable[Param]) -> None:
        self._params: dict[str, Param] = {}
        for param in params:
            if param.name in self._params:
                raise ValueError(f"duplicate parameter {param.name}")
            self._params[param.name] = param

    def __getitem__(self, name: str) -> Param:
        try:
            return self._params[name]
        except KeyError:
            raise PresetError(f"unknown parameter {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def defaults(self) -> dict[str, float]:
        return {name: p.default for name, p in self._params.items()}

    def names(self, kind: ParamKind | None = None) -> list[str]:
        return [n for n, p in self._params.items() if kind is None or p.kind == kind]

    def complete(self, values: Mapping[str, float]) -> dict[str, float]:
        """All parameters: defaults overlaid with ``values`` (clipped). Unknown names raise."""
        full = self.defaults()
        for name, raw in values.items():
            full[name] = self[name].clip(raw)
        return full

    def parse_native(self, natives: Mapping[str, object]) -> dict[str, float]:
        """Native values from a preset file -> raw values."""
        return {name: self[name].parse(value) for name, value in natives.items()}

    def to_native(self, values: Mapping[str, float]) -> dict[str, NativeValue]:
        return {name: self[name].native(raw) for name, raw in values.items()}


