#!/usr/bin/env python
"""Write a set of our own ``.vital`` presets that use what the factory banks do not.

    python -m scripts.make_user_presets OUT_DIR [--count 48] [--seed 0] [--dx7 BANK.syx]

Every preset starts from vita's init JSON and adds what a sound designer would: wavetables
made here (additive spectra, formant-like frames, sweeps between shapes, sparse bell
spectra, phase-warped sines; several keyframes each, with the wave frame set and
modulated), custom LFO shapes, several modulations (LFOs 3-8, envelopes 4-6, velocity,
note, macros) and the four macros set. Sound types: bass, pad, pluck, lead, keys, bell.
Oscillator random phase is left as Vital leaves it (on).

Each file is loaded in a fresh ``vita.Synth`` and one note rendered; a preset that does not
load or renders silent is not written and is reported. The output is deterministic for a
seed (file names, wavetables, settings). ``--dx7`` also writes a 32-voice DX7 bank of
random but musical voices (bass, keys, bell, brass, pluck, pad, organ, lead) with dexed-py.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TYPES = ("bass", "pad", "pluck", "lead", "keys", "bell")
#: Types whose amplitude envelope holds a sustain level.
SUSTAINED = ("bass", "pad", "lead")
FRAME = 2048
_PHASE = np.arange(FRAME, dtype=np.float64) / FRAME
_SILENT_RMS = 1e-3
#: Draws of a design before its slot is given up.
ATTEMPTS = 3


def env_raw(seconds: float) -> float:
    """Vital's raw envelope time for a duration in seconds (the control is quartic)."""
    return float(max(seconds, 0.0) ** 0.25)


