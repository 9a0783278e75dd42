"""The re-ranker's distance hears the whole sound: held notes as well as decaying ones, every
harmonic, velocity's change of timbre; and it forgives a recording's noise.

Every comparison goes through the distance as ``match`` uses it (a prepared target against
candidate renders, at the analysis rate), and the labels through ``confidence_label``.
"""

from __future__ import annotations

import numpy as np
import pytest

from patchpilot.confidence import CLOSE_MAX_DISTANCE, confidence_label
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.distance import PerceptualDistance, estimate_noise
from patchpilot.synths import get_engine

RATE = ANALYSIS_SAMPLE_RATE_HZ
#: Held through the clip, as a sustained note cut from a recording is: no silence after it.
HELD, TOTAL = 1.48, 1.5


def held_tone(f0: float, gains: dict[int, float] | None = None, amplitude=lambda k: 1.0 / k,
              seconds: float = TOTAL) -> np.ndarray:
    """A held tone: partials k*f0 with ``amplitude(k)`` (times ``gains[k]`` where given),
    5 ms attack, held HELD s, released over the last 20 ms."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for k in range(1, int(0.45 * RATE / f0) + 1):
        out += amplitude(k) * (gains or {}).get(k, 1.0) * np.sin(2 * np.pi * k * f0 * t + 0.3 * k)
    envelope = np.clip(t / 0.005, 0, 1) * np.clip(1 - (t - HELD) / 0.02, 0, 1)
    return (0.1 * out / np.sqrt(np.mean(out[: int(HELD * RATE)] ** 2)) * envelope).astype(np.float32)


def with_noise(x: np.ndarray, db: float, seed: int = 0) -> np.ndarray:
    """White noise at ``db`` under the held note's RMS, over the whole clip."""
    level = float(np.sqrt(np.mean(x[: int(HELD * RATE)].astype(np.float64) ** 2)))
    return (x + np.random.default_rng(seed).normal(0, level * 10 ** (db / 20), x.size)).astype(np.float32)


