"""Vital, through the ``vita`` bindings.

Presets are applied to a JSON template (Vital's init patch with deterministic settings) or,
for imported ``.vital`` files, to the file's own JSON. Quirks handled here (see the notes in
``docs/ARCHITECTURE.md``):

* ``osc_N_random_phase`` defaults to 1, which makes every render different: we set it to 0.
* Vital's own noise sample is random per instance: the template carries a fixed one.
* ``set()`` neither clamps nor rounds, and ``set_normalized`` is wrong for the exponential
  controls: we clamp/round raw values ourselves and never use ``set_normalized``.
* A bogus modulation name segfaults on the next render: we only write routings whose
  source and destination are in vita's own lists. An imported file is first loaded and
  played in a child process (``vital_trial.py``): what vita plays there is imported, every
  field of it kept and written back on export, including those vita ignores.
* A voice still releasing at the end of a render leaks into the next one: after each render
  the amp envelope is cut to zero and a 5 ms flush render retires it.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import PresetError, SynthError
from patchpilot.synths import vital_fx
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, USER_ORIGIN, Preset, SynthEngine, Voice, read_preset_bytes
from patchpilot.synths.params import Param, ParamSpace
from patchpilot.synths.registry import VITAL
from patchpilot.synths.vital_checks import STRUCTURED_SETTINGS, VitaLimits, likely_cause, number, parse_document
from patchpilot.synths.vital_tables import (
    LFO_SHAPE_OPTIONS,
    PRESET_SHAPE,
    PRESET_TABLE,
    WAVETABLE_OPTIONS,
    keyframe_count,
    lfo_shape,
    noise_sample_json,
    wavetable_json,
)
from patchpilot.synths.vital_trial import VitaTrial

if TYPE_CHECKING:
    from patchpilot.fx.chain import FxChain

OSCILLATORS = (1, 2, 3)
FILTERS = ("filter_1", "filter_2", "filter_fx")
ENVELOPES = (1, 2, 3)
LFOS = (1, 2)

#: Modulation routings whose amounts are parameters, as (source, destination).
MOD_ROUTES: tuple[tuple[str, str], ...] = (
    ("env_2", "filter_1_cutoff"),
    ("env_2", "filter_2_cutoff"),
    ("lfo_1", "filter_1_cutoff"),
    ("env_3", "osc_1_wave_frame"),
    ("env_3", "osc_2_wave_frame"),
    ("lfo_1", "osc_1_wave_frame"),
    ("lfo_2", "voice_tune"),  # vibrato
    ("env_3", "voice_transpose"),  # pitch envelope
    ("lfo_2", "voice_amplitude"),  # tremolo
    ("velocity", "filter_1_cutoff"),
)
#: Musical ranges of the routing amounts (fraction of the destination's full range).
_MOD_MUSICAL = {
    "voice_tune": (-0.3, 0.3),
    "voice_transpose": (-0.25, 0.25),
    "voice_amplitude": (-1.0, 0.0),
}


def mod_param_name(source: str, destination: str) -> str:
    return f"mod_{source}_to_{destination}"


#: Controls pinned in our template so renders are reproducible and tempo-free.
_TEMPLATE_PINS = {
    **{f"osc_{n}_random_phase": 0.0 for n in OSCILLATORS},
    **{f"lfo_{n}_sync": 0.0 for n in range(1, 9)},  # seconds, not tempo
    "chorus_sync": 0.0,
    "delay_sync": 0.0,
    "phaser_sync": 0.0,
    "flanger_sync": 0.0,
}

# ---- unit conversions --------------------------------------------------------------------


def _note_to_hz(raw: float) -> float:
    return 440.0 * 2.0 ** ((raw - 69.0) / 12.0)


def _hz_to_note(hz: float) -> float:
    return 69.0 + 12.0 * math.log2(max(hz, 1e-3) / 440.0)


def _pow2(raw: float) -> float:
    return 2.0**raw


def _log2(value: float) -> float:
    return math.log2(max(value, 1e-9))


def _period(raw: float) -> float:
    return 2.0**-raw


def _inverse_period(seconds: float) -> float:
    return -math.log2(max(seconds, 1e-9))


def _scaled(scale: str, multiply: float, offset: float) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """Vital's own raw -> display mapping for a control, and its inverse."""
    forward: dict[str, Callable[[float], float]] = {
        "Linear": lambda x: x,
        "Quadratic": lambda x: x * x,
        "Quartic": lambda x: x**4,
        "SquareRoot": lambda x: math.sqrt(max(x, 0.0)),
        "Indexed": lambda x: x,
    }
    inverse: dict[str, Callable[[float], float]] = {
        "Linear": lambda y: y,
        "Quadratic": lambda y: math.sqrt(max(y, 0.0)),
        "Quartic": lambda y: max(y, 0.0) ** 0.25,
        "SquareRoot": lambda y: y * y,
        "Indexed": lambda y: y,
    }
    f, g = forward[scale], inverse[scale]
    return (lambda raw: f(raw) * multiply + offset), (lambda native: g((native - offset) / multiply))


