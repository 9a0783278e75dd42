"""The built-in timbre embedder: designed features, no downloaded weights.

A note is described over four windows of its first half second after the attack
(0-40 ms, 40-120 ms, 120-250 ms, 250-500 ms) by
* a pitch-invariant spectral shape: the log-frequency spectrum's modulation (the modulus
  of its Fourier transform along log frequency). Transposing a note shifts its
  log-frequency spectrum, which leaves this modulus unchanged, and needs no pitch
  estimate (estimates jump octaves on FM and detuned sounds);
* a smooth spectral envelope on an absolute axis (MFCC 1-12: filters and formants);
* spectral centroid and flatness, computed on a floored spectrum so background noise at
  -30 dB does not move them;
* the window's level;
plus the amplitude envelope at eight times up to 0.45 s and how much level and brightness
wobble (LFOs) between 0.1 and 0.5 s.

Only the first half second is used: the index renders every preset with a held note, and
a query's note is usually at least that long, so both describe the same audio whatever
the query's note length. Between indexed pitches the index interpolates (``index.search``).
How these choices were measured: ``docs/EMBEDDER.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from patchpilot.audio.dsp import EPS, amplitude_to_db, dct_matrix, mel_filterbank, power_spectrogram, rms_envelope
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.distance import attack_start
from patchpilot.embed.base import Embedder

WINDOWS_SECONDS = ((0.0, 0.04), (0.04, 0.12), (0.12, 0.25), (0.25, 0.5))
ENVELOPE_TIMES_SECONDS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.3, 0.45)
#: Audio a note needs for its features, counted from its attack.
REQUIRED_SECONDS = 0.6
#: The attack is where the level first comes within ALIGN_THRESHOLD_DB of the loudest
#: point of the first ALIGN_SEARCH_SECONDS (high enough to stay above -30 dB noise), and
#: is taken at most MAX_ALIGN_SHIFT_SECONDS into the note.
ALIGN_SEARCH_SECONDS = 0.6
ALIGN_THRESHOLD_DB = -20.0
MAX_ALIGN_SHIFT_SECONDS = 0.25
N_FFT = 2048
HOP = 256
N_MELS = 64
N_MFCC = 12
#: Log-frequency grid of the shape features: 36 bins per octave from 55 Hz to 10 kHz.
LOG_BINS_PER_OCTAVE = 36
LOG_FMIN_HZ, LOG_FMAX_HZ = 55.0, 10000.0
N_SHAPE = 40
SHAPE_FLOOR_DB = -60.0
MFCC_FLOOR = 1e-5  # relative to the window's power
SPECTRAL_FLOOR_DB = -40.0
ENVELOPE_FLOOR_DB = -60.0
MOVEMENT_SECONDS = (0.1, 0.5)

#: Relative weight of each block after per-dimension standardisation.
BLOCK_WEIGHTS = {"shape": 1.0, "mfcc": 0.15, "spectral": 0.8, "level": 0.7, "envelope": 1.0, "movement": 0.5}


@lru_cache(maxsize=4)
def _log_frequency_grid(sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-bin index and interpolation weight for each log-frequency bin."""
    bins_hz = np.linspace(0, sample_rate / 2, N_FFT // 2 + 1)
    count = int(LOG_BINS_PER_OCTAVE * np.log2(LOG_FMAX_HZ / LOG_FMIN_HZ))
    log_hz = LOG_FMIN_HZ * 2 ** (np.arange(count) / LOG_BINS_PER_OCTAVE)
    position = log_hz / (bins_hz[1] - bins_hz[0])
    lower = np.floor(position).astype(int)
    return lower, position - lower, bins_hz


class TimbreEmbedder(Embedder):
    name = "timbre"
    version = "1"
    fits_projection = True

    def __init__(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> None:
        self.sample_rate = sample_rate

    @staticmethod
    def blocks() -> dict[str, int]:
        """Feature blocks and their sizes, in vector order."""
        w = len(WINDOWS_SECONDS)
        return {"shape": N_SHAPE * w, "mfcc": N_MFCC * w, "spectral": 2 * w, "level": w,
                "envelope": len(ENVELOPE_TIMES_SECONDS), "movement": 2}

    @classmethod
    def dim(cls) -> int:
        return sum(cls.blocks().values())

    @classmethod
    def block_weights(cls) -> np.ndarray:
        """Per-dimension weights giving each block the total weight in BLOCK_WEIGHTS."""
        return np.concatenate([np.full(n, BLOCK_WEIGHTS[b] / np.sqrt(n)) for b, n in cls.blocks().items()])

    def features(self, notes: Sequence[np.ndarray], pitches_hz: Sequence[float | None] | None = None) -> np.ndarray:
        """Raw features ``(n, dim)``. Pitches are not needed by this embedder."""
        sr = self.sample_rate
        batch, lengths = self._aligned_batch(notes)
        power = power_spectrogram(batch, N_FFT, HOP)  # (n, frames, bins)
        windows = self._window_means(power, lengths)  # (n, w, bins)
        total = windows.sum(axis=2) + EPS
        n = len(notes)

        lower, frac, bins_hz = _log_frequency_grid(sr)
        log_spectrum = windows[..., lower] * (1 - frac) + windows[..., lower + 1] * frac
        shape_db = 10 * np.log10(log_spectrum / (log_spectrum.max(axis=2, keepdims=True) + EPS) + 1e-12)
        shape = np.maximum(shape_db, SHAPE_FLOOR_DB) / -SHAPE_FLOOR_DB + 1.0
        modulation = np.abs(np.fft.rfft(shape, axis=2))[..., 1 : N_SHAPE + 1] * (10.0 / shape.shape[2])

        mel = windows @ mel_filterbank(sr, N_FFT, N_MELS, 20.0)
        log_mel = np.log(np.maximum(mel, total[..., None] * MFCC_FLOOR))
        mfcc = (log_mel @ dct_matrix(N_MELS, N_MFCC + 1))[..., 1:] / 10.0

        floored = np.maximum(windows, windows.max(axis=2, keepdims=True) * 10 ** (SPECTRAL_FLOOR_DB / 10) + EPS)
        centroid = (floored @ bins_hz) / floored.sum(axis=2)
        band = bins_hz <= 8000
        flatness = np.exp(np.mean(np.log(floored[..., band]), axis=2)) / np.mean(floored[..., band], axis=2)
        spectral = np.stack([np.log2(np.maximum(centroid, 20.0) / 1000.0), np.log10(flatness + 1e-6)], axis=2)
        level = np.log10(total) - np.log10(total.max(axis=1, keepdims=True))

        envelope, movement = self._envelope_features(batch, lengths, power, bins_hz)
        parts = {
            "shape": modulation.reshape(n, -1),
            "mfcc": mfcc.reshape(n, -1),
            "spectral": spectral.reshape(n, -1),
            "level": level,
            "envelope": envelope,
            "movement": movement,
        }
        features = np.concatenate([parts[b] for b in self.blocks()], axis=1).astype(np.float32)
        return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0)  # near-silent notes

    def _aligned_batch(self, notes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Notes cut from their attack, loudness-normalised, zero-padded to REQUIRED_SECONDS."""
        sr = self.sample_rate
        size = int(REQUIRED_SECONDS * sr)
        batch = np.zeros((len(notes), size), dtype=np.float32)
        lengths = np.zeros(len(notes))
        for row, note in enumerate(notes):
            note = np.asarray(note, dtype=np.float32)
            start = min(attack_start(note[: int(ALIGN_SEARCH_SECONDS * sr)], sr, ALIGN_THRESHOLD_DB),
                        int(MAX_ALIGN_SHIFT_SECONDS * sr))
            piece = note[start : start + size]
            batch[row, : piece.size] = piece
            lengths[row] = piece.size / sr
        levels = np.sqrt(np.mean(batch[:, : int(0.5 * sr)].astype(np.float64) ** 2, axis=1))
        batch *= (0.1 / np.maximum(levels, 1e-9))[:, None].astype(np.float32)
        return batch, lengths

    def _window_means(self, power: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Mean power spectrum per window; windows a short note does not reach repeat its last one."""
        frame_times = np.arange(power.shape[1]) * HOP / self.sample_rate
        out = np.zeros((power.shape[0], len(WINDOWS_SECONDS), power.shape[2]), dtype=np.float64)
        for w, (start, stop) in enumerate(WINDOWS_SECONDS):
            out[:, w] = power[:, (frame_times >= start) & (frame_times < stop)].mean(axis=1)
        for row, length in enumerate(lengths):
            reached = [w for w, (start, _) in enumerate(WINDOWS_SECONDS) if start < max(length, 1e-3)]
            last = reached[-1] if reached else 0
            out[row, last + 1 :] = out[row, last]
        return out

    def _envelope_features(
        self, batch: np.ndarray, lengths: np.ndarray, power: np.ndarray, bins_hz: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        sr = self.sample_rate
        hop = 128
        env_db = amplitude_to_db(rms_envelope(batch, 512, hop))
        env_db = np.maximum(env_db - env_db.max(axis=1, keepdims=True), ENVELOPE_FLOOR_DB)
        times = np.arange(env_db.shape[1]) * hop / sr
        frame_times = np.arange(power.shape[1]) * HOP / sr
        floored = np.maximum(power, power.max(axis=2, keepdims=True) * 1e-4)
        log_centroid = np.log2(np.maximum((floored @ bins_hz) / np.maximum(floored.sum(axis=2), EPS), 20.0))
        envelope = np.zeros((batch.shape[0], len(ENVELOPE_TIMES_SECONDS)))
        movement = np.zeros((batch.shape[0], 2))
        start, stop = MOVEMENT_SECONDS
        for row, length in enumerate(lengths):
            usable = max(length - 0.01, 0.005)
            envelope[row] = np.interp(np.minimum(ENVELOPE_TIMES_SECONDS, usable), times, env_db[row]) / 20.0
            movement[row, 0] = _detrended_std(env_db[row], times, start, min(usable, stop)) / 6.0
            movement[row, 1] = _detrended_std(log_centroid[row], frame_times, start, min(usable, stop)) * 2.0
        return envelope, movement


def _detrended_std(values: np.ndarray, times: np.ndarray, start: float, stop: float) -> float:
    """Spread left after removing a straight line: how much a level or brightness wobbles."""
    mask = (times >= start) & (times <= stop)
    if mask.sum() < 6:
        return 0.0
    t, y = times[mask], values[mask]
    slope, intercept = np.polyfit(t, y, 1)
    return float(np.std(y - (slope * t + intercept)))
