"""The ``.vital`` document: reading a preset's JSON into a base state (the template's or an
imported file's, every field kept) and writing a preset's JSON back from one.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from patchpilot.synths.base import Preset
from patchpilot.synths.vital.binding import import_vita, vita_limits
from patchpilot.synths.vital.checks import STRUCTURED_SETTINGS, number, parse_document
from patchpilot.synths.vital.controls import LFOS, MOD_ROUTES, OSCILLATORS, TEMPLATE_PINS
from patchpilot.synths.vital.tables import (
    LFO_SHAPE_OPTIONS,
    PRESET_SHAPE,
    PRESET_TABLE,
    WAVETABLE_OPTIONS,
    lfo_shape,
    noise_sample_json,
    wavetable_json,
)


@dataclass(frozen=True)
class BaseState:
    """A parsed preset JSON that curated values are applied to."""

    key: str
    header: dict[str, Any]
    numeric: dict[str, float]
    lfos_json: tuple[str, ...]
    wavetables_json: tuple[str, ...]
    sample_json: str
    modulations: tuple[tuple[str, str], ...]
    #: Each of the 64 modulation slots as the file wrote it (a remap curve included), or "".
    modulations_json: tuple[str, ...]
    #: 1-based modulation slot of each MOD_ROUTES entry
    route_slots: tuple[int, ...]
    #: Slots empty in the file that routings took. An imported file writes them only while
    #: their amount is not 0: in Vital a connection changes the sound even at amount 0 (an
    #: envelope wired to an audio-rate destination runs at audio rate everywhere).
    added_slots: frozenset[int] = frozenset()
    #: The file's other settings (Vital 1.5's custom warps and random seeds, fields of newer
    #: versions), as JSON members written back as they were; "" when there are none.
    extra_json: str = ""


def _parse_base(text: str, key: str) -> BaseState:
    """A preset's JSON as a base state. Lenient: vita has played the file (imports are tried
    first), so what it holds is kept; only numbers are read."""
    doc = parse_document(text)
    settings = doc["settings"]
    controls = vita_limits().controls
    numeric: dict[str, float] = {}
    extra: dict[str, Any] = {}
    for name, value in settings.items():
        if name in STRUCTURED_SETTINGS:
            continue
        as_float = number(value)
        if as_float is not None and math.isfinite(as_float):
            numeric[name] = as_float
        elif as_float is not None and name in controls:  # an integer too large for a float
            numeric[name] = min(max(as_float, controls[name][0]), controls[name][1])
        else:
            extra[name] = value
    numeric.update({k: v for k, v in TEMPLATE_PINS.items() if k.startswith("osc_")})
    entries = settings.get("modulations", [])
    entries = [e if isinstance(e, dict) else {} for e in (entries if isinstance(entries, list) else [])][:64]
    mods = [(_text(e.get("source")), _text(e.get("destination"))) for e in entries]
    mods += [("", "")] * (64 - len(mods))
    original = set(mods)
    written = [json.dumps(e) for e in entries] + [""] * (64 - len(entries))
    slots = []
    for route in MOD_ROUTES:
        if route in mods:
            slots.append(mods.index(route) + 1)
        elif ("", "") in mods:
            index = mods.index(("", ""))
            mods[index] = route
            written[index] = ""
            slots.append(index + 1)
        else:
            slots.append(0)  # all 64 slots taken: this routing is unavailable for this preset
    sample = settings.get("sample")
    header = {k: v for k, v in doc.items() if k != "settings"}
    return BaseState(
        key=key,
        header=header,
        numeric=numeric,
        lfos_json=_padded(_list(settings.get("lfos")), "lfos"),
        wavetables_json=_padded(_list(settings.get("wavetables")), "wavetables"),
        sample_json=json.dumps(sample) if sample is not None else noise_sample_json(),
        modulations=tuple(mods),
        modulations_json=tuple(written),
        route_slots=tuple(slots),
        added_slots=frozenset(slot for slot, route in zip(slots, MOD_ROUTES) if slot and not written[slot - 1]
                              and route not in original),
        extra_json=json.dumps(extra)[1:-1],
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _padded(items: list, key: str) -> tuple[str, ...]:
    """A file's LFO shapes or wavetables as JSON, those it leaves out taken from vita's init
    patch: what a fresh Vital plays for them (a reused voice would keep the last preset's)."""
    defaults = _init_settings()[key]
    return tuple(json.dumps(x) for x in list(items) + defaults[len(items):])


@lru_cache(maxsize=1)
def _init_settings() -> dict[str, Any]:
    return json.loads(import_vita().Synth().to_json())["settings"]


_BASE_CACHE: dict[str, BaseState] = {}
_BASE_LOCK = threading.Lock()


def base_for(text: str) -> BaseState:
    key = hashlib.sha1(text.encode()).hexdigest()[:16]
    with _BASE_LOCK:
        base = _BASE_CACHE.get(key)
        if base is None:
            if len(_BASE_CACHE) > 256:
                _BASE_CACHE.clear()
            base = _BASE_CACHE[key] = _parse_base(text, key)
    return base



def template_base(synth: Any) -> BaseState:
    """Our template, the base state of our own presets: a ``vita.Synth``'s init patch with the
    pinned controls, a fixed noise sample and the name Init."""
    template_doc = json.loads(synth.to_json())
    template_doc["settings"].update(TEMPLATE_PINS)
    template_doc["settings"]["sample"] = json.loads(noise_sample_json())
    template_doc["preset_name"] = "Init"
    return _parse_base(json.dumps(template_doc), "template")


def preset_json(base: BaseState, preset: Preset, values: dict[str, float], controls: dict[str, float],
                unwired: frozenset[int]) -> str:
    """The complete preset as Vital's JSON (what a ``.vital`` file holds): ``base`` with the
    raw ``controls`` set, the wavetables and LFO shapes the complete ``values`` choose, each
    modulation slot (an ``unwired`` one written empty) and the header."""
    numeric = dict(base.numeric)
    numeric.update(controls)
    tables = []
    for n in OSCILLATORS:
        choice = WAVETABLE_OPTIONS[int(values[f"osc_{n}_wavetable"])]
        tables.append(base.wavetables_json[n - 1] if choice == PRESET_TABLE else wavetable_json(choice))
    lfos = list(base.lfos_json)
    for n in LFOS:
        shape = LFO_SHAPE_OPTIONS[int(values[f"lfo_{n}_shape"])]
        if shape != PRESET_SHAPE and n - 1 < len(lfos):
            lfos[n - 1] = json.dumps(lfo_shape(shape))
    modulations = [written or json.dumps({"source": "", "destination": ""} if slot in unwired
                                         else {"source": source, "destination": destination})
                   for slot, ((source, destination), written)
                   in enumerate(zip(base.modulations, base.modulations_json), start=1)]
    header = dict(base.header)
    header["preset_name"] = preset.name
    header.setdefault("author", "")
    if preset.base_state is None:
        header["author"] = "Patch Pilot"
        header["comments"] = _comment(preset)
        header["preset_style"] = preset.category.title()
    numeric_json = json.dumps(numeric)
    settings = (
        numeric_json[:-1]
        + ', "lfos": [' + ", ".join(lfos) + "]"
        + ', "modulations": [' + ", ".join(modulations) + "]"
        + ', "sample": ' + base.sample_json
        + ', "wavetables": [' + ", ".join(tables) + "]"
        + (", " + base.extra_json if base.extra_json else "") + "}"
    )
    header_json = json.dumps(header)
    return header_json[:-1] + ', "settings": ' + settings + "}"


def _comment(preset: Preset) -> str:
    parts = [f"category: {preset.category}"] if preset.category else []
    if preset.tags:
        parts.append("tags: " + ", ".join(preset.tags))
    parts.append("made by Patch Pilot")
    return "; ".join(parts)
