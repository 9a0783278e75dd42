"""Checks on a Vital preset's JSON before any of it reaches vita.

vita trusts what it loads. Measured crashes (segfaults, on load or on the next render): more
than 64 modulations, more than 8 LFO shapes, an unknown wavetable component type, a control
far outside its range (a cutoff of 1e30); a wavetable keyframe at position 1e9 allocates
until ``std::bad_alloc``. A file that fails any check here is a :class:`PresetError` naming
the first problem; a file that passes them is then loaded and played once in a child process
(``vital.py``), which catches what no check foresaw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patchpilot.errors import PresetError

MAX_MODULATIONS = 64
#: LFO shapes a preset carries: one per LFO, lfo_1 to lfo_8.
MAX_LFOS = 8
#: One wavetable per oscillator.
MAX_WAVETABLES = 3
#: Vital's LineGenerator holds at most this many points (LFO shapes, line sources).
MAX_LINE_POINTS = 100
#: Wavetable keyframe positions are frames 0-256.
MAX_KEYFRAME_POSITION = 256
#: Wavetable component types vita's factory builds (any other name crashes it).
COMPONENT_TYPES = frozenset({
    "Wave Source", "Line Source", "Audio File Source", "Shepard Tone Source", "Phase Shift", "Wave Window",
    "Frequency Filter", "Slew Limiter", "Wave Folder", "Wave Warp",
})
#: Header fields vita reads as text (a number there makes it refuse the file).
HEADER_TEXT = ("author", "comments", "macro1", "macro2", "macro3", "macro4", "preset_name", "preset_style",
               "synth_version")
#: Settings that are not numbers.
STRUCTURED_SETTINGS = ("lfos", "modulations", "sample", "wavetables")
#: Any number nested in a wavetable, LFO shape or sample beyond this is corruption (a sample
#: length of 1e9 would be allocated).
_MAX_NESTED_NUMBER = 1e7
#: Slack on a control's range: values Vital wrote a rounding error past their end.
_RANGE_SLACK = 1e-4


@dataclass(frozen=True)
class VitaLimits:
    """What vita accepts: its controls' raw ranges and its modulation names."""

    controls: Mapping[str, tuple[float, float]]
    sources: frozenset[str]
    destinations: frozenset[str]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float
        return False


def check_preset(doc: object, limits: VitaLimits) -> dict[str, Any]:
    """The ``settings`` of a parsed ``.vital`` document, with every control clamped into its
    range (within a rounding slack), or a :class:`PresetError` saying what is wrong."""
    if not isinstance(doc, dict):
        raise PresetError(f"not a Vital preset: the file holds a JSON {type(doc).__name__}, not an object")
    settings = doc.get("settings")
    if not isinstance(settings, dict):
        raise PresetError("not a Vital preset: no \"settings\" object")
    for key in HEADER_TEXT:
        if key in doc and not isinstance(doc[key], str):
            raise PresetError(f"\"{key}\" is a {type(doc[key]).__name__}, not text")
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        if key in STRUCTURED_SETTINGS:
            checked[key] = value
            continue
        if not _number(value):
            raise PresetError(f"setting \"{key}\" is a {type(value).__name__}, not a number")
        if not _finite(value):
            raise PresetError(f"setting \"{key}\" is {value}, not a finite number")
        if key in limits.controls:
            low, high = limits.controls[key]
            slack = _RANGE_SLACK * (high - low)
            if not low - slack <= value <= high + slack:
                raise PresetError(f"setting \"{key}\" is {value:g}, outside Vital's range {low:g} to {high:g}")
            value = min(max(float(value), low), high)
        elif abs(value) > _MAX_NESTED_NUMBER:
            raise PresetError(f"setting \"{key}\" is {value:g}, far outside any Vital control's range")
        checked[key] = value
    _check_modulations(settings.get("modulations", []), limits)
    _check_list(settings, "lfos", MAX_LFOS, _check_line)
    _check_list(settings, "wavetables", MAX_WAVETABLES, _check_wavetable)
    sample = settings.get("sample", {})
    if not isinstance(sample, dict):
        raise PresetError("\"sample\" is not an object")
    _check_numbers(sample, "sample")
    return checked