# ---- wavetables ---------------------------------------------------------------------------
def harmonics_cycle(amplitudes: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """One cycle of 2048 samples from harmonic amplitudes (index 0 = fundamental)."""
    count = len(amplitudes)
    spectrum = np.zeros(FRAME // 2 + 1, dtype=np.complex128)
    ph = np.zeros(count) if phases is None else phases
    spectrum[1 : count + 1] = amplitudes * np.exp(1j * (ph - np.pi / 2))
    return np.fft.irfft(spectrum, n=FRAME) * FRAME / 2


def additive_frames(rng: np.random.Generator, keyframes: int) -> list[np.ndarray]:
    """Random harmonic spectra whose tilt opens from dark to bright across the table."""
    count = int(rng.integers(24, 160))
    k = np.arange(1, count + 1, dtype=np.float64)
    emphasis = rng.choice(np.arange(2, min(count, 24) + 1), size=3, replace=False)
    phases = rng.uniform(0, 2 * np.pi, count)
    frames = []
    for tilt in np.linspace(rng.uniform(1.6, 2.6), rng.uniform(0.5, 1.1), keyframes):
        amps = k**-tilt * rng.uniform(0.5, 1.0, count)
        amps[emphasis - 1] *= rng.uniform(2.0, 5.0, emphasis.size)
        frames.append(harmonics_cycle(amps, phases))
    return frames


def formant_frames(rng: np.random.Generator, keyframes: int) -> list[np.ndarray]:
    """Harmonic series shaped by 2-3 resonant bumps that glide across the table (vowel-like)."""
    k = np.arange(1, 129, dtype=np.float64)
    bumps = int(rng.integers(2, 4))
    starts = np.sort(rng.uniform(2.0, 30.0, bumps))
    ends = np.sort(rng.uniform(2.0, 30.0, bumps))
    widths = rng.uniform(0.8, 3.0, bumps)
    gains = rng.uniform(0.3, 1.0, bumps)
    frames = []
    for t in np.linspace(0.0, 1.0, keyframes):
        centres = starts * (1 - t) + ends * t
        envelope = 0.02 / k + sum(g * np.exp(-0.5 * ((k - c) / w) ** 2) for c, w, g in zip(centres, widths, gains))
        frames.append(harmonics_cycle(envelope / np.sqrt(k)))
    return frames


def _shape(name: str, amount: float) -> np.ndarray:
    """A time-domain single-cycle shape (band-limited later by Vital)."""
    x = np.sin(2 * np.pi * _PHASE)
    if name == "fold":
        return np.sin(amount * 3.0 * x)
    if name == "drive":
        return np.tanh(amount * 6.0 * x)
    if name == "pulse":
        width = 0.5 - 0.45 * amount
        return np.where(_PHASE < width, 1.0, -1.0) - (2 * width - 1)
    if name == "ramp":
        bend = 1.0 + 4.0 * amount
        return 2.0 * _PHASE**bend - 1.0
    if name == "steps":
        levels = int(3 + 9 * amount)
        return np.round(x * levels) / levels
    raise ValueError(name)


def sweep_frames(rng: np.random.Generator, keyframes: int) -> list[np.ndarray]:
    """A sweep between two shapes: each keyframe a crossfade further from one to the other."""
    first, second = rng.choice(["fold", "drive", "pulse", "ramp", "steps"], size=2, replace=False)
    a, b = _shape(str(first), rng.uniform(0.2, 1.0)), _shape(str(second), rng.uniform(0.2, 1.0))
    return [(1 - t) * a + t * b for t in np.linspace(0.0, 1.0, keyframes)]


def bell_frames(rng: np.random.Generator, keyframes: int) -> list[np.ndarray]:
    """Sparse high partials (bell-like) that fade towards the fundamental across the table."""
    partials = np.unique(np.concatenate([[1], rng.choice(np.arange(2, 40), size=int(rng.integers(4, 9)), replace=False)]))
    weights = rng.uniform(0.3, 1.0, partials.size)
    frames = []
    for t in np.linspace(0.0, 1.0, keyframes):
        amps = np.zeros(partials.max())
        amps[partials - 1] = weights * np.exp(-t * 4.0 * (partials - 1) / partials.max())
        amps[0] = 1.0
        frames.append(harmonics_cycle(amps, rng.uniform(0, 2 * np.pi, amps.size)))
    return frames


def warp_frames(rng: np.random.Generator, keyframes: int) -> list[np.ndarray]:
    """A sine read through a bent phase (phase distortion), the bend growing across the table."""
    frames = []
    top = rng.uniform(0.6, 0.95)
    for t in np.linspace(0.0, 1.0, keyframes):
        knee = 0.5 - t * (0.5 - (1 - top) / 2)
        warped = np.where(_PHASE < knee, 0.5 * _PHASE / knee, 0.5 + 0.5 * (_PHASE - knee) / (1 - knee))
        frames.append(np.cos(2 * np.pi * warped))
    return frames


GENERATORS: dict[str, Callable[[np.random.Generator, int], list[np.ndarray]]] = {
    "additive": additive_frames,
    "formant": formant_frames,
    "sweep": sweep_frames,
    "bell": bell_frames,
    "warp": warp_frames,
}


def encode_frame(cycle: np.ndarray) -> str:
    """2048 little-endian float32, DC removed and peak-normalised, as base64."""
    cycle = cycle - cycle.mean()
    cycle = cycle / max(float(np.abs(cycle).max()), 1e-9)
    return base64.b64encode(cycle.astype("<f4").tobytes()).decode("ascii")


def wavetable(template: dict[str, Any], name: str, frames: list[np.ndarray]) -> dict[str, Any]:
    """Vital's wavetable JSON with ``frames`` spread over positions 0..255."""
    table = json.loads(json.dumps(template))
    table["name"] = name
    table["author"] = "Patch Pilot user-preset generator"
    positions = np.round(np.linspace(0, 255, len(frames))).astype(int)
    component = table["groups"][0]["components"][0]
    component["keyframes"] = [{"position": int(p), "wave_data": encode_frame(f)} for p, f in zip(positions, frames)]
    return table


# ---- LFO shapes ---------------------------------------------------------------------------
def lfo_shape(rng: np.random.Generator, name: str) -> dict[str, Any]:
    """A custom LFO shape: points (x, y) with y = 0 at the top, curve powers, smoothing."""
    kind = rng.choice(["steps", "curves", "random"])
    if kind == "steps":
        count = int(rng.integers(3, 7))
        xs, ys = [], []
        levels = rng.uniform(0, 1, count)
        for i, level in enumerate(levels):
            xs += [i / count, (i + 1) / count]
            ys += [level, level]
        powers = [0.0] * len(xs)
        smooth = False
    elif kind == "curves":
        peak = rng.uniform(0.1, 0.6)
        xs, ys = [0.0, peak, 1.0], [1.0, 0.0, 1.0]
        powers = [float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6)), 0.0]
        smooth = False
    else:
        count = int(rng.integers(4, 8))
        inner = np.sort(rng.uniform(0.05, 0.95, count - 2))
        xs = [0.0, *inner.tolist(), 1.0]
        ys = rng.uniform(0, 1, count).tolist()
        ys[-1] = ys[0]
        powers = rng.uniform(-3, 3, count).tolist()
        smooth = bool(rng.integers(0, 2))
    points = [float(v) for pair in zip(xs, ys) for v in pair]
    return {"name": name, "num_points": len(xs), "points": points, "powers": [float(p) for p in powers],
            "smooth": smooth}


