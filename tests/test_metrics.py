"""The benchmarks' yardstick in numpy (``patchpilot/metrics.py``) against the reference
implementations it follows: auraloss' MultiResolutionSTFTLoss and librosa's mel spectrograms."""

from __future__ import annotations

import numpy as np
import pytest

from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.metrics import MSS_RANGE_DB, MSS_SCALES, Yardstick, mr_stft, mss

RATE = EXPORT_SAMPLE_RATE_HZ


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    t = np.arange(int(1.3 * RATE)) / RATE
    square = np.sign(np.sin(2 * np.pi * 220 * t)) * np.exp(-t)
    sine = np.sin(2 * np.pi * 220 * t) * np.exp(-2 * t)
    noisy = 0.5 * square + 0.001 * rng.standard_normal(t.size)
    late = np.concatenate([np.zeros(300), sine[:-300]])
    return [(square, sine), (sine, square), (square, noisy), (sine, late)]


@pytest.mark.parametrize("pair", range(4))
def test_mr_stft_is_auralosss_multi_resolution_stft_loss(pair: int) -> None:
    auraloss = pytest.importorskip("auraloss")
    torch = pytest.importorskip("torch")
    reference, other = _pairs()[pair]

    def tensor(x: np.ndarray):
        return torch.from_numpy((x / np.sqrt(np.mean(x**2)) * 0.1).astype(np.float32)).reshape(1, 1, -1)

    with torch.no_grad():
        theirs = float(auraloss.freq.MultiResolutionSTFTLoss()(tensor(other), tensor(reference)))
    assert mr_stft(reference.astype(np.float32), other.astype(np.float32)) == pytest.approx(theirs, rel=1e-4)


@pytest.mark.parametrize("pair", range(4))
def test_mss_is_the_multi_scale_log_mel_distance_on_librosa(pair: int) -> None:
    librosa = pytest.importorskip("librosa")
    reference, other = (x.astype(np.float32) for x in _pairs()[pair])
    theirs = 0.0
    for window_ms, hop_ms, mels in MSS_SCALES:
        n_fft, hop = int(RATE * window_ms / 1000), int(RATE * hop_ms / 1000)
        spectra = [librosa.power_to_db(librosa.feature.melspectrogram(
            y=x, sr=RATE, n_fft=n_fft, hop_length=hop, win_length=n_fft, window="hann", n_mels=mels, power=2.0),
            ref=np.max, top_db=MSS_RANGE_DB) for x in (reference, other)]
        theirs += float(np.mean(np.abs(spectra[0] - spectra[1]))) / len(MSS_SCALES)
    assert mss(reference, other) == pytest.approx(theirs, rel=1e-3)


def test_both_ignore_loudness_and_see_timbre() -> None:
    reference, other = _pairs()[0]
    assert mr_stft(reference, 0.3 * reference) == pytest.approx(0.0, abs=1e-6)
    assert mss(reference, 0.3 * reference) == pytest.approx(0.0, abs=1e-3)
    assert mr_stft(reference, other) > 1.0 and mss(reference, other) > 10.0


def test_yardstick_scores_many_sounds_as_the_functions_do() -> None:
    pairs = _pairs()
    reference = pairs[0][0]
    yardstick = Yardstick(reference)
    for _, other in pairs:
        got = yardstick(other)
        assert got[0] == pytest.approx(mr_stft(reference, other), abs=1e-4)
        assert got[1] == pytest.approx(mss(reference, other), abs=1e-3)
    shorter = pairs[1][0][: RATE // 2]  # cut to the shorter, as the functions do
    assert yardstick(shorter) == (mr_stft(reference, shorter), mss(reference, shorter))
