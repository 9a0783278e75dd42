"""The curated controls: which of Vital's settings Patch Pilot exposes as parameters (the
timbre-relevant subset of its 772 controls, our wavetable and LFO-shape choices, the fixed
modulation routings), with their units, scales and ranges, and the controls our template pins.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from patchpilot.synths.params import Param
from patchpilot.synths.vital.tables import LFO_SHAPE_OPTIONS, WAVETABLE_OPTIONS

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
TEMPLATE_PINS = {
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
    if name in TEMPLATE_PINS:
        default = TEMPLATE_PINS[name]
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



def curated_params(synth: Any) -> list[Param]:
    """The parameters, in display order, read from a ``vita.Synth``'s control details."""
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
    return params