@dataclass(frozen=True)
class _Spec:
    """How one curated control is presented."""

    group: str
    musical: tuple[float, float] | None = None
    unit: str | None = None  # None: take Vital's own display units
    convert: str = "vital"  # vital | hz | pow2_hz | seconds_pow2 | period | percent
    integer: bool = False
    options: tuple[str, ...] | None = None


def _curated_controls() -> dict[str, _Spec]:
    """The timbre-relevant subset of Vital's 772 controls, in display order."""
    specs: dict[str, _Spec] = {}
    for n in OSCILLATORS:
        others = [m for m in OSCILLATORS if m != n]
        osc = f"osc_{n}_"
        specs |= {
            osc + "on": _Spec("oscillator"),
            osc + "wave_frame": _Spec("oscillator", unit=""),
            osc + "level": _Spec("oscillator", musical=(0.3, 1.0)),
            osc + "transpose": _Spec("oscillator", musical=(-24, 24), unit="st", integer=True),
            osc + "tune": _Spec("oscillator", musical=(-0.5, 0.5), unit="cents"),
            osc + "unison_voices": _Spec("oscillator", musical=(1, 8), unit="voices", integer=True),
            osc + "unison_detune": _Spec("oscillator", musical=(0.0, 5.5)),
            osc + "unison_blend": _Spec("oscillator"),
            osc + "destination": _Spec("oscillator", musical=(0, 4)),
            osc + "spectral_morph_type": _Spec("oscillator"),
            osc + "spectral_morph_amount": _Spec("oscillator"),
            osc + "distortion_type": _Spec(
                "oscillator",
                options=(
                    "None", "Sync", "Formant", "Quantize", "Bend", "Squeeze", "Pulse",
                    *(f"FM <- Osc {m}" for m in others), "FM <- Sample",
                    *(f"RM <- Osc {m}" for m in others), "RM <- Sample",
                ),
            ),
            osc + "distortion_amount": _Spec("oscillator"),
            osc + "stack_style": _Spec("oscillator"),
        }
    specs |= {
        "sample_on": _Spec("oscillator"),
        "sample_level": _Spec("oscillator", musical=(0.1, 1.0)),
        "sample_destination": _Spec("oscillator", musical=(0, 4)),
    }
    for f in FILTERS:
        specs |= {
            f + "_on": _Spec("filter"),
            f + "_model": _Spec("filter"),
            f + "_style": _Spec("filter", musical=(0, 4)),
            f + "_cutoff": _Spec("filter", musical=(24.0, 132.0), unit="Hz", convert="hz"),
            f + "_resonance": _Spec("filter", musical=(0.0, 0.9)),
            f + "_drive": _Spec("filter", musical=(0.0, 16.0)),
            f + "_blend": _Spec("filter"),
            f + "_keytrack": _Spec("filter"),
            f + "_mix": _Spec("filter"),
        }
    for n in ENVELOPES:
        env = f"env_{n}_"
        specs |= {
            env + "attack": _Spec("envelope", musical=(0.0, 1.25)),  # up to ~2.4 s
            env + "decay": _Spec("envelope", musical=(0.2, 1.5)),
            env + "sustain": _Spec("envelope"),
            env + "release": _Spec("envelope", musical=(0.2, 1.45)),
            env + "attack_power": _Spec("envelope", musical=(-8.0, 8.0)),
            env + "decay_power": _Spec("envelope", musical=(-8.0, 8.0)),
            env + "release_power": _Spec("envelope", musical=(-8.0, 8.0)),
        }
    for n in LFOS:
        specs[f"lfo_{n}_frequency"] = _Spec("modulation", musical=(-3.3, 4.0), unit="Hz", convert="pow2_hz")
    specs |= {
        "velocity_track": _Spec("global", musical=(0.0, 1.0)),
        "distortion_on": _Spec("fx"),
        "distortion_type": _Spec("fx"),
        "distortion_drive": _Spec("fx", musical=(-6.0, 24.0)),
        "distortion_mix": _Spec("fx"),
        "chorus_on": _Spec("fx"),
        "chorus_dry_wet": _Spec("fx", musical=(0.0, 0.8)),
        "chorus_voices": _Spec("fx", unit="voices", integer=True),
        "chorus_feedback": _Spec("fx", musical=(-0.6, 0.6)),
        "chorus_mod_depth": _Spec("fx"),
        "chorus_frequency": _Spec("fx", musical=(-4.0, 2.0), unit="Hz", convert="pow2_hz"),
        "delay_on": _Spec("fx"),
        "delay_dry_wet": _Spec("fx", musical=(0.0, 0.5)),
        "delay_feedback": _Spec("fx", musical=(0.0, 0.75)),
        "delay_frequency": _Spec("fx", musical=(0.0, 5.0), unit="s", convert="period"),
        "reverb_on": _Spec("fx"),
        "reverb_dry_wet": _Spec("fx", musical=(0.0, 0.6)),
        "reverb_size": _Spec("fx"),
        "reverb_decay_time": _Spec("fx", musical=(-2.0, 3.0), unit="s", convert="seconds_pow2"),
        "reverb_pre_high_cutoff": _Spec("fx", musical=(60.0, 128.0), unit="Hz", convert="hz"),
        "phaser_on": _Spec("fx"),
        "phaser_dry_wet": _Spec("fx"),
        "phaser_feedback": _Spec("fx", musical=(0.0, 0.9)),
        "phaser_center": _Spec("fx", musical=(40.0, 120.0), unit="Hz", convert="hz"),
        "phaser_mod_depth": _Spec("fx"),
        "phaser_frequency": _Spec("fx", musical=(-4.0, 2.0), unit="Hz", convert="pow2_hz"),
        "flanger_on": _Spec("fx"),
        "flanger_dry_wet": _Spec("fx"),
        "flanger_feedback": _Spec("fx", musical=(-0.8, 0.8)),
        "flanger_center": _Spec("fx", musical=(40.0, 120.0), unit="Hz", convert="hz"),
        "flanger_mod_depth": _Spec("fx"),
        "flanger_frequency": _Spec("fx", musical=(-4.0, 2.0), unit="Hz", convert="pow2_hz"),
        "eq_on": _Spec("fx"),
        "eq_low_cutoff": _Spec("fx", unit="Hz", convert="hz"),
        "eq_low_gain": _Spec("fx"),
        "eq_band_cutoff": _Spec("fx", unit="Hz", convert="hz"),
        "eq_band_gain": _Spec("fx"),
        "eq_high_cutoff": _Spec("fx", unit="Hz", convert="hz"),
        "eq_high_gain": _Spec("fx"),
        "compressor_on": _Spec("fx"),
        "compressor_mix": _Spec("fx"),
    }
    return specs


