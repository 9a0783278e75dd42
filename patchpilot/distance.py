"""Perceptual distance between a target note and candidate renders.

Multi-resolution log-mel L1 + spectral convergence, MFCC and amplitude-envelope terms, on
loudness-normalised signals aligned at their attacks. Batched numpy FFTs: scoring a
1.5-second candidate costs a few milliseconds, less than rendering it.

Recordings carry noise that synth renders do not. The target's noise floor is estimated
per mel band (a low percentile over time) and both signals are floored at it, so a clean
render of the right preset is not punished for the noise under the input's quiet parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from patchpilot.audio.dsp import EPS, amplitude_to_db, dct_matrix, mel_filterbank, power_spectrogram, rms_envelope
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ

#: (n_fft, hop, n_mels) of each resolution.
RESOLUTIONS = ((2048, 512, 96), (1024, 256, 64), (512, 128, 32))
N_MFCC = 20
#: Target loudness (RMS) both signals are scaled to before comparison.
REFERENCE_RMS = 0.1
#: Lowest mel-band floor, relative to the loudest band of the target: -80 dB.
MIN_FLOOR_DB = -80.0
#: Percentile over time that estimates a band's noise floor, and the margin above it.
NOISE_PERCENTILE = 10
NOISE_MARGIN_DB = 3.0
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
#: Weights of the terms; each term is about 1 for clearly different sounds.
WEIGHTS = {"log_mel": 1.0, "convergence": 1.0, "mfcc": 1.0, "envelope": 1.0}
#: Refinement adds a linear-frequency log-magnitude term (the resolution below): the mel
#: terms see little of what happens above a few kHz, where an optimiser can otherwise trade
#: a slightly better mel match for junk in the top octaves.
REFINE_WEIGHTS = {**WEIGHTS, "log_stft": 1.0}
#: The resolution with this many mel bands gives the MFCC and the linear term (its STFT is
#: computed once).
MFCC_MELS = 64
assert MFCC_MELS in {n_mels for _, _, n_mels in RESOLUTIONS}
#: A cheap proxy of the distance (first hearings, the effect search): one mel resolution
#: instead of three (the one the MFCC come from).
PROXY_RESOLUTIONS = (RESOLUTIONS[1],)


def resolutions_at(sample_rate: int, resolutions: tuple[tuple[int, int, int], ...] = RESOLUTIONS
                   ) -> tuple[tuple[int, int, int], ...]:
    """``resolutions`` (set for ANALYSIS_SAMPLE_RATE_HZ) with FFT sizes and hops scaled to
    ``sample_rate``, so that the spectral windows last as long. It is not the same distance
    hearing more: at 44.1 kHz as many mel bands span 20 Hz-22 kHz (fewer below 11 kHz), half
    the linear term's bins lie above 11 kHz, and the level envelope and the alignment search
    keep their sizes in samples (half as long)."""
    factor = max(1, round(sample_rate / ANALYSIS_SAMPLE_RATE_HZ))
    return tuple((n_fft * factor, hop * factor, n_mels) for n_fft, hop, n_mels in resolutions)


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


def _noise_floor(frames: np.ndarray) -> np.ndarray:
    """Per-band floor of a ``(frames, bands)`` power spectrogram: the band's noise (a low
    percentile over time, plus a margin), never below MIN_FLOOR_DB under the loudest bin."""
    noise = np.percentile(frames, NOISE_PERCENTILE, axis=0) * 10 ** (NOISE_MARGIN_DB / 10)
    return np.maximum(noise, frames.max() * 10 ** (MIN_FLOOR_DB / 10)).astype(np.float32)


@dataclass(frozen=True)
class Features:
    """Features of loudness-normalised, attack-aligned signals (batch first)."""

    log_mels: tuple[np.ndarray, ...]
    mels: tuple[np.ndarray, ...]
    mfcc: np.ndarray
    envelope_db: np.ndarray
    silent: np.ndarray  # (batch,) bool
    #: Floored log power on a linear frequency axis (only with a "log_stft" weight).
    log_spec: np.ndarray | None = None


@dataclass(frozen=True)
class Target:
    """A prepared target: its features, its length and the floors candidates get too."""

    features: Features
    length: int
    mel_floors: tuple[np.ndarray, ...]  # per resolution, (n_mels,) power
    envelope_floor_db: float
    #: The target's level envelope over its first ALIGN_SECONDS (dB re peak, floored).
    align_envelope: np.ndarray
    spec_floor: np.ndarray | None = None  # (bins,) power


class PerceptualDistance:
    """Scores candidate renders against a prepared target."""

    def __init__(self, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, weights: dict[str, float] | None = None,
                 resolutions: tuple[tuple[int, int, int], ...] = RESOLUTIONS) -> None:
        """``resolutions``: (n_fft, hop, n_mels) of the mel terms at ANALYSIS_SAMPLE_RATE_HZ
        (scaled to ``sample_rate``: :func:`resolutions_at`); fewer make a cheaper proxy (the
        effect search's). The MFCC and the linear term come from the one with MFCC_MELS."""
        self.sample_rate = sample_rate
        self.weights = dict(WEIGHTS if weights is None else weights)
        self.resolutions = resolutions_at(sample_rate, resolutions)
        self._mfcc_resolution = next(i for i, r in enumerate(self.resolutions) if r[2] == MFCC_MELS)
        self._linear = self.weights.get("log_stft", 0.0) > 0

    def _batch(self, signals: Sequence[np.ndarray], length: int,
               align_to: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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
        batch *= (REFERENCE_RMS / np.where(silent, 1.0, levels))[:, None].astype(np.float32)
        return batch, silent

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

    def _spectra(self, batch: np.ndarray) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Mel powers at every resolution, and the linear power spectrogram at
        the resolution the MFCC come from when the log_stft term is on (one of the same STFTs)."""
        mels, linear = [], None
        for number, (n_fft, hop, n_mels) in enumerate(self.resolutions):
            power = power_spectrogram(batch, n_fft, hop)
            if self._linear and number == self._mfcc_resolution:
                linear = power
            mels.append(power @ mel_filterbank(self.sample_rate, n_fft, n_mels, 20.0))
        return mels, linear

    def _features(self, batch: np.ndarray, silent: np.ndarray, mel_powers: list[np.ndarray],
                  floors: Sequence[np.ndarray], envelope_floor_db: float, linear: np.ndarray | None = None,
                  linear_floor: np.ndarray | None = None) -> Features:
        mels, log_mels = [], []
        for power, floor in zip(mel_powers, floors):
            floored = np.maximum(power, floor)
            mels.append(np.sqrt(floored))
            log_mels.append(np.log(floored))
        mfcc = log_mels[self._mfcc_resolution] @ dct_matrix(MFCC_MELS, N_MFCC + 1)[:, 1:]
        envelope = np.maximum(amplitude_to_db(rms_envelope(batch, 512, ENVELOPE_HOP)), envelope_floor_db)
        log_spec = np.log(np.maximum(linear, linear_floor)) if linear is not None else None
        return Features(tuple(log_mels), tuple(mels), mfcc, envelope, silent, log_spec)

    def prepare_target(self, signal: np.ndarray, length: int | None = None) -> Target:
        """Align and normalise the target, estimate its noise floors, compute its features."""
        signal = np.asarray(signal, dtype=np.float32)
        if length is None:
            length = signal.size - onset(signal, self.sample_rate)
        batch, silent = self._batch([signal], max(length, 1))
        powers, linear = self._spectra(batch)
        floors = [_noise_floor(power[0]) for power in powers]
        env = amplitude_to_db(rms_envelope(batch, 512, ENVELOPE_HOP))[0]
        envelope_floor = max(float(env.max()) - ENVELOPE_RANGE_DB,
                             float(np.percentile(env, NOISE_PERCENTILE)) + NOISE_MARGIN_DB)
        span = min(env.size, int(ALIGN_SECONDS * self.sample_rate / ENVELOPE_HOP))
        reference = np.maximum(env[:span] - env[:span].max(), max(envelope_floor - float(env.max()), ALIGN_FLOOR_DB))
        linear_floor = _noise_floor(linear[0]) if linear is not None else None
        features = self._features(batch, silent, powers, floors, envelope_floor, linear, linear_floor)
        return Target(features, length, tuple(floors), envelope_floor, reference, linear_floor)

    def prepare(self, target: Target, candidates: Sequence[np.ndarray]) -> Features:
        batch, silent = self._batch(candidates, target.length, target.align_envelope)
        powers, linear = self._spectra(batch)
        return self._features(batch, silent, powers, target.mel_floors, target.envelope_floor_db, linear,
                              target.spec_floor)

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
        convergence = np.zeros(batch)
        for (_, hop, _), t_log, c_log, t_mel, c_mel in zip(self.resolutions, t.log_mels, candidates.log_mels, t.mels,
                                                           candidates.mels):
            mask = self._frame_mask(c_log.shape[1], hop, until, batch)
            count = mask.sum(axis=1)
            log_mel += (np.abs(c_log - t_log[0]).mean(axis=2) * mask).sum(axis=1) / count / 4.0
            error = (((c_mel - t_mel[0]) ** 2).sum(axis=2) * mask).sum(axis=1)
            reference = ((t_mel[0] ** 2).sum(axis=1)[None, :] * mask).sum(axis=1)
            convergence += np.sqrt(error) / (np.sqrt(reference) + EPS)
        n = len(self.resolutions)
        mask = self._frame_mask(candidates.mfcc.shape[1], self.resolutions[self._mfcc_resolution][1], until, batch)
        mfcc = (np.abs(candidates.mfcc - t.mfcc[0]).mean(axis=2) * mask).sum(axis=1) / mask.sum(axis=1) / 10.0
        mask = self._frame_mask(candidates.envelope_db.shape[1], ENVELOPE_HOP, until, batch)
        envelope = (np.abs(candidates.envelope_db - t.envelope_db[0]) * mask).sum(axis=1) / mask.sum(axis=1) / 10.0
        terms = {"log_mel": log_mel / n, "convergence": convergence / n, "mfcc": mfcc, "envelope": envelope}
        if candidates.log_spec is not None and t.log_spec is not None:
            hop = self.resolutions[self._mfcc_resolution][1]
            mask = self._frame_mask(candidates.log_spec.shape[1], hop, until, batch)
            error = np.abs(candidates.log_spec - t.log_spec[0]).mean(axis=2)
            terms["log_stft"] = (error * mask).sum(axis=1) / mask.sum(axis=1) / 8.0
        return terms

    def total(self, target: Target, features: Features, until: np.ndarray | None = None) -> np.ndarray:
        terms = self.terms(target, features, until)
        total = sum(self.weights.get(name, 0.0) * value for name, value in terms.items())
        return np.where(features.silent, SILENT_DISTANCE, total)

    def score(self, target: Target, candidates: Sequence[np.ndarray]) -> np.ndarray:
        return self.total(target, self.prepare(target, candidates))

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
