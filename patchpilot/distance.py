"""Perceptual distance between a target note and candidate renders.

Multi-resolution log-mel L1 (what MSS measures), a multi-resolution linear STFT term
(spectral convergence and log magnitude at short windows, what MR-STFT measures), MFCC and
amplitude-envelope terms, on loudness-normalised signals aligned at their attacks. Batched
numpy FFTs: scoring a 1.5-second candidate costs a few milliseconds, less than rendering it.

Recordings carry noise that synth renders do not. Both signals are floored at the input's
noise (:class:`NoiseProfile`), so a clean render of the right preset is not punished for the
noise under the input. The noise is measured where there is no note (the clip's quiet
frames) or by its shape (the level between a note's partials, which a held note never
fills): never as a band's quietest level over time, which on a held note *is* the note.
A clean input gets no floor but -80 dB under its loudest bin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from patchpilot.audio.analysis import ClipAnalysis, Note, around_note
from patchpilot.audio.dsp import (EPS, amplitude_to_db, dct_matrix, frames, hann, mel_filterbank,
                                  power_spectrogram, rms_envelope)
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ

#: (n_fft, hop, n_mels) of each resolution.
RESOLUTIONS = ((2048, 512, 96), (1024, 256, 64), (512, 128, 32))
N_MFCC = 20
#: Target loudness (RMS) both signals are scaled to before comparison.
REFERENCE_RMS = 0.1
#: Lowest mel-band floor, relative to the loudest band of the target: -80 dB.
MIN_FLOOR_DB = -80.0
#: The floor sits this far above the estimated noise (its fluctuations stay under it).
NOISE_MARGIN_DB = 3.0
#: Noise estimation: a fine STFT (partials of the lowest notes resolved), bands a sixth of
#: an octave wide (NOISE_BAND_BINS at least), in each frame the band's NOISE_BAND_PERCENTILE
#: of the power smoothed over 3 bins (between partials: the noise), then over time the
#: NOISE_TIME_PERCENTILE of that. White noise reads NOISE_BIAS_DB low that way (measured).
NOISE_FFT, NOISE_HOP = 4096, 1024
NOISE_BAND_OCTAVES = 1 / 6
NOISE_BAND_BINS = 24
NOISE_BAND_PERCENTILE = 20
NOISE_TIME_PERCENTILE = 20
NOISE_BIAS_DB = -4.5
#: Frames of the clip outside the note that hold nothing but the noise (no louder than
#: NOISE_ONLY_DB over the shape estimate): where there are QUIET_FRAMES of them, the noise was
#: heard alone and their level is the noise wherever it is below the shape estimate (digital
#: silence around a clean note: no floor). Where there are none (a held note cut tight, or a
#: sound made of noise: a swell, breath), the shape estimate is taken UNHEARD_NOISE_DB lower,
#: so that loud noise in the sound itself still counts.
NOISE_ONLY_DB = 6.0
QUIET_FRAMES = 3
UNHEARD_NOISE_DB = -10.0
#: The noise is at most this far under the note's own level (all bands together): a "noise"
#: within a few dB of the note is the sound itself (white noise, a click train, wind, a
#: hi-hat, whose every stretch sounds alike, so that even the frames around the note seem to
#: hold it alone), and flooring a sound at its own level makes it deaf to it. A recording whose
#: hiss is under 25 dB below its note is rare; one 30 dB under keeps its floor.
MAX_NOISE_DB = -25.0
ENVELOPE_RANGE_DB = 60.0
ENVELOPE_HOP = 128
#: Note-off detection: the target must stay this far below a held render for this long;
#: the note-off is where it first dropped below by DIVERGENCE_START_DB.
DIVERGENCE_DB = 3.0
DIVERGENCE_HOLD_SECONDS = 0.04
DIVERGENCE_START_DB = 1.0
#: Candidate alignment: envelopes compared over this much of the target, floored, with
#: lags searched this many envelope frames either side of the threshold-based start.
ALIGN_SECONDS = 0.5
ALIGN_FLOOR_DB = -40.0
ALIGN_SEARCH_FRAMES = 30
#: Cost (dB of mean envelope mismatch) of a lag at the edge of the search, growing linearly
#: from the threshold-based start: on flat or steadily rising envelopes (held pads, slow
#: swells) every lag fits about as well, and a tie must not shift a render by 150 ms.
ALIGN_SHIFT_COST_DB = 1.0
#: The linear-frequency term: spectral convergence plus the mean absolute log-magnitude
#: difference at three short Hann windows (those of auraloss' MR-STFT at half its rate: 300,
#: 600 and 120 samples centred in FFTs of 512, 1024 and 256), (n_fft, hop, window) at
#: ANALYSIS_SAMPLE_RATE_HZ, on magnitudes floored at the input's noise and STFT_FLOOR_DB under
#: its loudest bin. Short windows and a deep floor: it hears attack detail, exact partials and
#: quiet tails that the mel terms smooth over (on the benchmark's candidates, 0.74 rank
#: agreement with MR-STFT where the mel terms reach 0.52; docs/BENCHMARKS.md, "Distance agreement").
STFT_RESOLUTIONS = ((512, 120, 300), (1024, 240, 600), (256, 50, 120))
STFT_FLOOR_DB = -120.0
#: A single bin of noise fluctuates far more than a mel band (its power is exponentially
#: distributed: 3 dB over the mean 14 % of the time, 10 dB over it 0.005 %): the STFT term's
#: floor sits this far above the noise.
STFT_NOISE_MARGIN_DB = 10.0
#: The STFT term compares power averaged over this many hops (about two windows' length:
#: 27, 54 and 11 ms). Oscillators and unison voices that start at a random phase beat
#: against each other at other moments on every note; frame by frame two plays of one
#: preset then differ as much as two presets do (median 0.66 of distance over 48 Vital
#: presets a user made; the close label then ended at 0.65). Averaged, 0.42, with the
#: agreement with MR-STFT and MSS unchanged (docs/BENCHMARKS.md, "Recovery of imported
#: presets" and "Distance agreement").
STFT_SMOOTHING_HOPS = 5
#: Weights of the terms; each term is about 1 for clearly different sounds. Chosen on the
#: agreement benchmark's held tones and General MIDI notes: the log-mel term alone follows MSS
#: (0.92) but not MR-STFT (0.52); with the STFT term both are followed (0.75 / 0.81 on the
#: General MIDI notes). The MFCC and envelope terms keep a share for what neither measures.
WEIGHTS = {"log_mel": 1.0, "stft": 1.0, "mfcc": 0.5, "envelope": 0.5}
#: The distance's two views of the spectrum: mel bands in dB (what MSS measures) and linear
#: STFT bins (what MR-STFT measures). A change kept because it comes closer (refinement)
#: must come no further on either: the weighted sum can buy one with the other.
SPECTRAL_TERMS = ("log_mel", "stft")
#: The resolution with this many mel bands gives the MFCC.
MFCC_MELS = 64
assert MFCC_MELS in {n_mels for _, _, n_mels in RESOLUTIONS}
#: A cheap proxy of the distance (first hearings, the effect search): one mel resolution
#: instead of three (the one the MFCC come from) and one STFT resolution.
PROXY_RESOLUTIONS = (RESOLUTIONS[1],)
PROXY_STFT_RESOLUTIONS = (STFT_RESOLUTIONS[0],)


def resolutions_at(sample_rate: int, resolutions: tuple[tuple[int, int, int], ...] = RESOLUTIONS,
                   windows: bool = False) -> tuple[tuple[int, int, int], ...]:
    """``resolutions`` (set for ANALYSIS_SAMPLE_RATE_HZ: (n_fft, hop, n_mels), or with
    ``windows`` (n_fft, hop, window length)) with FFT sizes, hops and windows scaled to
    ``sample_rate``, so that the spectral windows last as long. It is not the same distance
    hearing more: at 44.1 kHz as many mel bands span 20 Hz-22 kHz (fewer below 11 kHz), half
    the STFT term's bins lie above 11 kHz, and the level envelope and the alignment search
    keep their sizes in samples (half as long)."""
    factor = max(1, round(sample_rate / ANALYSIS_SAMPLE_RATE_HZ))
    return tuple((n_fft * factor, hop * factor, third * factor if windows else third)
                 for n_fft, hop, third in resolutions)


#: Distance given to a silent candidate.
SILENT_DISTANCE = 100.0
#: Attack alignment: the first point within this many dB of the loudest 5 ms frame.
ALIGN_THRESHOLD_DB = -30.0


def attack_start(x: np.ndarray, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ,
                 threshold_db: float = ALIGN_THRESHOLD_DB) -> int:
    """Sample where the attack begins (a little before the level crosses ``threshold_db``
    relative to the loudest 5 ms), on a 2.5 ms grid: what the embedder and the pictures cut
    notes at. The distance lines sounds up more finely (:func:`onset`)."""
    hop = max(1, sample_rate // 400)  # 2.5 ms
    env = rms_envelope(x, 2 * hop, hop)
    if env.size == 0 or env.max() <= 0:
        return 0
    above = np.flatnonzero(env >= env.max() * 10 ** (threshold_db / 20))
    return max(0, int(above[0]) * hop - 2 * hop) if above.size else 0


def onset(x: np.ndarray, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, threshold_db: float = ALIGN_THRESHOLD_DB) -> int:
    """Where the distance lines a sound up: 5 ms before its level (RMS over 5 ms around each
    sample) first comes within ``threshold_db`` of its loudest. Taken at every sample, so a
    copy delayed by any number of samples starts that many samples later; negative where
    the sound starts at once (the 5 ms before it are silence)."""
    hop = max(1, sample_rate // 400)  # 2.5 ms
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return 0
    # windows centred up to three hops before the first sample: a sound that starts at once
    # is found where it starts, not at the first window
    lead = 3 * hop
    energy = np.concatenate([[0.0], np.cumsum(np.pad(x * x, (lead, hop)))])
    level = energy[2 * hop :] - energy[: -2 * hop]  # level[i]: the window centred on sample i - lead + hop
    peak = float(level.max())
    if peak <= 0:
        return 0
    return int(np.argmax(level >= peak * 10 ** (threshold_db / 10))) - lead + hop - 2 * hop


@dataclass(frozen=True)
class NoiseProfile:
    """A recording's noise: its power spectral density, one-sided, in (signal units)^2 per
    Hz at ``frequencies``, in the scale of the samples it was measured on."""

    frequencies: np.ndarray
    density: np.ndarray

    def bin_power(self, sample_rate: int, n_fft: int, window: np.ndarray | None = None) -> np.ndarray:
        """Expected power of the noise in each bin of an ``n_fft`` STFT with ``window`` (a
        Hann window of ``n_fft`` by default: ``power_spectrogram``'s scale): density x
        rate / 2 x the window's energy."""
        frequencies = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
        density = np.interp(frequencies, self.frequencies, self.density)  # flat past its band
        window = hann(n_fft) if window is None else window
        return density * sample_rate / 2 * float(np.sum(np.asarray(window, dtype=np.float64) ** 2))

    def variance(self) -> float:
        """The noise's mean square (its density over frequency)."""
        steps = np.diff(self.frequencies)
        return float(np.sum((self.density[1:] + self.density[:-1]) / 2 * steps))

    def scaled(self, gain: float) -> NoiseProfile:
        """The same noise in a signal scaled by ``gain``."""
        return NoiseProfile(self.frequencies, self.density * gain**2)


def _sixth_octave_bands(bins: int) -> list[tuple[int, int]]:
    edges = [1]
    while edges[-1] < bins:
        edges.append(min(bins, edges[-1] + max(NOISE_BAND_BINS, int(edges[-1] * (2**NOISE_BAND_OCTAVES - 1)))))
    return list(zip(edges[:-1], edges[1:]))


def estimate_noise(samples: np.ndarray, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ,
                   note: tuple[int, int] | None = None) -> NoiseProfile:
    """The noise of a recording: the clip around a note, whose samples ``note`` (start,
    end) are; without it, any frame may be noise alone.

    By its shape: in each sixth of an octave, the level between a note's partials (a low
    percentile of the band), at a low percentile over time. A held note cannot pass for
    noise this way, as it does for a band's quietest level over time; a dense or moving
    sound (a wide unison, vibrato in the top octave, breath) reads partly as noise. Then by
    hearing it alone: where the clip has frames of nothing but that noise (before the note,
    after its release), their level is the noise wherever it is lower (a clean clip with
    silence around its note gets no floor); where it has none, the estimate is lowered by
    UNHEARD_NOISE_DB (it may be the sound's own noise). Either way it stays MAX_NOISE_DB under
    the note's level: a sound made of noise is not floored away.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.size < NOISE_FFT // 2:
        x = np.pad(x, (0, NOISE_FFT // 2 - x.size))
    power = power_spectrogram(x, NOISE_FFT, NOISE_HOP).astype(np.float64)  # (frames, bins)
    smooth = power.copy()
    smooth[:, 1:-1] = (power[:, :-2] + power[:, 1:-1] + power[:, 2:]) / 3
    bands = _sixth_octave_bands(power.shape[1])
    shape = np.empty(power.shape[1])
    for low, high in bands:
        between = np.percentile(smooth[:, low:high], NOISE_BAND_PERCENTILE, axis=1)
        shape[low:high] = np.percentile(between, NOISE_TIME_PERCENTILE)
    shape[0] = shape[1]
    shape *= 10 ** (-NOISE_BIAS_DB / 10)
    alone = power.sum(axis=1) <= shape.sum() * 10 ** (NOISE_ONLY_DB / 10)
    centres = np.arange(power.shape[0]) * NOISE_HOP
    if note is not None:  # a frame that overlaps the note is not the noise alone
        alone &= (centres + NOISE_FFT // 2 <= note[0]) | (centres - NOISE_FFT // 2 >= note[1])
    if alone.sum() >= QUIET_FRAMES:
        heard = np.empty(power.shape[1])
        for low, high in bands:  # the noise's own level, band by band
            heard[low:high] = power[alone, low:high].mean()
        heard[0] = heard[1]
        shape = np.minimum(shape, heard)
    else:
        shape *= 10 ** (UNHEARD_NOISE_DB / 10)
    inside = np.ones(power.shape[0], dtype=bool) if note is None else (centres >= note[0]) & (centres < note[1])
    level = float(power[inside].mean(axis=0).sum()) if inside.any() else float(power.mean(axis=0).sum())
    ceiling = level * 10 ** (MAX_NOISE_DB / 10)
    if shape.sum() > ceiling > 0:  # a "noise" as loud as the note is the sound itself
        shape *= ceiling / shape.sum()
    window_energy = float(np.sum(hann(NOISE_FFT).astype(np.float64) ** 2))
    frequencies = np.arange(power.shape[1]) * sample_rate / NOISE_FFT
    return NoiseProfile(frequencies, shape / window_energy * 2 / sample_rate)


def noise_around(analysis: ClipAnalysis, note: Note, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> NoiseProfile:
    """The recording's noise around an analysed note, at ``sample_rate``: :func:`estimate_noise`
    on the clip a second either side of it (``analysis.around_note``)."""
    context, span = around_note(analysis, note, sample_rate)
    return estimate_noise(context, sample_rate, span)


def _floor(power_at_bins: np.ndarray, loudest: float, filterbank: np.ndarray | None = None,
           range_db: float = MIN_FLOOR_DB, margin_db: float = NOISE_MARGIN_DB) -> np.ndarray:
    """A floor of the target's noise plus ``margin_db``, never below ``range_db`` under
    ``loudest``; through ``filterbank`` for mel bands."""
    noise = power_at_bins if filterbank is None else power_at_bins @ filterbank
    return np.maximum(noise * 10 ** (margin_db / 10), loudest * 10 ** (range_db / 10)).astype(np.float32)


@lru_cache(maxsize=16)
def _centred_hann(n_fft: int, length: int) -> np.ndarray:
    """A periodic Hann window of ``length`` centred in ``n_fft`` zeros (as torch.stft pads it)."""
    window = np.zeros(n_fft, dtype=np.float32)
    start = (n_fft - length) // 2
    window[start : start + length] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)
    return window


def _stft_power(batch: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """|STFT|^2 with a centred Hann window of ``length``, each frame the mean of the
    STFT_SMOOTHING_HOPS around it: ``(..., frames, n_fft // 2 + 1)``."""
    spectrum = np.fft.rfft(frames(batch, n_fft, hop) * _centred_hann(n_fft, length), axis=-1)
    return _mean_over_time((spectrum.real**2 + spectrum.imag**2).astype(np.float32), STFT_SMOOTHING_HOPS)


def _mean_over_time(power: np.ndarray, span: int) -> np.ndarray:
    """Each frame (axis -2) replaced by the mean of the ``span`` frames centred on it, the
    first and last frames repeated past the ends."""
    if span <= 1:
        return power
    count = power.shape[-2]
    padding = [(0, 0)] * power.ndim
    padding[-2] = (span // 2, span - 1 - span // 2)
    padded = np.pad(power, padding, mode="edge")
    total = np.zeros_like(power)
    for start in range(span):
        total += padded[..., start : start + count, :]
    return total / span


@dataclass(frozen=True)
class Features:
    """Features of loudness-normalised, attack-aligned signals (batch first)."""

    log_mels: tuple[np.ndarray, ...]
    mfcc: np.ndarray
    envelope_db: np.ndarray
    silent: np.ndarray  # (batch,) bool
    #: Per STFT resolution, each frame's (mean absolute log-magnitude difference, squared
    #: magnitude difference summed over bins) against the target; None for the target.
    stft_errors: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None


@dataclass(frozen=True)
class Target:
    """A prepared target: its features, its length and the floors candidates get too."""

    features: Features
    length: int
    mel_floors: tuple[np.ndarray, ...]  # per resolution, (n_mels,) power
    envelope_floor_db: float
    #: The target's level envelope over its first ALIGN_SECONDS (dB re peak, floored).
    align_envelope: np.ndarray
    #: Per STFT resolution: the target's floored power (frames, bins) and the floor (bins,).
    stft: tuple[tuple[np.ndarray, np.ndarray], ...] = ()


class PerceptualDistance:
    """Scores candidate renders against a prepared target."""

    def __init__(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, weights: dict[str, float] | None = None,
                 resolutions: tuple[tuple[int, int, int], ...] = RESOLUTIONS,
                 stft_resolutions: tuple[tuple[int, int, int], ...] = STFT_RESOLUTIONS) -> None:
        """``resolutions``: (n_fft, hop, n_mels) of the mel terms, ``stft_resolutions``:
        (n_fft, hop, window) of the STFT term, at ANALYSIS_SAMPLE_RATE_HZ (scaled to
        ``sample_rate``: :func:`resolutions_at`); fewer make a cheaper proxy (the effect
        search's). The MFCC come from the mel resolution with MFCC_MELS bands."""
        self.sample_rate = sample_rate
        self.weights = dict(WEIGHTS if weights is None else weights)
        self.resolutions = resolutions_at(sample_rate, resolutions)
        self.stft_resolutions = resolutions_at(sample_rate, stft_resolutions, windows=True)
        self._mfcc_resolution = next(i for i, r in enumerate(self.resolutions) if r[2] == MFCC_MELS)

    def _batch(self, signals: Sequence[np.ndarray], length: int,
               align_to: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = np.zeros((len(signals), length), dtype=np.float32)
        for row, signal in enumerate(signals):
            signal = np.asarray(signal, dtype=np.float32)
            start = onset(signal, self.sample_rate)
            if start < 0:
                signal, start = np.pad(signal, (-start, 0)), 0
            if align_to is not None:
                start = self._align(signal, start, align_to)
            piece = signal[start : start + length]
            batch[row, : piece.size] = piece
        levels = np.sqrt(np.mean(batch.astype(np.float64) ** 2, axis=1))
        silent = levels < 1e-7
        gains = REFERENCE_RMS / np.where(silent, 1.0, levels)
        batch *= gains[:, None].astype(np.float32)
        return batch, silent, gains

    def _alignment_envelope(self, signal: np.ndarray) -> np.ndarray:
        """Level envelope (dB re its own peak, floored) used to line a render up with the target."""
        env = amplitude_to_db(rms_envelope(signal, 512, ENVELOPE_HOP))
        return np.maximum(env - env.max(), ALIGN_FLOOR_DB) if env.size else env

    def _align(self, signal: np.ndarray, start: int, reference: np.ndarray) -> int:
        """Start sample that best lines the render's level envelope up with the target's
        first half second, searched around the threshold-based ``start``. Slow attacks
        half-buried in the input's noise start later than in a clean render."""
        # envelope frames on a grid through ``start``: the threshold-based start itself is
        # a lag the search can return, so the same sound lines up exactly
        offset = start % ENVELOPE_HOP
        env = self._alignment_envelope(signal[offset:])
        span = reference.size
        first = start // ENVELOPE_HOP
        lags = np.arange(max(0, first - ALIGN_SEARCH_FRAMES), min(first + ALIGN_SEARCH_FRAMES, env.size - span) + 1)
        if lags.size == 0:
            return start
        windows = np.lib.stride_tricks.sliding_window_view(env, span)[lags]
        windows = windows - windows.max(axis=1, keepdims=True)
        floor = max(float(reference.min()), ALIGN_FLOOR_DB)
        cost = np.abs(np.maximum(windows, floor) - np.maximum(reference, floor)).mean(axis=1)
        cost += ALIGN_SHIFT_COST_DB * np.abs(lags - first) / ALIGN_SEARCH_FRAMES
        return offset + int(lags[int(np.argmin(cost))]) * ENVELOPE_HOP

    def _mel_powers(self, batch: np.ndarray) -> list[np.ndarray]:
        """Mel powers at every resolution."""
        return [power_spectrogram(batch, n_fft, hop) @ mel_filterbank(self.sample_rate, n_fft, n_mels, 20.0)
                for n_fft, hop, n_mels in self.resolutions]

    def _features(self, batch: np.ndarray, silent: np.ndarray, mel_powers: list[np.ndarray],
                  floors: Sequence[np.ndarray], envelope_floor_db: float,
                  stft_errors: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None) -> Features:
        log_mels = [np.log(np.maximum(power, floor)) for power, floor in zip(mel_powers, floors)]
        mfcc = log_mels[self._mfcc_resolution] @ dct_matrix(MFCC_MELS, N_MFCC + 1)[:, 1:]
        envelope = np.maximum(amplitude_to_db(rms_envelope(batch, 512, ENVELOPE_HOP)), envelope_floor_db)
        return Features(tuple(log_mels), mfcc, envelope, silent, stft_errors)

    def prepare_target(self, signal: np.ndarray, length: int | None = None, noise: NoiseProfile | None = None
                       ) -> Target:
        """Align and normalise the target and compute its features and floors. ``noise``:
        the recording's noise measured on the clip around the note (:func:`estimate_noise`,
        at this distance's rate, in the clip's scale); else it is measured on ``signal``."""
        signal = np.asarray(signal, dtype=np.float32)
        if length is None:
            length = signal.size - onset(signal, self.sample_rate)
        batch, silent, gains = self._batch([signal], max(length, 1))
        noise = (estimate_noise(signal, self.sample_rate) if noise is None else noise).scaled(float(gains[0]))
        powers = self._mel_powers(batch)
        floors = [_floor(noise.bin_power(self.sample_rate, n_fft), float(power[0].max()),
                         mel_filterbank(self.sample_rate, n_fft, n_mels, 20.0))
                  for power, (n_fft, _, n_mels) in zip(powers, self.resolutions)]
        stft = []
        for n_fft, hop, window in self.stft_resolutions:
            power = _stft_power(batch[0], n_fft, hop, window)
            floor = _floor(noise.bin_power(self.sample_rate, n_fft, _centred_hann(n_fft, window)), float(power.max()),
                           range_db=STFT_FLOOR_DB, margin_db=STFT_NOISE_MARGIN_DB)
            stft.append((np.maximum(power, floor), floor))
        env = amplitude_to_db(rms_envelope(batch, 512, ENVELOPE_HOP))[0]
        noise_db = 10 * np.log10(max(noise.variance(), 1e-20)) + NOISE_MARGIN_DB
        envelope_floor = max(float(env.max()) - ENVELOPE_RANGE_DB, noise_db)
        span = min(env.size, int(ALIGN_SECONDS * self.sample_rate / ENVELOPE_HOP))
        reference = np.maximum(env[:span] - env[:span].max(), max(envelope_floor - float(env.max()), ALIGN_FLOOR_DB))
        features = self._features(batch, silent, powers, floors, envelope_floor)
        return Target(features, length, tuple(floors), envelope_floor, reference, tuple(stft))

    def prepare(self, target: Target, candidates: Sequence[np.ndarray]) -> Features:
        batch, silent, _ = self._batch(candidates, target.length, target.align_envelope)
        errors = []
        for (n_fft, hop, window), (reference, floor) in zip(self.stft_resolutions, target.stft):
            power = np.maximum(_stft_power(batch, n_fft, hop, window), floor)
            log_error = 0.5 * np.abs(np.log(power) - np.log(reference)).mean(axis=2)
            squared = ((np.sqrt(power) - np.sqrt(reference)) ** 2).sum(axis=2)
            errors.append((log_error, squared))
        return self._features(batch, silent, self._mel_powers(batch), target.mel_floors, target.envelope_floor_db,
                              tuple(errors))

    def _frame_mask(self, frames: int, hop: int, until: np.ndarray | None, batch: int) -> np.ndarray:
        """(batch, frames) weights: 1 for frames before each candidate's cut-off time."""
        if until is None:
            return np.ones((batch, frames))
        times = np.arange(frames) * hop / self.sample_rate
        mask = (times[None, :] < np.asarray(until)[:, None]).astype(np.float64)
        mask[:, 0] = 1.0
        return mask

    def terms(self, target: Target, candidates: Features, until: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each term of the distance, per candidate: ``{name: (batch,)}``. With ``until``
        (seconds per candidate) only frames before that time count."""
        t = target.features
        batch = candidates.silent.size
        log_mel = np.zeros(batch)
        for (_, hop, _), t_log, c_log in zip(self.resolutions, t.log_mels, candidates.log_mels):
            mask = self._frame_mask(c_log.shape[1], hop, until, batch)
            log_mel += (np.abs(c_log - t_log[0]).mean(axis=2) * mask).sum(axis=1) / mask.sum(axis=1) / 4.0
        mask = self._frame_mask(candidates.mfcc.shape[1], self.resolutions[self._mfcc_resolution][1], until, batch)
        mfcc = (np.abs(candidates.mfcc - t.mfcc[0]).mean(axis=2) * mask).sum(axis=1) / mask.sum(axis=1) / 10.0
        mask = self._frame_mask(candidates.envelope_db.shape[1], ENVELOPE_HOP, until, batch)
        envelope = (np.abs(candidates.envelope_db - t.envelope_db[0]) * mask).sum(axis=1) / mask.sum(axis=1) / 10.0
        terms = {"log_mel": log_mel / len(self.resolutions), "mfcc": mfcc, "envelope": envelope}
        if candidates.stft_errors is not None:
            stft = np.zeros(batch)
            for (_, hop, _), (log_error, squared), (reference, _) in zip(self.stft_resolutions, candidates.stft_errors,
                                                                          target.stft):
                mask = self._frame_mask(log_error.shape[1], hop, until, batch)
                energy = (reference.sum(axis=1)[None, :] * mask).sum(axis=1)
                convergence = np.sqrt((squared * mask).sum(axis=1)) / np.sqrt(energy + EPS)
                stft += convergence + (log_error * mask).sum(axis=1) / mask.sum(axis=1)
            terms["stft"] = stft / len(self.stft_resolutions)
        return terms

    def total(self, target: Target, features: Features, until: np.ndarray | None = None) -> np.ndarray:
        return self._weighted(self.terms(target, features, until), features.silent)

    def _weighted(self, terms: dict[str, np.ndarray], silent: np.ndarray) -> np.ndarray:
        """The distance from its terms (SILENT_DISTANCE for a silent candidate)."""
        total = sum(self.weights.get(name, 0.0) * value for name, value in terms.items())
        return np.where(silent, SILENT_DISTANCE, total)

    def score(self, target: Target, candidates: Sequence[np.ndarray]) -> np.ndarray:
        return self.total(target, self.prepare(target, candidates))

    def score_terms(self, target: Target, candidates: Sequence[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The distance of each candidate and each of its terms (``terms``)."""
        features = self.prepare(target, candidates)
        terms = self.terms(target, features)
        return self._weighted(terms, features.silent), terms

    def __call__(self, target: np.ndarray, candidates: Sequence[np.ndarray]) -> np.ndarray:
        """Distance of each candidate to a target signal."""
        return self.score(self.prepare_target(target), candidates)

    def note_off(self, target: Target, held: Features) -> np.ndarray:
        """Where the target falls away from each held-note render: its note-off, in seconds
        after the attack (the target's length where it never does).

        Before its note-off a synth plays the same whatever the note length, so the right
        preset's held render follows the target until the target's release begins. The
        level offset between the two is measured on the stretch before they part (the
        attack is skipped: velocity changes it); the note-off is where the target starts
        to fall below the held render on the way to a sustained gap of DIVERGENCE_DB.
        """
        hop_s = ENVELOPE_HOP / self.sample_rate
        gap = held.envelope_db - target.features.envelope_db[0]  # positive: target quieter
        run = max(2, int(DIVERGENCE_HOLD_SECONDS / hop_s))
        skip = int(0.05 / hop_s)
        out = np.full(gap.shape[0], target.length / self.sample_rate)
        for row in range(gap.shape[0]):
            stop = min(gap.shape[1], skip + int(0.3 / hop_s))
            first = None
            for _ in range(2):  # estimate the offset, find the parting, re-estimate before it
                if stop <= skip:
                    break
                reference = float(np.median(gap[row, skip:stop]))
                below = (gap[row] - reference) > DIVERGENCE_DB
                sustained = np.convolve(below.astype(int), np.ones(run, dtype=int), mode="valid") == run
                hits = np.flatnonzero(sustained[skip:]) + skip
                if hits.size == 0:
                    first = None
                    break
                first = int(hits[0])
                stop = max(skip + 2, first)
            if first is None:
                continue
            start = first
            while start > skip and gap[row, start - 1] - reference > DIVERGENCE_START_DB:
                start -= 1
            out[row] = start * hop_s
        return out


def further_on_a_view(terms: dict[str, np.ndarray]) -> np.ndarray:
    """Per candidate after the first in ``terms`` (``PerceptualDistance.terms`` of several
    sounds): whether it is further from the target than the first on either view of the
    spectrum (SPECTRAL_TERMS)."""
    further = np.zeros(len(next(iter(terms.values()))) - 1, dtype=bool)
    for name in SPECTRAL_TERMS:
        if name in terms:
            further |= terms[name][1:] > terms[name][0]
    return further