def _control_param(name: str, spec: _Spec, info: Any) -> Param:
    scale = str(info.scale).rsplit(".", 1)[-1]
    low, high, default = float(info.min), float(info.max), float(info.default_value)
    if name in _TEMPLATE_PINS:
        default = _TEMPLATE_PINS[name]
    if info.is_discrete and spec.convert == "vital" and not spec.integer:
        options = spec.options or tuple(info.options)
        kind = "switch" if options == ("Off", "On") else "choice"
        if kind == "choice":
            # Values past Vital's names are undocumented, and a musical range marks the
            # options that work (routing a source to a single effect renders silence).
            high = min(high, low + len(options) - 1)
            if spec.musical is not None:
                high = float(min(high, spec.musical[1]))
        return Param(name, kind, spec.group, low, high, default, options=tuple(options[: int(high - low) + 1]),
                     musical=spec.musical)
    conversions: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
        "hz": (_note_to_hz, _hz_to_note),
        "pow2_hz": (_pow2, _log2),
        "seconds_pow2": (_pow2, _log2),
        "period": (_period, _inverse_period),
    }
    if spec.convert in conversions:
        to_native, from_native = conversions[spec.convert]
    else:
        to_native, from_native = _scaled(scale, float(info.display_multiply), float(info.post_offset))
    unit = spec.unit if spec.unit is not None else str(info.display_units).strip().replace("secs", "s")
    return Param(
        name, "continuous", spec.group, low, high, default,
        unit=unit, integer=spec.integer, musical=spec.musical,
        to_native=to_native, from_native=from_native,
    )


