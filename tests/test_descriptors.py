"""Sound descriptors on synthetic notes: each one moves the way its name says."""

from __future__ import annotations

import numpy as np
import pytest

from patchpilot.audio.descriptors import DESCRIBE_NOTE_SECONDS, DESCRIBE_RENDER_SECONDS, DESCRIPTORS, describe

SR = 22050
T = np.arange(int(DESCRIBE_RENDER_SECONDS * SR)) / SR
HELD = T < DESCRIBE_NOTE_SECONDS


def harmonic(f0: float, amplitudes: dict[float, float] | None = None, count: int = 40,
             slope: float = 1.0) -> np.ndarray:
    """A sum of partials (ratio -> amplitude; by default a saw-like 1/k^slope series)."""
    amplitudes = amplitudes or {k: 1.0 / k**slope for k in range(1, count + 1)}
    rng = np.random.default_rng(1)
    out = sum(a * np.sin(2 * np.pi * f0 * r * T + rng.uniform(0, 2 * np.pi))
              for r, a in amplitudes.items() if f0 * r < SR / 2)
    return 0.2 * out / np.max(np.abs(out))


def gated(signal: np.ndarray, attack: float = 0.005, decay: float | None = None) -> np.ndarray:
    """Note on for DESCRIBE_NOTE_SECONDS with a linear attack and an optional exponential decay."""
    envelope = np.minimum(T / attack, 1.0) * HELD
    if decay is not None:
        envelope = envelope * np.exp(-T / decay)
    return (signal * envelope).astype(np.float32)


def value(audio: np.ndarray, name: str) -> float:
    return float(describe(audio, SR)[DESCRIPTORS.index(name)])


def test_brightness_follows_the_harmonic_slope() -> None:
    saw = gated(harmonic(262, slope=1.0))
    dull = gated(harmonic(262, slope=3.0))
    assert value(saw, "brightness") > value(dull, "brightness") + 1.0  # log2 Hz: over an octave apart


def test_plucky_notes_have_fast_attacks_and_no_sustain() -> None:
    pluck = gated(harmonic(262), attack=0.003, decay=0.15)
    pad = gated(harmonic(262), attack=0.6)
    assert value(pluck, "attack") < value(pad, "attack") - 1.0  # log10 s
    assert value(pluck, "sustain") < value(pad, "sustain") - 20.0  # dB


def test_noise_is_noisier_than_a_tone() -> None:
    rng = np.random.default_rng(0)
    noise = gated(0.1 * rng.standard_normal(T.size))
    tone = gated(harmonic(262))
    assert value(noise, "noisiness") > value(tone, "noisiness") + 1.0


def test_clipping_adds_grit() -> None:
    sine = harmonic(262, {1: 1.0, 2: 0.3})
    clipped = np.clip(sine * 8, -0.2, 0.2)
    assert value(gated(clipped), "grit") > value(gated(sine), "grit") + 1.0


def test_register_is_the_sounding_pitch() -> None:
    low, high = gated(harmonic(65.4)), gated(harmonic(523.3))
    assert value(low, "register") == pytest.approx(36, abs=0.5)
    assert value(high, "register") == pytest.approx(72, abs=0.5)


def test_a_wobbling_filter_is_movement() -> None:
    static = gated(harmonic(262))
    lfo = 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * T)
    moving = gated(lfo * harmonic(262, slope=1.0) + (1 - lfo) * harmonic(262, slope=3.0))
    assert value(moving, "movement") > value(static, "movement") + 0.5


def test_decorrelated_channels_are_wide_and_mono_is_narrow() -> None:
    left, right = gated(harmonic(262)), gated(harmonic(263.5))
    assert value(np.stack([left, right]), "width") > -10.0
    assert value(left, "width") == -60.0


def test_inharmonic_partials_are_metallic_and_odd_harmonics_hollow() -> None:
    bell = gated(harmonic(262, {1: 1.0, 2.45: 0.8, 4.6: 0.6, 6.4: 0.4}), decay=0.8)
    string = gated(harmonic(262, {1: 1.0, 2: 0.8, 3: 0.6, 4: 0.4}), decay=0.8)
    assert value(bell, "inharmonicity") > value(string, "inharmonicity") + 10.0
    square = gated(harmonic(262, {k: 1.0 / k for k in range(1, 40, 2)}))
    saw = gated(harmonic(262))
    assert value(square, "hollowness") > value(saw, "hollowness") + 10.0


def test_silence_describes_as_nan() -> None:
    assert np.isnan(describe(np.zeros(T.size, np.float32), SR)).all()