# ---- presets ------------------------------------------------------------------------------
@dataclass
class Design:
    """A preset being written: its JSON, its settings and the modulations added so far."""

    doc: dict[str, Any]
    rng: np.random.Generator
    sources: frozenset[str]
    destinations: frozenset[str]

    @property
    def settings(self) -> dict[str, Any]:
        return self.doc["settings"]

    def set(self, **values: float) -> None:
        for name, value in values.items():
            if name not in self.settings:
                raise KeyError(f"no Vital control {name}")
            self.settings[name] = float(value)

    def modulate(self, source: str, destination: str, amount: float, *, bipolar: bool = False,
                 power: float = 0.0) -> None:
        """Add a routing in the first free slot (names checked against vita's own lists)."""
        if source not in self.sources or destination not in self.destinations:
            raise ValueError(f"vita does not know the modulation {source} -> {destination}")
        mods = self.settings["modulations"]
        if any(m["source"] == source and m["destination"] == destination for m in mods):
            return
        slot = next(i for i, m in enumerate(mods) if not m["source"])
        mods[slot] = {"source": source, "destination": destination}
        self.set(**{f"modulation_{slot + 1}_amount": amount if abs(amount) > 1e-3 else 0.05,
                    f"modulation_{slot + 1}_bipolar": float(bipolar),
                    f"modulation_{slot + 1}_power": power})

    @property
    def modulation_count(self) -> int:
        return sum(1 for m in self.settings["modulations"] if m["source"])


def u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def design_oscillators(d: Design, kind: str, number: int, label: str) -> None:
    """Own wavetables on the oscillators that play, with their wave frame set."""
    r = d.rng
    table_kinds = {
        "bass": ["additive", "sweep", "warp", "formant"],
        "pad": ["formant", "additive", "warp", "sweep"],
        "pluck": ["additive", "sweep", "warp", "bell"],
        "lead": ["sweep", "additive", "formant", "warp"],
        "keys": ["warp", "additive", "bell", "formant"],
        "bell": ["bell", "additive", "warp"],
    }[kind]
    oscillators = 2 if kind in ("bell", "keys") else int(r.integers(1, 4))
    template = d.settings["wavetables"][0]
    for n in range(1, 4):
        if n > oscillators:
            d.set(**{f"osc_{n}_on": 0})
            continue
        generator = str(table_kinds[(number + n - 1) % len(table_kinds)])
        frames = GENERATORS[generator](r, int(r.integers(3, 7)))
        d.settings["wavetables"][n - 1] = wavetable(template, f"{label} {generator} {n}", frames)
        d.set(**{f"osc_{n}_on": 1, f"osc_{n}_wave_frame": u(r, 0, 200), f"osc_{n}_level": u(r, 0.55, 0.85),
                 f"osc_{n}_destination": 0})
        if n > 1:
            transpose = {"bass": [0, 12, -12], "bell": [12, 19, 24, 28], "keys": [12, 0, 7]}.get(kind, [0, 7, 12, -12])
            d.set(**{f"osc_{n}_transpose": float(r.choice(transpose)), f"osc_{n}_tune": u(r, -0.15, 0.15),
                     f"osc_{n}_level": u(r, 0.3, 0.7)})


