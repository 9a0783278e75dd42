"""Held synthetic tones of known spectrum, made here in numpy: the benchmarks' inputs that
hold a note (saws, squares, pulses, additive organs, filtered, driven, detuned, swept), which
decaying instrument notes do not cover. Every tone is band-limited (additive partials below
Nyquist), 44.1 kHz mono, deterministic.

    from scripts.tones import TONES, tone
    audio = tone("saw C3")             # float32, TONE_SECONDS long
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RATE = 44_100
#: Held, then released over RELEASE_SECONDS, then silence to TONE_SECONDS.
HELD_SECONDS = 1.2
RELEASE_SECONDS = 0.08
TONE_SECONDS = 2.0
ATTACK_SECONDS = 0.005


def _hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _envelope(n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    attack = np.clip(t / ATTACK_SECONDS, 0, 1)
    release = np.clip(1 - (t - HELD_SECONDS) / RELEASE_SECONDS, 0, 1)
    return attack * release


def _additive(f0: float | np.ndarray, amplitude: Callable[[np.ndarray], np.ndarray], n: int,
              phases: np.ndarray | None = None) -> np.ndarray:
    """Sum of partials k*f0 (f0 may move per sample) with amplitudes ``amplitude(k)``, each
    only while below 0.45 of the rate."""
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    top = int(0.45 * RATE / f0.min())
    k = np.arange(1, top + 1)
    gains = amplitude(k.astype(np.float64))
    out = np.zeros(n)
    for index, (harmonic, gain) in enumerate(zip(k, gains)):
        if gain == 0:
            continue
        audible = f0 * harmonic < 0.45 * RATE
        offset = 0.0 if phases is None else phases[index]
        out += np.where(audible, gain * np.sin(harmonic * phase + offset), 0.0)
    return out


def _lowpass_gains(k: np.ndarray, f0: float, cutoff: float, poles: int, resonance_db: float = 0.0) -> np.ndarray:
    """A low-pass filter's magnitude at the partials (a Butterworth-like slope of ``poles``,
    with an optional peak of ``resonance_db`` at the cutoff)."""
    ratio = k * f0 / cutoff
    gain = 1 / np.sqrt(1 + ratio ** (2 * poles))
    if resonance_db:
        gain *= 1 + (10 ** (resonance_db / 20) - 1) * np.exp(-0.5 * (np.log2(ratio) / 0.15) ** 2)
    return gain


@dataclass(frozen=True)
class Tone:
    name: str
    note: int
    make: Callable[[float, int], np.ndarray]  # (f0, samples) -> raw signal


def _saw(f0: float, n: int) -> np.ndarray:
    return _additive(f0, lambda k: 1 / k, n)


def _square(f0: float, n: int) -> np.ndarray:
    return _additive(f0, lambda k: np.where(k % 2 == 1, 1 / k, 0.0), n)


def _pulse(width: float) -> Callable[[float, int], np.ndarray]:
    return lambda f0, n: _additive(f0, lambda k: np.abs(np.sin(np.pi * k * width)) / k, n)


def _triangle(f0: float, n: int) -> np.ndarray:
    return _additive(f0, lambda k: np.where(k % 2 == 1, 1 / k**2, 0.0), n)


def _organ(f0: float, n: int) -> np.ndarray:
    """Drawbars 8' 4' 2 2/3' 2' and a quieter 1' (partials 1, 2, 3, 4, 8)."""
    levels = {1: 1.0, 2: 0.7, 3: 0.5, 4: 0.35, 8: 0.2}
    return _additive(f0, lambda k: np.array([levels.get(int(x), 0.0) for x in k]), n)


def _filtered_saw(cutoff_ratio: float, poles: int, resonance_db: float = 0.0) -> Callable[[float, int], np.ndarray]:
    return lambda f0, n: _additive(f0, lambda k: _lowpass_gains(k, f0, cutoff_ratio * f0, poles, resonance_db) / k, n)


def _driven(make: Callable[[float, int], np.ndarray], drive: float) -> Callable[[float, int], np.ndarray]:
    def driven(f0: float, n: int) -> np.ndarray:
        raw = make(f0, n)
        return np.tanh(drive * raw / np.abs(raw).max())
    return driven


