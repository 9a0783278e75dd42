"""Our numpy DSP kernels against librosa's reference implementations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patchpilot.audio import dsp
from patchpilot.audio.pitch import estimate_pitch, yin
from patchpilot.synths import get_engine

librosa = pytest.importorskip("librosa")
SR = 22050


def test_power_spectrogram_matches_librosa_stft() -> None:
    x = np.random.default_rng(0).normal(size=SR).astype(np.float32)
    ours = dsp.power_spectrogram(x, 1024, 256)
    reference = np.abs(librosa.stft(x, n_fft=1024, hop_length=256, center=True, pad_mode="constant")) ** 2
    assert ours.shape == reference.T.shape
    assert np.allclose(ours, reference.T, rtol=1e-3, atol=1e-3 * reference.max())


def test_mel_filterbank_matches_librosa() -> None:
    ours = dsp.mel_filterbank(SR, 2048, 96, 20.0)
    reference = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=96, fmin=20.0)
    assert np.allclose(ours.T, reference, atol=1e-7)


def test_dct_matches_scipy() -> None:
    from scipy.fft import dct

    x = np.random.default_rng(1).normal(size=(4, 64)).astype(np.float32)
    assert np.allclose(x @ dsp.dct_matrix(64, 20), dct(x, norm="ortho", axis=-1)[:, :20], atol=1e-5)


def test_rms_envelope_matches_librosa() -> None:
    x = np.random.default_rng(2).normal(size=8000).astype(np.float32)
    ours = dsp.rms_envelope(x, 512, 128)
    reference = librosa.feature.rms(y=x, frame_length=512, hop_length=128, center=True, pad_mode="constant")[0]
    assert np.allclose(ours, reference, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("note", [33, 45, 57, 69, 81])
def test_yin_agrees_with_librosa_on_synth_notes(note: int) -> None:
    audio = get_engine("vital").render(get_engine("vital").init_preset(), note, 100, 0.8, 0.8)
    ours, _ = yin(audio, SR, fmin=30, fmax=2100)
    reference = librosa.yin(audio, fmin=30, fmax=2100, sr=SR)
    assert abs(np.median(ours) - np.median(reference)) / np.median(reference) < 0.005
    assert estimate_pitch(audio, SR).midi == pytest.approx(note, abs=0.1)


def test_pitch_of_noise_is_none() -> None:
    noise = np.random.default_rng(3).normal(size=SR).astype(np.float32) * 0.1
    assert estimate_pitch(noise, SR).hz is None


def test_a_render_identical_to_a_slow_swell_is_not_shifted_by_the_alignment() -> None:
    """A level that rises steadily fits about as well at any lag: ties must keep the
    renders where their attacks are, not shift them 150 ms."""
    from patchpilot.distance import PerceptualDistance

    rate = 22050
    t = np.arange(int(2.0 * rate)) / rate
    swell = np.sin(2 * np.pi * 220 * t) * 10 ** ((np.minimum(t, 1.5) / 1.5 * 50 - 50) / 20)
    swell += 0.3 * np.sin(2 * np.pi * 440 * t) * 10 ** ((np.minimum(t, 1.5) / 1.5 * 50 - 50) / 20)
    render = swell.astype(np.float32)
    target = (render + np.random.default_rng(0).normal(0, 1e-6, render.size)).astype(np.float32)  # not the same bits
    assert float(PerceptualDistance(rate)(target, [render])[0]) < 0.05


@pytest.mark.parametrize("preset_name", ["Test Pad", "Test Pluck"])
def test_the_same_sound_is_at_distance_zero_however_many_samples_it_is_delayed(tiny_banks: Path,
                                                                              preset_name: str) -> None:
    """The distance lines sounds up to the sample: a render, or the render delayed by a few
    samples (less than the alignment's 128-sample grid), is the same sound. Lined up on
    that grid, a pad 48 samples off its attack scored 0.11 against itself and a pluck 64
    samples late 0.10, as far as a different velocity."""
    from conftest import render_note

    from patchpilot.distance import PerceptualDistance

    note = render_note("vital", preset_name, tiny_banks, 60)
    distance = PerceptualDistance(22050)
    target = distance.prepare_target(note)
    delayed = [np.concatenate([np.zeros(shift, np.float32), note]) for shift in (0, 1, 32, 64, 97, 200)]
    assert np.abs(distance.score(target, delayed)).max() < 1e-3