def design(kind: str, number: int, seed: int, template: dict[str, Any], sources: frozenset[str],
           destinations: frozenset[str], attempt: int = 0) -> tuple[str, dict[str, Any]]:
    """One preset of a sound type: (file stem, Vital JSON document)."""
    r = np.random.default_rng([seed, TYPES.index(kind), number, attempt])
    doc = json.loads(json.dumps(template))
    d = Design(doc, r, sources, destinations)
    label = f"{kind.title()} {number + 1:02d}"
    design_oscillators(d, kind, number, label)
    s = d.set
    # LFOs 3-6 get shapes of our own (the factory banks use LFOs 1-2 with stock shapes)
    for n in range(3, 7):
        d.settings["lfos"][n - 1] = lfo_shape(r, f"{label} shape {n}")
        s(**{f"lfo_{n}_sync": float(r.choice([0, 1])), f"lfo_{n}_frequency": u(r, -1.5, 2.5),
             f"lfo_{n}_tempo": float(r.integers(5, 10))})
    macros = ["TONE", "MOVE", "SPACE", "GRIT"]
    for m, title in enumerate(macros, start=1):
        doc[f"macro{m}"] = title
        s(**{f"macro_control_{m}": u(r, 0.15, 0.85)})
    s(filter_1_on=1, filter_1_model=float(r.choice([0, 1, 2, 3, 4])), filter_1_style=float(r.choice([0, 1])),
      filter_1_resonance=u(r, 0.05, 0.55), filter_1_keytrack=u(r, 0.0, 0.6))
    s(velocity_track=u(r, 0.2, 0.8))
    sustained = kind in SUSTAINED
    if kind == "bass":
        s(env_1_attack=env_raw(u(r, 0.0, 0.01)), env_1_decay=env_raw(u(r, 0.3, 1.2)), env_1_sustain=u(r, 0.4, 0.9),
          env_1_release=env_raw(u(r, 0.05, 0.2)), filter_1_cutoff=u(r, 50, 72), osc_1_transpose=float(r.choice([0, -12])),
          filter_1_keytrack=u(r, 0.3, 0.8),
          env_2_decay=env_raw(u(r, 0.1, 0.5)), env_2_sustain=u(r, 0.0, 0.3))
        d.modulate("env_2", "filter_1_cutoff", u(r, 0.2, 0.45))
        d.modulate("macro_control_4", "filter_1_drive", u(r, 0.2, 0.6))
        if r.random() < 0.5:
            s(distortion_on=1, distortion_type=float(r.integers(0, 4)), distortion_drive=u(r, 4, 16),
              distortion_mix=u(r, 0.4, 1.0))
            d.modulate("macro_control_4", "distortion_drive", u(r, 0.1, 0.4))
    elif kind == "pad":
        s(env_1_attack=env_raw(u(r, 0.25, 1.0)), env_1_decay=env_raw(u(r, 1.0, 3.0)), env_1_sustain=u(r, 0.7, 1.0),
          env_1_release=env_raw(u(r, 0.6, 2.0)), filter_1_cutoff=u(r, 60, 95),
          osc_1_unison_voices=float(r.integers(3, 9)), osc_1_unison_detune=u(r, 1.5, 4.0),
          osc_1_unison_blend=u(r, 0.4, 0.9))
        d.modulate("lfo_3", "osc_1_wave_frame", u(r, 0.2, 0.5), bipolar=True)
        s(env_4_attack=env_raw(u(r, 0.4, 1.5)), env_4_decay=env_raw(u(r, 1.0, 3.0)), env_4_sustain=u(r, 0.3, 0.8))
        d.modulate("env_4", "filter_1_cutoff", u(r, 0.1, 0.35))
        d.modulate("lfo_4", "osc_1_spectral_morph_amount", u(r, 0.1, 0.4), bipolar=True)
        s(osc_1_spectral_morph_type=float(r.choice([2, 3, 5, 7])))
    elif kind == "pluck":
        s(env_1_attack=env_raw(u(r, 0.0, 0.003)), env_1_decay=env_raw(u(r, 0.4, 1.0)), env_1_sustain=u(r, 0.0, 0.1),
          env_1_release=env_raw(u(r, 0.1, 0.4)), filter_1_cutoff=u(r, 45, 75),
          env_2_decay=env_raw(u(r, 0.05, 0.3)), env_2_sustain=0.0)
        d.modulate("env_2", "filter_1_cutoff", u(r, 0.3, 0.6))
        s(env_3_decay=env_raw(u(r, 0.1, 0.5)), env_3_sustain=u(r, 0.0, 0.2))
        d.modulate("env_3", "osc_1_wave_frame", u(r, -0.6, 0.6))
        d.modulate("note", "filter_1_resonance", u(r, -0.3, 0.3))
    elif kind == "lead":
        s(env_1_attack=env_raw(u(r, 0.002, 0.05)), env_1_decay=env_raw(u(r, 0.5, 1.5)), env_1_sustain=u(r, 0.75, 1.0),
          env_1_release=env_raw(u(r, 0.08, 0.4)), filter_1_cutoff=u(r, 70, 105),
          osc_1_unison_voices=float(r.integers(1, 5)), osc_1_unison_detune=u(r, 1.0, 3.0),
          osc_1_distortion_type=float(r.choice([1, 2, 4, 5])), osc_1_distortion_amount=u(r, 0.2, 0.7))
        s(lfo_5_sync=0.0, lfo_5_frequency=u(r, 2.2, 2.7), lfo_5_delay_time=u(r, 0.1, 0.4), lfo_5_fade_time=u(r, 0.2, 0.6))
        d.modulate("lfo_5", "osc_1_tune", u(r, 0.08, 0.2), bipolar=True)
        d.modulate("env_5", "osc_1_distortion_amount", u(r, -0.4, 0.4))
        d.modulate("macro_control_1", "filter_1_resonance", u(r, 0.1, 0.4))
    elif kind == "keys":
        s(env_1_attack=env_raw(u(r, 0.0, 0.004)), env_1_decay=env_raw(u(r, 0.8, 2.2)), env_1_sustain=u(r, 0.1, 0.4),
          env_1_release=env_raw(u(r, 0.15, 0.5)), filter_1_cutoff=u(r, 55, 85))
        d.modulate("velocity", "filter_1_cutoff", u(r, 0.1, 0.3))
        d.modulate("velocity", "osc_1_wave_frame", u(r, 0.1, 0.4))
        d.modulate("lfo_6", "voice_amplitude", u(r, -0.3, -0.05))
        s(env_6_decay=env_raw(u(r, 0.3, 1.0)), env_6_sustain=u(r, 0.0, 0.3))
        d.modulate("env_6", "osc_2_level", u(r, 0.2, 0.6))
    else:  # bell
        s(env_1_attack=env_raw(u(r, 0.0, 0.002)), env_1_decay=env_raw(u(r, 1.5, 4.0)), env_1_sustain=0.0,
          env_1_release=env_raw(u(r, 0.8, 2.0)), filter_1_cutoff=u(r, 85, 120),
          osc_1_distortion_type=7.0, osc_1_distortion_amount=u(r, 0.1, 0.45))  # FM <- Osc 2
        s(env_3_decay=env_raw(u(r, 0.2, 0.8)), env_3_sustain=0.0)
        d.modulate("env_3", "osc_1_distortion_amount", u(r, 0.1, 0.4))
        d.modulate("env_3", "osc_1_wave_frame", u(r, 0.2, 0.6))
    # what every type shares: macros and a custom-shaped LFO on the timbre
    d.modulate("macro_control_1", "filter_1_cutoff", u(r, -0.25, 0.25))
    d.modulate("macro_control_2", "osc_1_wave_frame", u(r, 0.1, 0.4))
    d.modulate(str(r.choice(["lfo_3", "lfo_4", "lfo_6"])), f"osc_{1 + int(r.integers(0, 2))}_wave_frame",
               u(r, 0.05, 0.3), bipolar=True)
    if d.settings["osc_2_on"] >= 0.5:
        d.modulate("macro_control_2", "osc_2_wave_frame", u(r, -0.3, 0.3))
    if r.random() < 0.5:
        d.modulate("random_1", "osc_1_pan", u(r, 0.1, 0.3), bipolar=True)
    design_effects(d, kind, sustained)
    style = kind.title()
    doc["preset_name"] = f"{label} {_nickname(r)}"
    doc["preset_style"] = style
    doc["author"] = "Patch Pilot user-preset generator"
    doc["comments"] = f"{kind}; generated with seed {seed}; wavetables and LFO shapes made here"
    stem = f"{number + 1:02d}-{kind}-{doc['preset_name'].split()[-1].lower()}"
    return stem, doc


