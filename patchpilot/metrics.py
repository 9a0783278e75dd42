"""The published measures the benchmarks score answers with, in numpy.

* **MR-STFT**: the multi-resolution STFT loss with auraloss' defaults (FFT sizes 1024, 2048
  and 512, hops 120, 240 and 50, Hann windows of 600, 1200 and 240 samples centred in the
  FFT, reflect padding; spectral convergence plus the mean absolute log-magnitude
  difference, averaged over the resolutions), both signals at an RMS of 0.1.
* **MSS**: the multi-scale log-mel distance in dB (Hayes et al., ISMIR 2025): mel power
  spectrograms at 10/25/100 ms windows (5/10/50 ms hops; 32/64/128 Slaney mel bands), each
  in dB re its own maximum with an 80 dB range, mean absolute difference, averaged.

Neither is the distance ``match`` ranks by (``distance.py``); they are the yardstick it is
checked against. The tests hold both to auraloss and librosa.
"""

from __future__ import annotations

import numpy as np

from patchpilot.audio.dsp import frames, mel_filterbank
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ

#: auraloss MultiResolutionSTFTLoss defaults: (n_fft, hop, window length).
MR_STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
_MR_STFT_EPS = 1e-8
#: MSS scales: (window ms, hop ms, mel bands).
MSS_SCALES = ((10, 5, 32), (25, 10, 64), (100, 50, 128))
MSS_RANGE_DB = 80.0


def _level(signal: np.ndarray, target: float = 0.1) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float64)
    level = np.sqrt(np.mean(signal**2)) if signal.size else 0.0
    return signal / max(level, 1e-9) * target


def _stft_magnitude(signal: np.ndarray, n_fft: int, hop: int, window_length: int) -> np.ndarray:
    """|STFT| as torch.stft computes it (centred, reflect padding), floored as auraloss does;
    in the signal's precision."""
    padded = np.pad(signal, n_fft // 2, mode="reflect")
    window = np.zeros(n_fft, dtype=signal.dtype)
    start = (n_fft - window_length) // 2
    window[start : start + window_length] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window_length) / window_length)
    spectrum = np.fft.rfft(frames(padded, n_fft, hop, center=False) * window, axis=-1)
    return np.sqrt(np.maximum(spectrum.real**2 + spectrum.imag**2, _MR_STFT_EPS))


def _mr_spectra(signal: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Per resolution: |STFT|, its log and its norm, of a levelled signal."""
    out = []
    for n_fft, hop, window_length in MR_STFT_RESOLUTIONS:
        magnitude = _stft_magnitude(signal, n_fft, hop, window_length)
        out.append((magnitude, np.log(magnitude), float(np.linalg.norm(magnitude))))
    return out


def _mr_compare(reference: list[tuple[np.ndarray, np.ndarray, float]], other: np.ndarray) -> float:
    total = 0.0
    for (y, log_y, norm_y), (n_fft, hop, window_length) in zip(reference, MR_STFT_RESOLUTIONS, strict=True):
        x = _stft_magnitude(other, n_fft, hop, window_length)
        total += float(np.linalg.norm(y - x)) / norm_y + float(np.mean(np.abs(log_y - np.log(x))))
    return total / len(MR_STFT_RESOLUTIONS)


def mr_stft(reference: np.ndarray, other: np.ndarray) -> float:
    """MR-STFT of ``other`` against ``reference`` (mono, any rate; cut to the shorter)."""
    length = min(np.size(reference), np.size(other))
    return _mr_compare(_mr_spectra(_level(np.ravel(reference)[:length])), _level(np.ravel(other)[:length]))


def _mel_db(signal: np.ndarray, rate: int, window_ms: int, hop_ms: int, mels: int) -> np.ndarray:
    n_fft, hop = int(rate * window_ms / 1000), int(rate * hop_ms / 1000)
    framed = frames(signal.astype(np.float32), n_fft, hop)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spectrum = np.fft.rfft(framed * window, axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2) @ mel_filterbank(rate, n_fft, mels)
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    db -= 10.0 * np.log10(max(float(power.max()), 1e-10))
    return np.maximum(db, db.max() - MSS_RANGE_DB)


def _mss_spectra(signal: np.ndarray, rate: int) -> list[np.ndarray]:
    return [_mel_db(signal, rate, *scale) for scale in MSS_SCALES]


def _mss_compare(reference: list[np.ndarray], other: list[np.ndarray]) -> float:
    return sum(float(np.mean(np.abs(a - b))) for a, b in zip(reference, other, strict=True)) / len(reference)


def mss(reference: np.ndarray, other: np.ndarray, rate: int = EXPORT_SAMPLE_RATE_HZ) -> float:
    """MSS in dB of ``other`` against ``reference`` (mono, same rate; cut to the shorter).
    Each is referenced to its own maximum, so overall loudness does not count."""
    length = min(np.size(reference), np.size(other))
    return _mss_compare(_mss_spectra(np.ravel(reference)[:length], rate), _mss_spectra(np.ravel(other)[:length], rate))


class Yardstick:
    """Both measures of many sounds against one reference, whose spectra are computed once.
    ``float32`` (the default) is about twice as fast as the float64 of :func:`mr_stft` and
    agrees with it to about 1e-5; a sound shorter than the reference is scored by the
    functions (cut to the shorter)."""

    def __init__(self, reference: np.ndarray, rate: int = EXPORT_SAMPLE_RATE_HZ, dtype: type = np.float32) -> None:
        self.reference = np.ravel(reference)
        self.rate = rate
        self._dtype = dtype
        self._mr = _mr_spectra(_level(self.reference).astype(dtype))
        self._mss = _mss_spectra(self.reference, rate)

    def __call__(self, other: np.ndarray) -> tuple[float, float]:
        """(MR-STFT, MSS dB) of ``other`` against the reference."""
        other = np.ravel(other)
        if other.size < self.reference.size:
            return mr_stft(self.reference, other), mss(self.reference, other, self.rate)
        other = other[: self.reference.size]
        return (_mr_compare(self._mr, _level(other).astype(self._dtype)),
                _mss_compare(self._mss, _mss_spectra(other, self.rate)))
