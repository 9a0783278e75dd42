"""Sketches: a note's level in quarter-octave bands over six windows of its first 0.85 s
(a coarse spectrogram), small enough to store for every preset at every indexed note and to
score all of them for each query.

The index's vectors describe a note by pitch-invariant shape features, so presets that a
listener (and MR-STFT, MSS) hears as close can sit hundreds of places down a search by
vector. A sketch keeps what those metrics compare, the spectrum's level band by band
and how it changes over the note, at a resolution coarse enough to store (192 bytes per
note). A preset's sketch at the query's pitch is read from its two nearest indexed
notes, each shifted along the band axis by the pitch difference, blended by nearness.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from patchpilot.audio.dsp import EPS, power_spectrogram
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.distance import attack_start

#: Version of the sketch: an index's sketches are used only when it matches.
SKETCH_VERSION = "sketch/1"
BANDS_PER_OCTAVE = 4
FMIN_HZ, FMAX_HZ = 40.0, 10240.0  # 8 octaves: 32 bands
N_BANDS = int(round(BANDS_PER_OCTAVE * np.log2(FMAX_HZ / FMIN_HZ)))
#: The windows, in seconds from the attack: the attack, its decay, the body of the note.
WINDOWS_SECONDS = ((0.0, 0.03), (0.03, 0.08), (0.08, 0.16), (0.16, 0.3), (0.3, 0.5), (0.5, 0.85))
N_WINDOWS = len(WINDOWS_SECONDS)
N_FFT = 1024
HOP = 128
#: Levels are stored relative to the note's mean power, in STEP_DB steps below FLOOR_DB
#: above it (uint8: 0 is FLOOR_DB, 255 is FLOOR_DB - 127.5 dB).
STEP_DB = 0.5
CEILING_DB = 30.0
#: Levels this far under the note's loudest band-window count as that far, in both sounds
#: compared: what lies below is inaudible under the rest and mostly the synth's noise.
COMPARE_RANGE_DB = 60.0


@lru_cache(maxsize=4)
def _band_matrix(sample_rate: int) -> np.ndarray:
    """(bands, bins): each quarter-octave band's share of each STFT bin (triangular,
    overlapping neighbours; a band narrower than a bin takes the nearest bin)."""
    freqs = np.linspace(0.0, sample_rate / 2, N_FFT // 2 + 1)
    edges = FMIN_HZ * 2.0 ** (np.arange(-1, N_BANDS + 1) / BANDS_PER_OCTAVE)
    matrix = np.zeros((N_BANDS, freqs.size))
    for band in range(N_BANDS):
        low, centre, high = edges[band], edges[band + 1], edges[band + 2]
        up = (freqs - low) / (centre - low)
        down = (high - freqs) / (high - centre)
        matrix[band] = np.clip(np.minimum(up, down), 0.0, None)
        if not matrix[band].any():
            matrix[band, int(np.argmin(np.abs(freqs - centre)))] = 1.0
    return matrix


def sketch_db(samples: np.ndarray, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> np.ndarray:
    """(windows, bands) level in dB relative to the note's mean power, from its attack."""
    x = np.asarray(samples, dtype=np.float64)
    start = attack_start(x, sample_rate)
    x = x[start:start + int(WINDOWS_SECONDS[-1][1] * sample_rate) + N_FFT]
    power = _band_matrix(sample_rate) @ power_spectrogram(x, N_FFT, HOP).T  # (bands, frames)
    times = np.arange(power.shape[1]) * HOP / sample_rate
    out = np.empty((N_WINDOWS, N_BANDS))
    for w, (low, high) in enumerate(WINDOWS_SECONDS):
        inside = (times >= low) & (times < high)
        out[w] = power[:, inside].mean(axis=1) if inside.any() else EPS
    widths = np.array([high - low for low, high in WINDOWS_SECONDS])
    mean = float((out.sum(axis=1) * widths).sum() / widths.sum())
    return 10.0 * np.log10(np.maximum(out, EPS) / max(mean, EPS))