def distances(target: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    return PerceptualDistance(RATE)(target, candidates)


C3 = 130.81


def test_cutting_the_upper_harmonics_moves_a_held_tone_further_with_every_10_db() -> None:
    """A steady saw against itself with every harmonic above the 2nd cut by 10, 20, 30 and
    40 dB: strictly increasing distances, and none from 20 dB on is ``close`` (the old
    per-band floor heard none of it: a held note's quietest level over time is the note)."""
    saw = held_tone(C3)
    cuts = [held_tone(C3, {k: 10 ** (-db / 20) for k in range(3, 200)}) for db in (10, 20, 30, 40)]
    found = distances(saw, cuts)
    assert np.all(np.diff(found) > 0), found
    assert [confidence_label(d) for d in found[1:]] == ["similar"] * 3 or all(
        confidence_label(d) != "close" for d in found[1:]), found
    assert confidence_label(float(found[2])) != "close"


def test_a_saw_a_square_and_a_sine_at_the_same_pitch_are_far_apart() -> None:
    saw = held_tone(C3)
    square = held_tone(C3, amplitude=lambda k: 1.0 / k if k % 2 else 0.0)
    sine = held_tone(C3, amplitude=lambda k: 1.0 if k == 1 else 0.0)
    pairs = {"saw-square": distances(saw, [square])[0], "saw-sine": distances(saw, [sine])[0],
             "square-sine": distances(square, [sine])[0], "sine-saw": distances(sine, [saw])[0]}
    assert all(d > 2 * CLOSE_MAX_DISTANCE for d in pairs.values()), pairs
    # a sine is further from a saw than a square is (it lacks every harmonic, the square half)
    assert pairs["saw-sine"] > pairs["saw-square"], pairs


def test_a_dx7_note_at_velocity_12_is_far_from_the_same_note_at_100_when_its_timbre_changes() -> None:
    """A DX7 voice whose modulator follows velocity: at 12 it is a near-sine, at 100 bright.
    Loudness is normalised away; the timbre is not."""
    engine = get_engine("dexed")
    preset = engine.make_preset("VELO EP", {"algorithm": "5", "op2_output_level": 85, "op2_velocity_sens": 7,
                                            "op1_eg_rate_2": 30, "op1_eg_level_3": 80})
    soft, hard = (engine.render(preset, 48, velocity, HELD, TOTAL) for velocity in (12, 100))
    from patchpilot.audio.dsp import power_spectrogram

    def centroid(x: np.ndarray) -> float:
        spectrum = power_spectrogram(x, 2048, 512).mean(axis=0)
        return float((spectrum * np.arange(spectrum.size)).sum() / spectrum.sum() * RATE / 2048)

    assert centroid(hard) > 1.5 * centroid(soft)  # the fixture's timbre does change
    found = distances(hard, [soft])[0]
    assert confidence_label(float(found)) != "close", found
    assert distances(hard, [hard])[0] < 0.05


@pytest.mark.parametrize("db", [-45, -30])
def test_a_clean_tone_is_close_to_itself_recorded_with_noise(db: float) -> None:
    """The input carries white noise; the clean render of the same sound is still ``close``
    and nearer than the render with its upper harmonics 10 dB down."""
    saw = held_tone(C3)
    noisy = with_noise(saw, db)
    cut = held_tone(C3, {k: 10 ** (-10 / 20) for k in range(3, 200)})
    clean, darker = distances(noisy, [saw, cut])
    assert confidence_label(float(clean)) == "close", clean
    assert clean < darker


def test_a_decaying_note_with_noise_is_close_to_its_clean_render(tiny_banks) -> None:
    from conftest import render_note

    pluck = render_note("dexed", "Test Bell", tiny_banks, 57, seconds=1.0, tail=0.8)
    noisy = with_noise(pluck, -30, seed=2)
    assert confidence_label(float(distances(noisy, [pluck])[0])) == "close"


def test_the_noise_estimate_reads_white_noise_within_2_db_and_a_clean_tone_far_under_it() -> None:
    rng = np.random.default_rng(4)
    sigma = 0.01
    # a held tone 30 dB over white noise, with half a second of the noise alone either side
    tone = held_tone(C3, seconds=1.0)
    tone *= sigma * 10 ** (30 / 20) / float(np.sqrt(np.mean(tone**2)))
    clip = np.concatenate([np.zeros(RATE // 2), tone, np.zeros(RATE // 2)]).astype(np.float32)
    clip += rng.normal(0, sigma, clip.size).astype(np.float32)
    noise = estimate_noise(clip, RATE, note=(RATE // 2, RATE // 2 + tone.size))
    density = 2 * sigma**2 / RATE  # white noise, one-sided per Hz
    middle = (noise.frequencies > 200) & (noise.frequencies < 10_000)
    assert np.all(np.abs(10 * np.log10(noise.density[middle] / density)) < 2.5)
    assert abs(10 * np.log10(noise.variance() / sigma**2)) < 2.0
    saw = held_tone(C3)  # nothing between its partials: its "noise" lies 40 dB and more under it
    assert 10 * np.log10(max(estimate_noise(saw, RATE).variance(), 1e-30) / np.mean(saw**2)) < -40


def test_a_sound_made_of_noise_is_heard_not_floored_away() -> None:
    """White noise or a click train has no quiet stretch and nothing between partials: the
    estimate must not take the sound itself for the recording's noise (then every candidate
    is floored to the same and a click train is ``close`` to a held square)."""
    rng = np.random.default_rng(5)
    t = np.arange(int(TOTAL * RATE)) / RATE
    envelope = np.clip(t / 0.005, 0, 1) * np.clip(1 - (t - HELD) / 0.02, 0, 1)
    white, other_white = ((0.1 * rng.normal(size=t.size) * envelope).astype(np.float32) for _ in range(2))
    brown = np.cumsum(rng.normal(size=t.size))
    brown = (0.1 * (brown - np.convolve(brown, np.ones(200) / 200, mode="same")) * envelope).astype(np.float32)
    clicks = ((np.sin(2 * np.pi * 13 * t) > 0.995) * envelope).astype(np.float32)
    square = held_tone(C3, amplitude=lambda k: 1.0 / k if k % 2 else 0.0)
    near, darker, tone = distances(white, [other_white, brown, square])
    assert near < min(darker, tone), (near, darker, tone)
    assert confidence_label(float(tone)) != "close"
    assert confidence_label(float(distances(clicks, [square])[0])) != "close"
    assert confidence_label(float(distances(square, [clicks])[0])) != "close"


def coloured_noise(seed: int, corner_hz: float) -> np.ndarray:
    """A held breath of noise, low-passed (12 dB an octave) from ``corner_hz``: a new draw each play."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(TOTAL * RATE)) / RATE
    spectrum = np.fft.rfft(rng.normal(size=t.size)) / (1 + (np.fft.rfftfreq(t.size, 1 / RATE) / corner_hz) ** 2)
    x = np.fft.irfft(spectrum, t.size)
    envelope = np.clip(t / 0.05, 0, 1) * np.clip(1 - (t - HELD) / 0.02, 0, 1)
    return (0.1 * x / x.std() * envelope).astype(np.float32)


def test_two_plays_of_one_noise_sound_are_nearer_each_other_than_to_a_brighter_or_darker_one() -> None:
    """Each play of a breath, a hi-hat or a random-phase unison draws new noise: frame by
    frame every STFT bin's power then scatters (exponentially) around the same spectrum.
    The distance must hear the spectrum, not the draw: two plays are well nearer than the
    same breath an octave brighter or darker (frame by frame they were 0.79 of it)."""
    same = distances(coloured_noise(0, 2000.0), [coloured_noise(s, 2000.0) for s in (1, 2)])
    other = distances(coloured_noise(0, 2000.0), [coloured_noise(3, 4000.0), coloured_noise(4, 1000.0)])
    assert same.max() < 0.65 * other.min(), (same, other)