def design_effects(d: Design, kind: str, sustained: bool) -> None:
    """Chorus / phaser / flanger / reverb / delay, switched on by type and chance."""
    r = d.rng
    chances = {"chorus": 0.6 if sustained or kind == "keys" else 0.25, "phaser": 0.3, "flanger": 0.2,
               "reverb": 0.8 if kind in ("pad", "bell") else 0.35, "delay": 0.5 if kind in ("pluck", "lead") else 0.2}
    on = {fx: r.random() < p for fx, p in chances.items()}
    if on["chorus"]:
        d.set(chorus_on=1, chorus_dry_wet=u(r, 0.2, 0.6), chorus_voices=float(r.integers(1, 4)))
    if on["phaser"]:
        d.set(phaser_on=1, phaser_dry_wet=u(r, 0.3, 0.9), phaser_feedback=u(r, 0.2, 0.7), phaser_center=u(r, 60, 100))
    if on["flanger"]:
        d.set(flanger_on=1, flanger_dry_wet=u(r, 0.2, 0.5), flanger_feedback=u(r, -0.6, 0.6))
    if on["reverb"]:
        d.set(reverb_on=1, reverb_dry_wet=u(r, 0.15, 0.45), reverb_decay_time=u(r, -0.5, 2.0), reverb_size=u(r, 0.3, 0.9))
        d.modulate("macro_control_3", "reverb_dry_wet", u(r, 0.05, 0.3))
    if on["delay"]:
        d.set(delay_on=1, delay_dry_wet=u(r, 0.1, 0.35), delay_feedback=u(r, 0.2, 0.6), delay_tempo=float(r.integers(8, 12)))
        d.modulate("macro_control_3", "delay_dry_wet", u(r, 0.05, 0.2))