def encode(levels_db: np.ndarray) -> np.ndarray:
    """Levels in dB to the stored uint8 form."""
    return np.clip(np.round((CEILING_DB - levels_db) / STEP_DB), 0, 255).astype(np.uint8)


def decode(stored: np.ndarray) -> np.ndarray:
    """The stored uint8 form back to dB (float32)."""
    return CEILING_DB - stored.astype(np.float32) * STEP_DB


def sketch(samples: np.ndarray, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> np.ndarray:
    """A note's stored sketch: (windows, bands) uint8."""
    return encode(sketch_db(samples, sample_rate))


def shifted(levels_db: np.ndarray, semitones: np.ndarray) -> np.ndarray:
    """Sketches (n, windows, bands) in dB moved up by ``semitones`` (n,) along the band
    axis (linear interpolation; bands moved in from outside take the edge band's level)."""
    shift = np.asarray(semitones, dtype=np.float64) * BANDS_PER_OCTAVE / 12.0
    source = np.clip(np.arange(N_BANDS)[None, :] - shift[:, None], 0, N_BANDS - 1)  # where each band comes from
    lower = np.floor(source).astype(np.intp)
    upper = np.minimum(lower + 1, N_BANDS - 1)
    weight = (source - lower).astype(np.float32)[:, None, :]
    below = np.take_along_axis(levels_db, lower[:, None, :], axis=2)
    above = np.take_along_axis(levels_db, upper[:, None, :], axis=2)
    return below + weight * (above - below)


def at_keys(stored: np.ndarray, notes: tuple[int, ...] | list[int], keys: np.ndarray) -> np.ndarray:
    """Each preset's sketch (dB) at a key it was not rendered at: ``stored`` (n, notes,
    windows, bands) uint8 rendered at ``notes``; ``keys`` (n,) the key each plays."""
    grid = np.asarray(notes, dtype=np.float64)
    keys = np.clip(np.asarray(keys, dtype=np.float64), grid[0] - 12, grid[-1] + 12)
    if grid.size == 1:
        return shifted(decode(stored[:, 0]), keys - grid[0])
    upper = np.clip(np.searchsorted(grid, keys), 1, grid.size - 1)
    lower = upper - 1
    weight = np.clip((keys - grid[lower]) / (grid[upper] - grid[lower]), 0.0, 1.0)[:, None, None]
    rows = np.arange(stored.shape[0])
    below = shifted(decode(stored[rows, lower]), keys - grid[lower])
    above = shifted(decode(stored[rows, upper]), keys - grid[upper])
    return below + weight.astype(np.float32) * (above - below)


def windows_held(note_off_seconds: float | None) -> int:
    """How many windows a note released ``note_off_seconds`` after its attack shares with
    the index's renders (held 0.85 s): those that start before the note-off (at least two)."""
    if note_off_seconds is None:
        return N_WINDOWS
    return max(2, sum(low < note_off_seconds for low, _ in WINDOWS_SECONDS))


def sketch_distance(query_db: np.ndarray, candidates_db: np.ndarray, windows: int = N_WINDOWS) -> np.ndarray:
    """Mean absolute level difference (dB) of a query's sketch against each candidate's
    over the first ``windows`` windows, both floored COMPARE_RANGE_DB under their own
    loudest, levels free (the median difference is taken out, as the metrics level both
    sounds)."""
    def floored(levels: np.ndarray) -> np.ndarray:
        levels = levels[..., :windows, :]
        top = levels.max(axis=(-2, -1), keepdims=True)
        return np.maximum(levels, top - COMPARE_RANGE_DB)

    difference = floored(candidates_db) - floored(query_db)[None]
    offset = np.median(difference.reshape(difference.shape[0], -1), axis=1)
    return np.abs(difference - offset[:, None, None]).mean(axis=(1, 2))
