"""Small numpy DSP kernels shared by analysis, embedding and the perceptual distance.

Why not librosa here: importing ``librosa.core`` compiles numba kernels, 16 s on a cold
cache and 1.4 s warm on the target machine, which alone would break the 3-second budget of
``patchpilot match``. These kernels are numpy-only, batched over leading axes, and the tests
check them against librosa's reference implementations.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

EPS = 1e-10


@lru_cache(maxsize=16)
def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (as librosa/scipy ``get_window('hann', n, fftbins=True)``)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def frames(x: np.ndarray, frame_length: int, hop: int, center: bool = True) -> np.ndarray:
    """Frame the last axis: ``(..., T) -> (..., n_frames, frame_length)`` (a view when possible).

    With ``center`` the signal is zero-padded by half a frame on both sides, so frame ``i``
    is centred on sample ``i * hop`` (librosa's convention with ``pad_mode='constant'``).
    """
    if center:
        pad = [(0, 0)] * (x.ndim - 1) + [(frame_length // 2, frame_length // 2)]
        x = np.pad(x, pad)
    if x.shape[-1] < frame_length:
        pad = [(0, 0)] * (x.ndim - 1) + [(0, frame_length - x.shape[-1])]
        x = np.pad(x, pad)
    windows = np.lib.stride_tricks.sliding_window_view(x, frame_length, axis=-1)
    return windows[..., ::hop, :]


def power_spectrogram(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 with a Hann window: ``(..., T) -> (..., n_frames, n_fft // 2 + 1)``."""
    framed = frames(np.asarray(x, dtype=np.float32), n_fft, hop) * hann(n_fft)
    spectrum = np.fft.rfft(framed, axis=-1)
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-9) / min_log_hz) / logstep, hz / f_sp)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters, ``(n_fft // 2 + 1, n_mels)`` (transposed librosa)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return np.ascontiguousarray(weights.T.astype(np.float32))


@lru_cache(maxsize=8)
def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II basis, ``(n_in, n_out)``: ``x @ D`` = ``scipy.fft.dct(x, norm='ortho')[:n_out]``."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def log_mel(x: np.ndarray, sample_rate: int, n_fft: int, hop: int, n_mels: int, fmin: float = 0.0) -> np.ndarray:
    """Natural-log mel power spectrogram ``(..., n_frames, n_mels)``."""
    mel = power_spectrogram(x, n_fft, hop) @ mel_filterbank(sample_rate, n_fft, n_mels, fmin)
    return np.log(mel + EPS)


def rms_envelope(x: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Frame RMS ``(..., n_frames)`` with centred frames."""
    framed = frames(np.asarray(x, dtype=np.float32), frame_length, hop)
    return np.sqrt(np.mean(framed.astype(np.float64) ** 2, axis=-1)).astype(np.float32)


def amplitude_to_db(x: np.ndarray, floor: float = 1e-10) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(x, floor))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def normalise_rms(x: np.ndarray, target: float = 0.1) -> np.ndarray:
    """Scale to a given RMS (silence stays silence)."""
    level = rms(x)
    return (x * (target / level)).astype(np.float32) if level > 1e-9 else np.asarray(x, dtype=np.float32)