def _supersaw(f0: float, n: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    cents = np.array([-25, -15, -6, 0, 6, 15, 25])
    return sum(_additive(f0 * 2 ** (c / 1200), lambda k: 1 / k, n, rng.uniform(0, 2 * np.pi, 256)) for c in cents)


def _vibrato_saw(f0: float, n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    moving = f0 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t) * np.clip(t / 0.3, 0, 1))
    return _additive(moving, lambda k: 1 / k, n)


def _swept_square(f0: float, n: int) -> np.ndarray:
    """A square through a low-pass opening from 2x to 24x f0 over the held note (frame by
    frame: the partials' gains move with the cutoff)."""
    t = np.arange(n) / RATE
    cutoff = f0 * 2 ** (1 + np.log2(12) * np.clip(t / HELD_SECONDS, 0, 1))
    top = int(0.45 * RATE / f0)
    phase = 2 * np.pi * f0 * t
    out = np.zeros(n)
    for k in range(1, top + 1, 2):
        out += np.sin(k * phase) / k / np.sqrt(1 + (k * f0 / cutoff) ** 8)
    return out


def _fm(ratio: float, index: float) -> Callable[[float, int], np.ndarray]:
    def fm(f0: float, n: int) -> np.ndarray:
        t = np.arange(n) / RATE
        return np.sin(2 * np.pi * f0 * t + index * np.sin(2 * np.pi * ratio * f0 * t))
    return fm


def _breathy(f0: float, n: int) -> np.ndarray:
    """A soft triangle with band-passed noise around its 3rd-6th partials."""
    rng = np.random.default_rng(5)
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * _band(n, 3 * f0, 6 * f0), n)
    return _triangle(f0, n) + 0.15 * noise / np.sqrt(np.mean(noise**2))


def _band(n: int, low: float, high: float) -> np.ndarray:
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    return ((freqs >= low) & (freqs <= high)).astype(float)


def _sub_bass(f0: float, n: int) -> np.ndarray:
    return _additive(f0, lambda k: np.where(k == 1, 1.0, np.where(k == 2, 0.3, np.where(k == 3, 0.08, 0.0))), n)


TONES: tuple[Tone, ...] = (
    Tone("saw C3", 48, _saw),
    Tone("square A2", 45, _square),
    Tone("low-passed square A1", 33, lambda f0, n: _additive(f0, lambda k: np.where(
        k % 2 == 1, _lowpass_gains(k, f0, 4 * f0, 2) / k, 0.0), n)),
    Tone("overdriven low-passed saw F4", 65, _driven(_filtered_saw(3.0, 2), 4.0)),
    Tone("sine E4", 64, lambda f0, n: _additive(f0, lambda k: np.where(k == 1, 1.0, 0.0), n)),
    Tone("triangle G3", 55, _triangle),
    Tone("pulse 20% D3", 50, _pulse(0.2)),
    Tone("drawbar organ C4", 60, _organ),
    Tone("resonant filtered saw A2", 45, _filtered_saw(6.0, 4, 12.0)),
    Tone("dark filtered saw D4", 62, _filtered_saw(2.0, 4)),
    Tone("supersaw C4", 60, _supersaw),
    Tone("vibrato saw B3", 59, _vibrato_saw),
    Tone("swept square G2", 43, _swept_square),
    Tone("FM tone D5", 74, _fm(2.0, 1.5)),
    Tone("breathy triangle A4", 69, _breathy),
    Tone("sub bass C2", 36, _sub_bass),
    Tone("driven square E3", 52, _driven(_square, 6.0)),
    Tone("hollow pulse 50% with 2nd G4", 67, lambda f0, n: _additive(
        f0, lambda k: np.where(k % 2 == 1, 1 / k, np.where(k == 2, 0.4, 0.0)), n)),
)
BY_NAME = {t.name: t for t in TONES}


def tone(name: str, level_rms: float = 0.1) -> np.ndarray:
    """The named tone at ``level_rms`` over its held part: float32, TONE_SECONDS at RATE."""
    spec = BY_NAME[name]
    n = int(TONE_SECONDS * RATE)
    raw = spec.make(_hz(spec.note), n)
    held = int(HELD_SECONDS * RATE)
    raw = raw / max(float(np.sqrt(np.mean(raw[:held] ** 2))), 1e-12) * level_rms
    return (raw * _envelope(n)).astype(np.float32)
