"""Fundamental-frequency estimation (YIN, de Cheveigné & Kawahara 2002), vectorised numpy.

librosa's ``yin``/``pyin`` would do, but their numba kernels cost 5-26 s on a cold cache,
more than the whole time budget of ``match``. The tests compare this with ``librosa.yin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from patchpilot.audio.dsp import frames

DEFAULT_FMIN_HZ = 30.0
DEFAULT_FMAX_HZ = 2100.0
#: Cumulative-mean-normalised difference under which a dip counts as periodic.
YIN_THRESHOLD = 0.15


def yin(
    x: np.ndarray,
    sample_rate: int,
    fmin: float = DEFAULT_FMIN_HZ,
    fmax: float = DEFAULT_FMAX_HZ,
    frame_length: int | None = None,
    hop: int = 256,
    threshold: float = YIN_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame f0 (Hz) and aperiodicity (the CMND value at the chosen lag, 0 = periodic)."""
    tau_max = min(int(math.ceil(sample_rate / fmin)), 4096)
    tau_min = max(2, int(math.floor(sample_rate / fmax)))
    if frame_length is None:
        frame_length = 1 << int(math.ceil(math.log2(2 * tau_max + 1)))
    window = frame_length - tau_max  # integration window of the difference function
    framed = frames(np.asarray(x, dtype=np.float64), frame_length, hop)
    if framed.shape[0] == 0:
        return np.zeros(0), np.ones(0)

    # Difference function d(tau) = e(0) + e(tau) - 2 r(tau), with r through the FFT.
    n_fft = 1 << int(math.ceil(math.log2(frame_length + window)))
    head = np.fft.rfft(framed[:, :window], n_fft)
    full = np.fft.rfft(framed, n_fft)
    r = np.fft.irfft(np.conj(head) * full, n_fft)[:, : tau_max + 1]
    energy = np.cumsum(np.pad(framed**2, ((0, 0), (1, 0))), axis=1)
    e_tau = energy[:, window : window + tau_max + 1] - energy[:, : tau_max + 1]
    diff = np.maximum(e_tau[:, :1] + e_tau - 2 * r, 0.0)

    # Cumulative mean normalised difference.
    taus = np.arange(tau_max + 1)
    cumulative = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(cumulative, 1e-12)

    search = cmnd[:, tau_min : tau_max]
    is_dip = np.zeros_like(search, dtype=bool)
    is_dip[:, 1:-1] = (search[:, 1:-1] < search[:, :-2]) & (search[:, 1:-1] <= search[:, 2:])
    below = is_dip & (search < threshold)
    has_dip = below.any(axis=1)
    best = np.where(has_dip, below.argmax(axis=1), search.argmin(axis=1))

    # Parabolic interpolation around the chosen lag.
    rows = np.arange(search.shape[0])
    idx = np.clip(best, 1, search.shape[1] - 2)
    a, b, c = search[rows, idx - 1], search[rows, idx], search[rows, idx + 1]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    shift = np.clip(shift, -1, 1)
    tau = tau_min + idx + shift
    f0 = sample_rate / tau
    aperiodicity = search[rows, best]
    return f0, aperiodicity


@dataclass(frozen=True)
class PitchEstimate:
    """The pitch of a note: ``hz`` is ``None`` for unpitched sounds (noise, drums)."""

    hz: float | None
    confidence: float  # 0..1: share of loud frames that are clearly periodic

    @property
    def midi(self) -> float | None:
        return None if self.hz is None else 69.0 + 12.0 * math.log2(self.hz / 440.0)


def frame_f0(x: np.ndarray, sample_rate: int, hop: int = 256,
             fmin: float = DEFAULT_FMIN_HZ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame f0 (Hz), aperiodicity and RMS level (1024-sample frames), aligned."""
    f0, aperiodicity = yin(x, sample_rate, fmin=fmin, hop=hop)
    level = np.sqrt(np.mean(frames(np.asarray(x, dtype=np.float64), 1024, hop) ** 2, axis=-1))[: f0.size]
    return f0[: level.size], aperiodicity[: level.size], level


def estimate_pitch(x: np.ndarray, sample_rate: int, max_seconds: float = 1.5, *, min_seconds: float = 0.05,
                   threshold: float = YIN_THRESHOLD) -> PitchEstimate:
    """One pitch for a note: the loudness-weighted median f0 over its periodic frames
    (aperiodicity under ``threshold``); unpitched when ``x`` is shorter than ``min_seconds``."""
    x = np.asarray(x[: int(max_seconds * sample_rate)], dtype=np.float64)
    if x.size < int(min_seconds * sample_rate):
        return PitchEstimate(None, 0.0)
    f0, aperiodicity, level = frame_f0(x, sample_rate)
    loud = level > level.max() * 10 ** (-30 / 20)
    periodic = loud & (aperiodicity < threshold)
    if loud.sum() == 0 or periodic.sum() < max(2, 0.2 * loud.sum()):
        return PitchEstimate(None, float(periodic.sum() / max(loud.sum(), 1)))
    weights = level[periodic]
    order = np.argsort(f0[periodic])
    cumulative = np.cumsum(weights[order])
    median_hz = float(f0[periodic][order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    confidence = float(periodic.sum() / loud.sum()) * float(1.0 - np.median(aperiodicity[periodic]))
    return PitchEstimate(median_hz, confidence)
