"""Wavetables and LFO shapes that Patch Pilot's Vital presets choose from.

Vital's init preset has a single saw keyframe, so ``wave_frame`` does nothing until a preset
loads a table with several keyframes. These tables are generated here (additive synthesis,
deterministic) and written into each preset's JSON, so every exported ``.vital`` file carries
its own tables and loads the same sound in Vital.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import lru_cache

import numpy as np

#: Samples in one Vital wavetable frame.
FRAME_SIZE = 2048
#: Highest keyframe position in a Vital wavetable.
LAST_POSITION = 255
#: Harmonics used by the additive generators (Vital band-limits frames itself).
_HARMONICS = 256

_PHASE = np.arange(FRAME_SIZE, dtype=np.float64) / FRAME_SIZE


def _additive(amplitudes: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """One cycle from harmonic amplitudes (index 0 = fundamental)."""
    k = np.arange(1, len(amplitudes) + 1)[:, None]
    ph = np.zeros((len(amplitudes), 1)) if phases is None else phases[:, None]
    return (amplitudes[:, None] * np.sin(2 * np.pi * k * _PHASE[None, :] + ph)).sum(axis=0)


def _series(kind: str, count: int = _HARMONICS) -> np.ndarray:
    k = np.arange(1, count + 1, dtype=np.float64)
    if kind == "saw":
        return 1.0 / k
    if kind == "square":
        return np.where(k % 2 == 1, 1.0 / k, 0.0)
    if kind == "triangle":
        signs = np.where(((k - 1) // 2) % 2 == 0, 1.0, -1.0)
        return np.where(k % 2 == 1, signs / k**2, 0.0)
    raise ValueError(kind)


def _sine() -> np.ndarray:
    return np.sin(2 * np.pi * _PHASE)


def _pulse(width: float) -> np.ndarray:
    k = np.arange(1, _HARMONICS + 1, dtype=np.float64)
    # Fourier series of a pulse of the given duty cycle, with Lanczos smoothing against ringing.
    amps = (2.0 / (np.pi * k)) * np.sin(np.pi * k * width) * np.sinc(k / (_HARMONICS + 1))
    cycle = (amps[:, None] * np.cos(2 * np.pi * k[:, None] * (_PHASE[None, :] - width / 2))).sum(axis=0)
    return cycle


def _formant_cycle(formants: list[tuple[float, float, float]], reference_hz: float = 130.0) -> np.ndarray:
    """A glottal-like harmonic series shaped by formants given as (Hz, bandwidth Hz, gain dB)."""
    k = np.arange(1, 96, dtype=np.float64)
    freqs = k * reference_hz
    envelope = np.full_like(freqs, 1e-3)
    for centre, width, gain_db in formants:
        envelope += 10 ** (gain_db / 20) / (1 + ((freqs - centre) / (width / 2)) ** 2)
    return _additive(envelope / k**0.5)


_VOWELS = {  # rough formant sets (F1, F2, F3) of sung vowels
    "A": [(730, 90, 0), (1090, 110, -5), (2440, 170, -15)],
    "E": [(530, 60, 0), (1840, 100, -8), (2480, 120, -12)],
    "I": [(270, 60, 0), (2290, 100, -10), (3010, 120, -12)],
    "O": [(570, 70, 0), (840, 80, -3), (2410, 160, -20)],
    "U": [(300, 60, 0), (870, 80, -8), (2240, 140, -22)],
}


def _sync_saw(ratio: float) -> np.ndarray:
    """A hard-synced saw: the slave runs ``ratio`` times faster and resets every cycle."""
    slave_phase = (_PHASE * ratio) % 1.0
    cycle = 2 * slave_phase - 1
    # soften the reset discontinuity a little so the frame does not alias badly
    window = np.minimum(1.0, np.minimum(_PHASE, 1 - _PHASE) * 64)
    return cycle * window


def _fold(gain: float) -> np.ndarray:
    return np.sin(gain * np.sin(2 * np.pi * _PHASE))


def _organ(drawbars: dict[int, float]) -> np.ndarray:
    amps = np.zeros(16)
    for harmonic, level in drawbars.items():
        amps[harmonic - 1] = level
    return _additive(amps)


def _random_harmonics(seed: int, tilt: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(1, 65, dtype=np.float64)
    return _additive(rng.uniform(0.2, 1.0, k.size) / k**tilt, rng.uniform(0, 2 * np.pi, k.size))


def _harmonic_sweep(count: int) -> np.ndarray:
    amps = np.zeros(_HARMONICS)
    amps[:count] = 1.0 / np.arange(1, count + 1) ** 0.7
    return _additive(amps)


def _odd_even(odd_gain: float) -> np.ndarray:
    k = np.arange(1, 64, dtype=np.float64)
    return _additive(np.where(k % 2 == 1, 1.0, odd_gain) / k)


Keyframes = list[tuple[int, np.ndarray]]

#: name -> keyframe builder. Order matters: it defines the option index stored in presets
#: (new tables go at the end).
WAVETABLES: dict[str, Callable[[], Keyframes]] = {
    "Saw": lambda: [(0, _additive(_series("saw")))],
    "Sine": lambda: [(0, _sine())],
    "Triangle": lambda: [(0, _additive(_series("triangle")))],
    "Square": lambda: [(0, _additive(_series("square")))],
    "Basic Shapes": lambda: [
        (0, _sine()),
        (85, _additive(_series("triangle"))),
        (170, _additive(_series("saw"))),
        (255, _additive(_series("square"))),
    ],
    "Sine to Saw": lambda: [(0, _sine()), (255, _additive(_series("saw")))],
    "Pulse Width": lambda: [(0, _pulse(0.5)), (128, _pulse(0.25)), (255, _pulse(0.06))],
    "Harmonic Sweep": lambda: [
        (0, _harmonic_sweep(1)),
        (64, _harmonic_sweep(3)),
        (128, _harmonic_sweep(8)),
        (192, _harmonic_sweep(24)),
        (255, _harmonic_sweep(96)),
    ],
    "Hollow to Full": lambda: [(0, _odd_even(0.0)), (255, _odd_even(1.0))],
    "Vowels": lambda: [(int(i * 63.75), _formant_cycle(_VOWELS[v])) for i, v in enumerate("AEIOU")],
    "Sync Sweep": lambda: [(0, _sync_saw(1.0)), (85, _sync_saw(2.3)), (170, _sync_saw(4.1)), (255, _sync_saw(7.2))],
    "Wavefold": lambda: [(0, _fold(1.0)), (85, _fold(2.5)), (170, _fold(5.0)), (255, _fold(9.0))],
    "Organ": lambda: [
        (0, _organ({1: 1.0, 2: 0.8})),
        (85, _organ({1: 1.0, 2: 0.9, 3: 0.7, 4: 0.6})),
        (170, _organ({1: 0.8, 2: 1.0, 3: 0.8, 4: 0.8, 6: 0.6, 8: 0.6})),
        (255, _organ({1: 0.7, 2: 0.8, 3: 0.9, 4: 0.9, 5: 0.6, 6: 0.8, 8: 0.9, 10: 0.5, 12: 0.6, 16: 0.5})),
    ],
    "Digital Harmonics": lambda: [(0, _random_harmonics(7, 1.0)), (255, _random_harmonics(11, 0.4))],
}

#: Option 0 of every ``osc_N_wavetable`` parameter: keep the table stored in the preset
#: (Vital's init saw for our own presets, the user's own table for imported ones).
PRESET_TABLE = "From Preset"
WAVETABLE_OPTIONS = (PRESET_TABLE, *WAVETABLES)


def _encode_frame(cycle: np.ndarray) -> str:
    cycle = cycle - cycle.mean()
    peak = np.abs(cycle).max()
    if peak > 0:
        cycle = cycle / peak
    return base64.b64encode(cycle.astype("<f4").tobytes()).decode("ascii")


@lru_cache(maxsize=None)
def keyframe_count(name: str) -> int:
    return len(WAVETABLES[name]())


@lru_cache(maxsize=None)
def wavetable_json(name: str) -> str:
    """Vital's JSON for the named table, serialised once per process."""
    keyframes = [{"position": pos, "wave_data": _encode_frame(cycle)} for pos, cycle in WAVETABLES[name]()]
    table = {
        "author": "Patch Pilot",
        "full_normalize": True,
        "groups": [
            {
                "components": [
                    {"interpolation": 1, "interpolation_style": 1, "keyframes": keyframes, "type": "Wave Source"}
                ]
            }
        ],
        "name": name,
        "remove_all_dc": True,
        "version": "1.5.5",
    }
    return json.dumps(table)