def _check_modulations(modulations: object, limits: VitaLimits) -> None:
    if not isinstance(modulations, list):
        raise PresetError("\"modulations\" is not a list")
    if len(modulations) > MAX_MODULATIONS:
        raise PresetError(f"{len(modulations)} modulations; Vital has {MAX_MODULATIONS} slots")
    for number, modulation in enumerate(modulations, start=1):
        if not isinstance(modulation, dict):
            raise PresetError(f"modulation {number} is not an object")
        source, destination = modulation.get("source", ""), modulation.get("destination", "")
        if not isinstance(source, str) or not isinstance(destination, str):
            raise PresetError(f"modulation {number}: source and destination must be names")
        # vita connects unknown names and then crashes on the next render
        if source and source not in limits.sources:
            raise PresetError(f"modulation {number}: unknown source {source!r}")
        if destination and destination not in limits.destinations:
            raise PresetError(f"modulation {number}: unknown destination {destination!r}")
        _check_numbers(modulation, f"modulation {number}")


def _check_list(settings: dict[str, Any], key: str, most: int, check) -> None:
    items = settings.get(key, [])
    if not isinstance(items, list):
        raise PresetError(f"\"{key}\" is not a list")
    if len(items) > most:
        raise PresetError(f"{len(items)} entries in \"{key}\"; Vital has {most}")
    for number, item in enumerate(items, start=1):
        check(item, f"{key} {number}")


def _check_line(line: object, where: str) -> None:
    """An LFO shape or a line source: points (x, y pairs), powers, a point count."""
    if not isinstance(line, dict):
        raise PresetError(f"{where} is not an object")
    count, points, powers = line.get("num_points"), line.get("points"), line.get("powers")
    if not (_number(count) and _finite(count) and 1 <= count <= MAX_LINE_POINTS and count == int(count)):
        raise PresetError(f"{where}: the point count must be 1-{MAX_LINE_POINTS}, not {count!r}")
    if not (isinstance(points, list) and len(points) >= 2 * count and isinstance(powers, list)
            and len(powers) >= count and all(_number(x) for x in points + powers)):
        raise PresetError(f"{where}: points and powers do not match its {int(count)} points")
    _check_numbers(line, where)


def _check_wavetable(table: object, where: str) -> None:
    if not isinstance(table, dict):
        raise PresetError(f"{where} is not an object")
    groups = table.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise PresetError(f"{where}: \"groups\" is not a list of objects")
    for group in groups:
        components = group.get("components", [])
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise PresetError(f"{where}: \"components\" is not a list of objects")
        for component in components:
            kind = component.get("type")
            if not isinstance(kind, str) or kind not in COMPONENT_TYPES:
                raise PresetError(f"{where}: unknown wavetable component {kind!r}")
            keyframes = component.get("keyframes", [])
            if not isinstance(keyframes, list) or not all(isinstance(k, dict) for k in keyframes):
                raise PresetError(f"{where}: \"keyframes\" is not a list of objects")
            for keyframe in keyframes:
                position = keyframe.get("position", 0)
                if not (_number(position) and 0 <= position <= MAX_KEYFRAME_POSITION):
                    raise PresetError(f"{where}: keyframe position {position!r} is outside 0-{MAX_KEYFRAME_POSITION}")
                if "line" in keyframe:
                    _check_line(keyframe["line"], f"{where}, line source")
    _check_numbers(table, where)


def _check_numbers(value: object, where: str) -> None:
    """Every number nested in ``value`` finite and of a sane size."""
    if isinstance(value, dict):
        for item in value.values():
            _check_numbers(item, where)
    elif isinstance(value, list):
        for item in value:
            _check_numbers(item, where)
    elif _number(value) and not (_finite(value) and abs(value) <= _MAX_NESTED_NUMBER):
        raise PresetError(f"{where}: the number {value} is corrupt (not finite, or absurdly large)")
