"""What is wrong with a Vital preset that vita refused or crashed on: the explanation of a
refusal, never the refusal itself.

The synth decides what imports (``trial.py``): a file is imported when vita loads it
and plays a finite, audible note in a child process. A field vita ignores (``custom_warps``
and ``random_values`` of Vital 1.5, a random seed of 2**31 in a wavetable, a setting from a
newer version) is kept and written back on export. When the trial refuses a file, the first
problem found here names the likely cause in the error. Measured crashes: more than 64
modulations, more than 8 LFO shapes or 3 wavetables, an unknown wavetable component type, a
control far outside its range (a cutoff of 1e30); a wavetable keyframe at position 1e9 or a
sample of length 1e12 allocates until ``std::bad_alloc``. Measured refusals: a setting of the
wrong type, a header field that is not text, no ``sample``, NaN or infinity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
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
#: Settings that are not numbers and that vita reads.
STRUCTURED_SETTINGS = ("lfos", "modulations", "sample", "wavetables")
#: A sample longer than this (in samples) is corruption: vita allocates it.
_MAX_SAMPLE_LENGTH = 1e7
#: Slack on a control's range: values Vital wrote a rounding error past their end.
_RANGE_SLACK = 1e-4


@dataclass(frozen=True)
class VitaLimits:
    """What vita accepts: its controls' raw ranges and its modulation names."""

    controls: Mapping[str, tuple[float, float]]
    sources: frozenset[str]
    destinations: frozenset[str]


def number(value: object) -> float | None:
    """A JSON number as a float (an integer too large for one is +-inf); None for anything
    else, booleans included."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def parse_document(text: str) -> dict[str, Any]:
    """A ``.vital`` file's JSON object with its ``settings`` object, or a
    :class:`PresetError`: no JSON, or JSON that is no preset at all (vita refuses both)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PresetError(f"not a Vital preset: broken JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PresetError(f"not a Vital preset: the file holds a JSON {type(doc).__name__}, not an object")
    if not isinstance(doc.get("settings"), dict):
        raise PresetError("not a Vital preset: no \"settings\" object")
    return doc


def likely_cause(doc: dict[str, Any], limits: VitaLimits) -> str | None:
    """The first thing in a parsed preset known to make vita refuse it or crash, or None."""
    try:
        _check(doc, limits)
    except PresetError as problem:
        return str(problem)
    return None


def _check(doc: dict[str, Any], limits: VitaLimits) -> None:
    settings = doc["settings"]
    for key in HEADER_TEXT:
        if key in doc and not isinstance(doc[key], str):
            raise PresetError(f"\"{key}\" is a {type(doc[key]).__name__}, not text")
    for key, value in settings.items():
        if key not in limits.controls:
            continue  # vita ignores what it does not know
        as_float = number(value)
        if as_float is None:
            raise PresetError(f"setting \"{key}\" is a {type(value).__name__}, not a number")
        if not math.isfinite(as_float):
            raise PresetError(f"setting \"{key}\" is {value}, not a finite number")
        low, high = limits.controls[key]
        slack = _RANGE_SLACK * (high - low)
        if not low - slack <= as_float <= high + slack:
            raise PresetError(f"setting \"{key}\" is {as_float:g}, outside Vital's range {low:g} to {high:g}")
    if "sample" not in settings:
        raise PresetError("no \"sample\" in its settings")
    _check_modulations(settings.get("modulations", []), limits)
    _check_list(settings, "lfos", MAX_LFOS, _check_line)
    _check_list(settings, "wavetables", MAX_WAVETABLES, _check_wavetable)
    sample = settings["sample"]
    if not isinstance(sample, dict):
        raise PresetError("\"sample\" is not an object")
    length = number(sample.get("length", 0))
    if length is None or not 0 <= length <= _MAX_SAMPLE_LENGTH:
        raise PresetError(f"its sample length {sample.get('length')!r} is corrupt")
    _check_finite(doc, "the file")


def _check_modulations(modulations: object, limits: VitaLimits) -> None:
    if not isinstance(modulations, list):
        raise PresetError("\"modulations\" is not a list")
    if len(modulations) > MAX_MODULATIONS:
        raise PresetError(f"{len(modulations)} modulations; Vital has {MAX_MODULATIONS} slots")
    for slot, modulation in enumerate(modulations, start=1):
        if not isinstance(modulation, dict):
            raise PresetError(f"modulation {slot} is not an object")
        source, destination = modulation.get("source", ""), modulation.get("destination", "")
        if not isinstance(source, str) or not isinstance(destination, str):
            raise PresetError(f"modulation {slot}: source and destination must be names")
        if source and source not in limits.sources:
            raise PresetError(f"modulation {slot}: unknown source {source!r}")
        if destination and destination not in limits.destinations:
            raise PresetError(f"modulation {slot}: unknown destination {destination!r}")


def _check_list(settings: dict[str, Any], key: str, most: int, check: Callable[[object, str], None]) -> None:
    items = settings.get(key, [])
    if not isinstance(items, list):
        raise PresetError(f"\"{key}\" is not a list")
    if len(items) > most:
        raise PresetError(f"{len(items)} entries in \"{key}\"; Vital has {most}")
    for position, item in enumerate(items, start=1):
        check(item, f"{key} {position}")


def _check_line(line: object, where: str) -> None:
    """An LFO shape or a line source: points (x, y pairs), powers, a point count."""
    if not isinstance(line, dict):
        raise PresetError(f"{where} is not an object")
    count, points, powers = number(line.get("num_points")), line.get("points"), line.get("powers")
    if count is None or not (1 <= count <= MAX_LINE_POINTS and count == int(count)):
        raise PresetError(f"{where}: the point count must be 1-{MAX_LINE_POINTS}, not {line.get('num_points')!r}")
    if not (isinstance(points, list) and len(points) >= 2 * count and isinstance(powers, list)
            and len(powers) >= count and all(number(x) is not None for x in points + powers)):
        raise PresetError(f"{where}: points and powers do not match its {int(count)} points")


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
                position = number(keyframe.get("position", 0))
                if position is None or not 0 <= position <= MAX_KEYFRAME_POSITION:
                    raise PresetError(f"{where}: keyframe position {keyframe.get('position')!r} is outside "
                                      f"0-{MAX_KEYFRAME_POSITION}")
                if "line" in keyframe:
                    _check_line(keyframe["line"], f"{where}, line source")


def _check_finite(value: object, where: str) -> None:
    """No NaN or infinity anywhere (vita's JSON reader refuses them)."""
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item, where)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise PresetError(f"{where} holds the number {value}, which is not finite")