# ---- LFO shapes ---------------------------------------------------------------------------
# Vital stores a shape as points (x, y) with y = 0 at the top of the editor (output 1.0).
_LFO_POINTS: dict[str, tuple[list[float], bool]] = {
    "Triangle": ([0.0, 1.0, 0.5, 0.0, 1.0, 1.0], False),
    "Sine": ([0.0, 1.0, 0.5, 0.0, 1.0, 1.0], True),
    "Saw Down": ([0.0, 0.0, 1.0, 1.0], False),
    "Saw Up": ([0.0, 1.0, 1.0, 0.0], False),
    "Square": ([0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 1.0, 1.0], False),
}
PRESET_SHAPE = "From Preset"
LFO_SHAPE_OPTIONS = (PRESET_SHAPE, *_LFO_POINTS)


def lfo_shape(name: str) -> dict:
    points, smooth = _LFO_POINTS[name]
    count = len(points) // 2
    return {"name": name, "num_points": count, "points": list(points), "powers": [0.0] * count, "smooth": smooth}


@lru_cache(maxsize=1)
def noise_sample_json(seed: int = 1234) -> str:
    """A fixed white-noise sample. Vital's own is random per instance (renders would differ)."""
    rng = np.random.default_rng(seed)
    samples = (rng.uniform(-1, 1, 44100) * 32767 * 0.5).astype("<i2")
    data = base64.b64encode(samples.tobytes()).decode("ascii")
    return json.dumps({"length": 44100, "name": "White Noise", "sample_rate": 44100, "samples": data})