_SYLLABLES = ("ka", "lo", "mi", "ru", "ze", "tan", "vor", "shi", "pel", "dra", "nu", "ox", "bri", "gal", "fen")


def _nickname(r: np.random.Generator) -> str:
    return "".join(str(s) for s in r.choice(_SYLLABLES, size=2)).title()


# ---- checks and output --------------------------------------------------------------------
def check_render(text: str, sustained: bool = True) -> tuple[bool, str, np.ndarray | None]:
    """Load in a fresh vita.Synth and play one note: (ok, reason, mono audio). A sustained
    sound must still sound 0.2-0.6 s into the note."""
    import vita

    synth = vita.Synth()
    if not synth.load_json(text):
        return False, "vita refused the JSON", None
    audio = np.asarray(synth.render(60, 0.8, 1.0, 1.6), dtype=np.float32).mean(axis=0)
    if not np.all(np.isfinite(audio)):
        return False, "non-finite samples", None
    level = float(np.sqrt(np.mean(audio**2)))
    held = float(np.sqrt(np.mean(audio[int(0.2 * 44100) : int(0.6 * 44100)] ** 2)))
    if level < _SILENT_RMS or (sustained and held < _SILENT_RMS):
        return False, f"silent (rms {level:.2e}, {held:.2e} at 0.2-0.6 s)", None
    power = np.abs(np.fft.rfft(audio)) ** 2
    subsonic = float(power[np.fft.rfftfreq(audio.size, 1 / 44100) < 20].sum() / power.sum())
    if subsonic > 0.25:
        return False, f"mostly DC offset ({subsonic:.0%} of the energy below 20 Hz)", None
    return True, "", audio