# ---- base states -------------------------------------------------------------------------


@dataclass(frozen=True)
class _BaseState:
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


def _parse_base(text: str, key: str) -> _BaseState:
    """A preset's JSON as a base state. Lenient: vita has played the file (imports are tried
    first), so what it holds is kept; only numbers are read."""
    doc = parse_document(text)
    settings = doc["settings"]
    controls = _vita_limits().controls
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
    numeric.update({k: v for k, v in _TEMPLATE_PINS.items() if k.startswith("osc_")})
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
    return _BaseState(
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
    return json.loads(_import_vita().Synth().to_json())["settings"]


_BASE_CACHE: dict[str, _BaseState] = {}
_BASE_LOCK = threading.Lock()


def _base_for(text: str) -> _BaseState:
    key = hashlib.sha1(text.encode()).hexdigest()[:16]
    with _BASE_LOCK:
        base = _BASE_CACHE.get(key)
        if base is None:
            if len(_BASE_CACHE) > 256:
                _BASE_CACHE.clear()
            base = _BASE_CACHE[key] = _parse_base(text, key)
    return base


class VitalEngine(SynthEngine):
    name = VITAL.name
    display_name = VITAL.display_name
    preset_suffix = VITAL.preset_suffix
    bank_suffixes = VITAL.bank_suffixes
    swept_choices = (("filter_1_model", "filter_1_on"), ("filter_2_model", "filter_2_on"),
                     ("osc_1_wavetable", "osc_1_on"), ("osc_2_wavetable", "osc_2_on"), ("osc_3_wavetable", "osc_3_on"))
    variant_choices = ("osc_1_wavetable", "osc_2_wavetable", "filter_1_model", "filter_2_model", "distortion_type",
                       "lfo_1_shape", "lfo_2_shape", "osc_1_spectral_morph_type")
    variant_switches = ("chorus_on", "reverb_on", "delay_on", "distortion_on", "phaser_on", "flanger_on", "eq_on")

    def __init__(self) -> None:
        self._params: ParamSpace | None = None
        self._template: _BaseState | None = None
        self._lock = threading.Lock()

    # ---- parameter space --------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._params is not None:  # fast path: loaded once per process
            return
        with self._lock:
            if self._params is not None:
                return
            vita = _import_vita()
            synth = vita.Synth()
            params: list[Param] = []
            for name, spec in _curated_controls().items():
                params.append(_control_param(name, spec, synth.get_control_details(name)))
                if name.endswith("_on") and name.startswith("osc_"):
                    osc = name[: -len("_on")]
                    params.append(Param(f"{osc}_wavetable", "choice", "oscillator", 0, len(WAVETABLE_OPTIONS) - 1,
                                        WAVETABLE_OPTIONS.index("Saw"), options=WAVETABLE_OPTIONS, musical=(1, len(WAVETABLE_OPTIONS) - 1)))
            insert_at = next(i for i, p in enumerate(params) if p.name == "velocity_track")
            lfo_params = [
                Param(f"lfo_{n}_shape", "choice", "modulation", 0, len(LFO_SHAPE_OPTIONS) - 1,
                      LFO_SHAPE_OPTIONS.index("Triangle"), options=LFO_SHAPE_OPTIONS, musical=(1, len(LFO_SHAPE_OPTIONS) - 1))
                for n in LFOS
            ]
            mod_params = [
                Param(mod_param_name(src, dst), "continuous", "modulation", -1.0, 1.0, 0.0,
                      musical=_MOD_MUSICAL.get(dst, (-1.0, 1.0)))
                for src, dst in MOD_ROUTES
            ]
            params[insert_at:insert_at] = lfo_params + mod_params
            self._params = ParamSpace(params)
            self._check_routes(vita)
            template_doc = json.loads(synth.to_json())
            template_doc["settings"].update(_TEMPLATE_PINS)
            template_doc["settings"]["sample"] = json.loads(noise_sample_json())
            template_doc["preset_name"] = "Init"
            self._template = _parse_base(json.dumps(template_doc), "template")

    @staticmethod
    def _check_routes(vita: Any) -> None:
        # vita accepts unknown names and then segfaults on render: check them up front.
        sources, destinations = set(vita.get_modulation_sources()), set(vita.get_modulation_destinations())
        for src, dst in MOD_ROUTES:
            if src not in sources or dst not in destinations:
                raise SynthError(f"vita does not know the modulation {src} -> {dst}")

    @property
    def params(self) -> ParamSpace:
        self._ensure_loaded()
        assert self._params is not None
        return self._params

    def _base(self, preset: Preset) -> _BaseState:
        self._ensure_loaded()
        if preset.base_state is None:
            assert self._template is not None
            return self._template
        return _base_for(preset.base_state)

    # ---- JSON assembly -----------------------------------------------------------------
    def control_values(self, preset: Preset) -> dict[str, float]:
        """Vital control name -> raw value for every curated control and routing amount."""
        base = self._base(preset)
        values = self.params.complete(preset.values)
        controls = {n: v for n, v in values.items() if n in base.numeric}
        for name, value in controls.items():
            # An imported file may hold a value the space cannot express (an oscillator
            # routed to a single effect, a filter style past Vital's names): read_presets
            # clipped it; until something moves the parameter, the file's own value plays.
            own, param = base.numeric[name], self.params[name]
            if not param.low <= own <= param.high and abs(value - param.clip(own)) < 1e-6:
                controls[name] = own
        unwired = self._unwired_slots(preset)
        for (src, dst), slot in zip(MOD_ROUTES, base.route_slots):
            if slot and slot not in unwired:  # an unwired slot keeps whatever the file left in it
                controls[f"modulation_{slot}_amount"] = values[mod_param_name(src, dst)]
        return controls

    def structure_key(self, preset: Preset) -> tuple:
        """What needs a JSON load to change: base state, wavetables, LFO shapes and the
        routings written into an imported file's empty slots."""
        values = preset.values
        tables = tuple(int(values.get(f"osc_{n}_wavetable", 1)) for n in OSCILLATORS)
        shapes = tuple(int(values.get(f"lfo_{n}_shape", 1)) for n in LFOS)
        return (self._base(preset).key, tables, shapes, self._unwired_slots(preset))

    def _unwired_slots(self, preset: Preset) -> frozenset[int]:
        """An imported file's slots that a routing took but that stay empty: amount 0."""
        if preset.base_state is None:
            return frozenset()
        base = self._base(preset)
        values = self.params.complete(preset.values)
        return frozenset(slot for route, slot in zip(MOD_ROUTES, base.route_slots)
                         if slot in base.added_slots and values[mod_param_name(*route)] == 0.0)

    def to_json(self, preset: Preset) -> str:
        """The complete preset as Vital's JSON (what a ``.vital`` file holds)."""
        base = self._base(preset)
        values = self.params.complete(preset.values)
        numeric = dict(base.numeric)
        numeric.update(self.control_values(preset))
        tables = []
        for n in OSCILLATORS:
            choice = WAVETABLE_OPTIONS[int(values[f"osc_{n}_wavetable"])]
            tables.append(base.wavetables_json[n - 1] if choice == PRESET_TABLE else wavetable_json(choice))
        lfos = list(base.lfos_json)
        for n in LFOS:
            shape = LFO_SHAPE_OPTIONS[int(values[f"lfo_{n}_shape"])]
            if shape != PRESET_SHAPE and n - 1 < len(lfos):
                lfos[n - 1] = json.dumps(lfo_shape(shape))
        unwired = self._unwired_slots(preset)
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

    # ---- engine interface ----------------------------------------------------------------
    def new_voice(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> VitalVoice:
        self._ensure_loaded()
        return VitalVoice(self, sample_rate)

    def velocity_sensitive(self, preset: Preset) -> bool:
        # velocity_track only scales loudness, which every comparison normalises away;
        # what matters is velocity reaching the timbre through a modulation.
        values = preset.values
        if abs(values.get(mod_param_name("velocity", "filter_1_cutoff"), 0.0)) > 1e-6:
            return True
        base = self._base(preset)  # an imported preset's own velocity routings
        return any(src == "velocity" and (src, dst) not in MOD_ROUTES for src, dst in base.modulations)

    def audible_params(self, preset: Preset) -> list[str]:
        values = self.params.complete(preset.values)
        on = lambda name: values.get(name, 0.0) >= 0.5  # noqa: E731
        sources = [(f"osc_{n}", values[f"osc_{n}_destination"]) for n in OSCILLATORS if on(f"osc_{n}_on")]
        if on("sample_on"):
            sources.append(("sample", values["sample_destination"]))
        # destinations: 0 FILTER 1, 1 FILTER 2, 2 FILTER 1+2
        routed = {"filter_1": any(d in (0, 2) for _, d in sources), "filter_2": any(d in (1, 2) for _, d in sources)}
        active_modules = {name for name, _ in sources}
        active_modules |= {f for f in ("filter_1", "filter_2") if on(f + "_on") and routed[f]}
        active_modules |= {fx for fx in ("filter_fx", "distortion", "chorus", "delay", "reverb", "phaser", "flanger",
                                         "eq", "compressor") if on(fx + "_on")}
        used_sources = {"env_1"}
        for src, dst in MOD_ROUTES:
            module = _route_module(dst)
            if abs(values[mod_param_name(src, dst)]) > 1e-6 and (module == "voice" or module in active_modules):
                used_sources.add(src)
        names = []
        for name in self.params.names("continuous"):
            prefix = "_".join(name.split("_")[:2])
            head = name.split("_")[0]
            if name.startswith("mod_"):
                dst = next(d for s, d in MOD_ROUTES if mod_param_name(s, d) == name)
                module = _route_module(dst)
                if module == "voice" or module in active_modules:
                    names.append(name)
            elif head in ("env", "lfo"):
                if prefix in used_sources and not _inert_envelope_stage(values, name):
                    names.append(name)
            elif name == "velocity_track":
                continue  # only changes loudness, which every comparison normalises away
            elif prefix in active_modules or head in active_modules:
                if name.endswith(("unison_detune", "unison_blend")) and values[f"{prefix}_unison_voices"] < 2:
                    continue
                if name.endswith("wave_frame") and not _multi_frame(values[f"{prefix}_wavetable"]):
                    continue
                if name.endswith("spectral_morph_amount") and values[f"{prefix}_spectral_morph_type"] == 0:
                    continue
                if name.endswith("distortion_amount") and values[f"{prefix}_distortion_type"] == 0:
                    continue
                names.append(name)
        return names

    def preset_bytes(self, preset: Preset) -> bytes:
        return self.to_json(preset).encode("utf-8")

    def preset_bytes_with_fx(self, preset: Preset, chain: FxChain) -> tuple[bytes, tuple[str, ...]]:
        text, left_out = vital_fx.with_chain(self.to_json(preset), chain)
        return text.encode("utf-8"), left_out

    def _play_file_native(self, data: bytes, note: int, velocity: int, note_seconds: float,
                          total_seconds: float) -> np.ndarray:
        stereo = _first_note(data.decode("utf-8", errors="replace"), note, velocity, note_seconds, total_seconds)
        return 0.5 * (stereo[0] + stereo[1])

    def read_presets(self, path: Path) -> list[Preset]:
        """A ``.vital`` file as a preset, when vita loads it and plays it (``vital_trial``);
        otherwise a :class:`PresetError` naming the file, what vita did and, where known, why."""
        try:
            text = read_preset_bytes(path).decode("utf-8")
        except UnicodeDecodeError:
            raise PresetError(f"{path}: not a Vital preset (not UTF-8 text)") from None
        try:
            doc = parse_document(text)
        except PresetError as exc:
            raise PresetError(f"{path}: {exc}") from None
        complaint = _TRIAL.complaint(text)
        if complaint:
            cause = likely_cause(doc, _vita_limits())
            raise PresetError(f"{path}: {complaint}" + (f": {cause}" if cause else ""))
        preset = self._imported(path, text, _base_for(text))
        # our copy, as the voices will load it: a failure here is ours, not the file's
        complaint = _TRIAL.complaint(self.to_json(preset))
        if complaint:
            raise PresetError(f"{path}: vita plays the file, but not Patch Pilot's copy of it ({complaint}); "
                              "please report this")
        return [preset]

    def _imported(self, path: Path, text: str, base: _BaseState) -> Preset:
        """The preset of a checked ``.vital`` file: its curated values, its own wavetables
        and LFO shapes (option 0), the routing amounts it sets."""
        values: dict[str, float] = {}
        for name, param in self.params.items():
            if name in base.numeric:
                values[name] = param.clip(base.numeric[name])
        for n in OSCILLATORS:
            values[f"osc_{n}_wavetable"] = 0.0
        for n in LFOS:
            values[f"lfo_{n}_shape"] = 0.0
        for (src, dst), slot in zip(MOD_ROUTES, base.route_slots):
            # a routing the file has keeps its amount; one in a slot the file left empty starts at 0
            own = slot and slot not in base.added_slots
            values[mod_param_name(src, dst)] = base.numeric.get(f"modulation_{slot}_amount", 0.0) if own else 0.0
        name = str(base.header.get("preset_name") or path.stem)
        category = str(base.header.get("preset_style") or "").lower()
        return Preset(self.name, name, self.params.complete(values), category=category,
                      origin=f"{USER_ORIGIN}{path.name}", base_state=text)


@lru_cache(maxsize=1)
def _vita_limits() -> VitaLimits:
    """vita's own control ranges and modulation names, which imported files are checked against."""
    vita = _import_vita()
    synth = vita.Synth()
    controls = {}
    for name in synth.get_controls():
        info = synth.get_control_details(name)
        controls[name] = (float(info.min), float(info.max))
    return VitaLimits(controls, frozenset(vita.get_modulation_sources()),
                      frozenset(vita.get_modulation_destinations()))


_TRIAL = VitaTrial()


def _inert_envelope_stage(values: dict[str, float], name: str) -> bool:
    """Envelope controls that cannot be heard: decay into a full sustain, the curve of an
    instant attack."""
    env = "_".join(name.split("_")[:2])
    if name.endswith(("_decay", "_decay_power")):
        return values[env + "_sustain"] >= 0.999
    if name.endswith("_attack_power"):
        return values[env + "_attack"] < 0.05
    return False


def _route_module(destination: str) -> str:
    """The module a routing destination belongs to: ``filter_1``, ``osc_2`` or ``voice``."""
    return "_".join(destination.split("_")[:2]) if destination.startswith(("filter", "osc")) else "voice"


def _multi_frame(table_index: float) -> bool:
    """Whether a wavetable option scans (has more than one keyframe)."""
    name = WAVETABLE_OPTIONS[int(table_index)]
    return name != PRESET_TABLE and keyframe_count(name) > 1


def _comment(preset: Preset) -> str:
    parts = [f"category: {preset.category}"] if preset.category else []
    if preset.tags:
        parts.append("tags: " + ", ".join(preset.tags))
    parts.append("made by Patch Pilot")
    return "; ".join(parts)


_EFFECT_SWITCHES = tuple(f"{fx}_on" for fx in (
    "chorus", "compressor", "delay", "distortion", "eq", "filter_fx", "flanger", "phaser", "reverb"))


class VitalVoice(Voice):
    """One ``vita.Synth``. Reloads JSON only when the preset's structure changes.

    A user's own ``.vital`` file plays on a fresh Synth every time, as its first note
    after loading: what the user hears. Its modulators, effect LFOs and envelopes would
    otherwise start from the state the voice's last note left them in (pooled renders of
    such files differ from the first note by as much as two different presets do).
    Our own presets are designed so that the reused voice plays them close enough.
    """

    #: Length of the render that retires a voice still releasing (seconds).
    _FLUSH_SECONDS = 0.005
    #: Length of the note that lets control glides settle before the real render.
    _WARMUP_SECONDS = 0.1

    def __init__(self, engine: VitalEngine, sample_rate: int) -> None:
        super().__init__(sample_rate)
        vita = _import_vita()
        self._engine = engine
        self._synth = vita.Synth()
        self._synth.set_sample_rate(float(NATIVE_SAMPLE_RATE_HZ))
        self._controls = self._synth.get_controls()
        self._loaded: tuple | None = None

    def _load(self, preset: Preset) -> None:
        key = self._engine.structure_key(preset)
        if key != self._loaded:
            if not self._synth.load_json(self._engine.to_json(preset)):
                self._loaded = None
                raise SynthError(f"vita could not load preset {preset.name!r}")
            self._loaded = key
            return
        for name, raw in self._engine.control_values(preset).items():
            self._controls[name].set(float(raw))

    def _render_native(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                       total_seconds: float) -> np.ndarray:
        stereo = self._render_native_stereo(preset, note, velocity, note_seconds, total_seconds)
        return (0.5 * (stereo[0] + stereo[1])).astype(np.float32, copy=False)

    def _render_native_stereo(self, preset: Preset, note: int, velocity: int, note_seconds: float,
                              total_seconds: float) -> np.ndarray:
        if plays_fresh(preset):
            return _first_note(self._engine.to_json(preset), note, velocity, note_seconds, total_seconds)
        self._load(preset)
        # Vital glides every changed control to its new value during the first note after a
        # change, so a render would depend on the preset rendered before it. A short
        # warm-up note lets the glides finish; the flush then clears its voice and tails.
        self._synth.render(int(note), velocity / 127.0, self._WARMUP_SECONDS / 2, self._WARMUP_SECONDS)
        self._flush()
        self._restore(preset)
        stereo = self._synth.render(int(note), velocity / 127.0, float(note_seconds), float(total_seconds))
        self._flush()
        return np.asarray(stereo, dtype=np.float32)

    def _restore(self, preset: Preset) -> None:
        """Put back the controls the flush changed."""
        values = self._engine.params.complete(preset.values)
        for name in ("env_1_attack", "env_1_release", *_EFFECT_SWITCHES):
            self._controls[name].set(float(values[name]))

    def _flush(self) -> None:
        # Cut the amp envelope so a voice still releasing dies now instead of sounding in
        # the next render, and switch every effect off for the flush: an effect switched
        # back on starts from empty buffers, so reverb, delay and chorus tails of this
        # render do not leak into the next one. The next _load() restores all of it.
        self._controls["env_1_attack"].set(0.0)
        self._controls["env_1_release"].set(0.0)
        for switch in _EFFECT_SWITCHES:
            self._controls[switch].set(0.0)
        self._synth.render(60, 0.5, self._FLUSH_SECONDS / 2, self._FLUSH_SECONDS)


def _first_note(text: str, note: int, velocity: int, note_seconds: float, total_seconds: float) -> np.ndarray:
    """A preset's JSON loaded in a fresh Synth and its first note played, as a user hears
    it after loading the file: ``(2, N)`` float32 at the native rate. With every
    oscillator's random phase off (our files say so) this is bit-identical every time."""
    synth = _import_vita().Synth()
    synth.set_sample_rate(float(NATIVE_SAMPLE_RATE_HZ))
    if not synth.load_json(text):
        raise SynthError("vita could not load the preset file")
    return np.asarray(synth.render(int(note), velocity / 127.0, float(note_seconds), float(total_seconds)),
                      dtype=np.float32)


def plays_fresh(preset: Preset) -> bool:
    """Whether voices render this preset on a fresh Synth (see :class:`VitalVoice`): a
    user's file, and the refinement's variations of it (slower: ~0.15 s more a render)."""
    return preset.origin.startswith(USER_ORIGIN)


@lru_cache(maxsize=1)
def _import_vita() -> Any:
    try:
        import vita
    except ImportError as exc:  # pragma: no cover - vita is a core dependency
        raise SynthError(f"the Vital engine needs the 'vita' package: pip install vita ({exc})") from None
    return vita