def band_profile(audio: np.ndarray, bands: int = 48) -> np.ndarray:
    """A coarse log spectrum (log-spaced bands), for telling the presets apart."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2
    edges = np.unique(np.geomspace(4, spectrum.size - 1, bands + 1).astype(int))
    power = np.array([spectrum[a:b].sum() for a, b in itertools.pairwise(edges)])
    profile = np.log10(power + 1e-12)
    return profile - profile.mean()


def make_presets(out: Path, count: int = 48, seed: int = 0, verbose: bool = True) -> tuple[list[Path], list[str]]:
    """Write ``count`` presets (spread over the sound types) into ``out``; returns the files
    written and a line for each draw that failed its check (it is drawn again, up to
    ATTEMPTS times, then its slot is skipped)."""
    import vita

    out.mkdir(parents=True, exist_ok=True)
    template = json.loads(vita.Synth().to_json())
    sources = frozenset(vita.get_modulation_sources())
    destinations = frozenset(vita.get_modulation_destinations())
    written: list[Path] = []
    failed: list[str] = []
    profiles: list[tuple[str, np.ndarray]] = []
    for i in range(count):
        kind = TYPES[i % len(TYPES)]
        for attempt in range(ATTEMPTS):  # a design that fails its check is drawn again
            stem, doc = design(kind, i // len(TYPES), seed, template, sources, destinations, attempt)
            text = json.dumps(doc)
            ok, reason, audio = check_render(text, sustained=kind in SUSTAINED)
            if ok:
                break
            failed.append(f"{stem} (draw {attempt + 1}): {reason}")
        else:
            continue
        path = out / f"{stem}.vital"
        path.write_text(text)
        written.append(path)
        assert audio is not None
        profiles.append((stem, band_profile(audio)))
    if verbose:
        print(f"wrote {len(written)} of {count} presets to {out}"
              + (f"; {len(failed)} draws failed their check (drawn again, or the slot skipped after "
                 f"{ATTEMPTS}):" if failed else ""), file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        if len(profiles) > 1:
            names, matrix = zip(*profiles)
            m = np.array(matrix)
            dist = np.sqrt(((m[:, None, :] - m[None, :, :]) ** 2).mean(axis=2))
            np.fill_diagonal(dist, np.inf)
            a, b = np.unravel_index(np.argmin(dist), dist.shape)
            print(f"closest pair by coarse log spectrum: {names[a]} / {names[b]} ({dist[a, b]:.2f} decades RMS; "
                  f"median nearest {np.median(dist.min(axis=1)):.2f})", file=sys.stderr)
    return written, failed


# ---- a DX7 bank --------------------------------------------------------------------------
DX7_TYPES = ("bass", "keys", "bell", "brass", "pluck", "pad", "organ", "lead")


def dx7_voice(kind: str, number: int, seed: int, attempt: int = 0) -> Any:
    """A random but musical DX7 voice of a sound type (a ``dexed.Patch``)."""
    import dexed

    r = np.random.default_rng([seed, 100 + DX7_TYPES.index(kind), number, attempt])
    patch = dexed.Patch()
    patch.name = f"{kind[:5].upper()} {number + 1:02d}"
    patch.algorithm = 31 if kind == "organ" else int(r.integers(0, 32))
    patch.feedback = int(r.integers(4, 8)) if kind in ("lead", "brass") else int(r.integers(0, 6))
    patch.transpose = 24
    patch.osc_key_sync = bool(r.integers(0, 2))
    carriers = set(dexed.algorithms[patch.algorithm].carriers)
    def ir(low: int, high: int) -> int:
        return int(r.integers(low, high + 1))

    for index, op in enumerate(patch.op):
        carrier = index in carriers
        op.frequency_mode = 0
        if kind == "organ":
            op.frequency_coarse = [0, 1, 2, 3, 4, 6][index]
            op.output_level = ir(70, 95) if index < 3 else ir(40, 80)
        elif carrier:
            op.frequency_coarse = int(r.choice([1, 1, 1, 2, 0])) if kind != "bass" else int(r.choice([0, 1]))
            op.output_level = ir(88, 99) if index == min(carriers) else ir(70, 92)
        else:
            ratios = [1, 2, 3, 4, 5, 7, 9, 11, 14] if kind in ("bell", "keys") else [1, 1, 2, 2, 3, 4, 5]
            op.frequency_coarse = int(r.choice(ratios))
            op.output_level = ir(45, 85) if kind != "pad" else ir(35, 70)
        op.frequency_fine = ir(0, 60) if kind == "bell" and not carrier else (ir(0, 3) if r.random() < 0.3 else 0)
        op.detune = ir(4, 10)
        op.velocity_sensitivity = ir(0, 3) if carrier else ir(1, 6)
        op.rate_scaling = ir(0, 4)
        op.amp_mod_sensitivity = 0
        decay = {"bass": (45, 70), "keys": (25, 45), "bell": (18, 35), "brass": (35, 60), "pluck": (38, 55),
                 "pad": (20, 40), "organ": (99, 99), "lead": (30, 55)}[kind]
        attack = {"brass": (55, 75), "pad": (25, 45)}.get(kind, (90, 99))
        sustain = {"bass": (70, 92), "keys": (0, 55), "bell": (0, 0), "brass": (82, 95), "pluck": (0, 30),
                   "pad": (85, 99), "organ": (99, 99), "lead": (85, 99)}[kind]
        release = {"pad": (25, 45), "bell": (30, 50)}.get(kind, (50, 75))
        if not carrier and kind not in ("organ", "pad"):  # modulators close faster: the tone darkens
            decay = (min(decay[0] + 10, 99), min(decay[1] + 15, 99))
            sustain = (0, max(sustain[1] - 20, 0))
        op.envelope.rates = [ir(*attack), ir(*decay), ir(max(decay[0] - 15, 1), decay[1]), ir(*release)]
        high = ir(*sustain)
        op.envelope.levels = [99, ir(max(high, 60), 99) if kind != "bell" else ir(70, 95), high, 0]
    if kind in ("pad", "lead", "organ"):  # a gentle vibrato
        patch.lfo.speed, patch.lfo.delay = ir(30, 40), ir(20, 60)
        patch.lfo.pitch_mod_depth, patch.pitch_mod_sensitivity = ir(3, 8), ir(1, 3)
        patch.lfo.wave = "triangle"
    return patch


def dx7_check(patch: Any) -> tuple[bool, str]:
    """A voice plays a non-silent, finite note in a fresh DexedSynth."""
    import dexed

    synth = dexed.DexedSynth(sample_rate=44100)
    synth.load_patch(patch)
    audio = np.asarray(synth.render(60, 100, 1.0, 1.6), dtype=np.float32)
    if not np.all(np.isfinite(audio)):
        return False, "non-finite samples"
    level = float(np.sqrt(np.mean(audio**2)))
    return (level >= _SILENT_RMS, f"silent (rms {level:.2e})")


def make_dx7_bank(path: Path, seed: int = 0, verbose: bool = True) -> tuple[list[str], list[str]]:
    """Write a 32-voice DX7 bank (``Patch.save_to_bank``); returns the voice types in bank
    order and a line for each draw that failed its check and was drawn again."""
    import dexed

    patches, kinds, failed = [], [], []
    for i in range(32):
        kind = DX7_TYPES[i % len(DX7_TYPES)]
        for attempt in range(10):
            patch = dx7_voice(kind, i // len(DX7_TYPES), seed, attempt)
            ok, reason = dx7_check(patch)
            if ok:
                break
            failed.append(f"{patch.name.strip()} (draw {attempt + 1}): {reason}")
        else:
            raise RuntimeError(f"no playable {kind} voice in 10 draws")
        patches.append(patch)
        kinds.append(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    dexed.Patch.save_to_bank(str(path), patches)
    if verbose:
        print(f"wrote a 32-voice DX7 bank to {path}" + (f"; {len(failed)} draws redrawn" if failed else ""),
              file=sys.stderr)
    return kinds, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the .vital files into")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dx7", type=Path, default=None, help="also write a 32-voice DX7 bank (.syx) here")
    args = parser.parse_args()
    if args.dx7 is not None:
        make_dx7_bank(args.dx7, args.seed)
    written, _ = make_presets(args.out, args.count, args.seed)
    sys.exit(0 if written else 1)


if __name__ == "__main__":
    main()
