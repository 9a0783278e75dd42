"""Choosing the notes worth matching in a whole track (or a separated stem of one).

A track holds many notes, and also chords, drum hits, legato runs and quiet passages. This
module walks it in overlapping blocks, finds notes with the clip analysis, cuts legato
runs where the pitch moves, rejects chords, drums and quiet or unstable notes, and keeps a
handful of clean notes at different pitches for the matcher (the best one) and the
multi-pitch refinement (all of them).

Like ``analysis.py``, everything here is internal: where the chosen notes are, their
pitches and their order never reach any output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from patchpilot.audio.analysis import (
    ENVELOPE_FRAME,
    ENVELOPE_HOP,
    ClipAnalysis,
    Note,
    activity_threshold_db,
    estimate_release,
    find_onsets,
    level_envelope_db,
    note_pitch,
)
from patchpilot.audio.dsp import hann
from patchpilot.audio.io import Audio
from patchpilot.audio.pitch import DEFAULT_FMIN_HZ, YIN_THRESHOLD, frame_f0
from patchpilot.constants import SILENT_CLIP_DBFS, TRACK_MIN_NOTE_SECONDS
from patchpilot.errors import InputAudioError

#: A track is analysed in blocks of this length (seconds), so that memory stays bounded and
#: loudness thresholds follow the song's dynamics ...
TRACK_BLOCK_SECONDS = 20.0
#: ... which overlap by this much, so a note cut by one block's end is whole in the next.
TRACK_BLOCK_OVERLAP_SECONDS = 4.0
#: An onset must come close to the loudest sound within this many seconds either side.
LOCAL_PEAK_SECONDS = 1.5
#: ... within ONSET_MIN_LEVEL_DB plus this much (dB): a synth note next to a drum hit is
#: often 20 dB quieter than it, in a mix or a stem with drum bleed.
ONSET_LOCAL_RELIEF_DB = 10.0
#: find_onsets puts an onset at the quiet point up to this many envelope frames before its
#: rise (the clip analysis' rise window): quiet there does not end the note.
_ONSET_LEAD_FRAMES = 8

#: Chord test: at least this share of the spectral peaks' power must sit on the harmonics
#: of one fundamental. On renders of every other factory preset at notes 48 and 72, 124 of
#: the 132 non-FX single notes pass (bells, a few bit-crushed or phased sounds fail), and 9
#: of 74 major triads do (4 of them pass every test).
MIN_HARMONIC_SHARE = 0.8
#: A peak counts as a harmonic within this relative distance (35 cents): detuned unison
#: voices and vibrato stay within it, a chord's third and fifth fall far outside.
HARMONIC_TOLERANCE = 0.02
#: Spectral peaks weaker than this (dB below the strongest) are ignored by the chord test ...
PEAK_RANGE_DB = 40.0
#: ... fundamentals are tried from peaks within this much of the strongest ...
STRONG_PEAK_DB = 20.0
#: ... and peaks up to this many times the lowest strong peak are checked.
HARMONICS_CHECKED = 12.5
#: Drum test: a note must stay within 12 dB of its peak at least this long (seconds).
MIN_SUSTAIN_SECONDS = 0.12
#: Noise test: a note must be periodic (YIN) in at least this share of its loud frames.
MIN_PERIODIC_SHARE = 0.5
#: Pitch spread (semitones, interquartile range of the frame pitches over the pitch excerpt)
#: beyond which a note glides or sweeps (kick drums, pitch bends) rather than sits on a pitch.
MAX_PITCH_SPREAD_SEMITONES = 1.0
#: A pitch that moves this far (semitones) between the attack and the body is a sweep: kick
#: and tom drums fall by an octave or more within a tenth of a second.
MAX_ATTACK_GLIDE_SEMITONES = 3.0
#: Notes this far (dB) below the track's loud notes are too buried to match.
MAX_BELOW_LOUD_DB = 20.0
#: A legato run is cut where the pitch moves this far (semitones) from the note's pitch ...
LEGATO_STEP_SEMITONES = 0.7
#: ... for at least this many pitch frames (256 samples each, ~70 ms).
LEGATO_MIN_FRAMES = 6
_PITCH_HOP = 256
#: Shortest piece of a legato run kept as a note of its own (seconds).
_MIN_PIECE_SECONDS = 0.3


@dataclass(frozen=True)
class NoteCheck:
    """Measurements that decide whether a note is clean enough to match."""

    harmonic_share: float
    periodic_share: float
    #: Interquartile range of the frame pitches over the pitch excerpt (semitones).
    pitch_spread: float
    #: Pitch at the attack minus pitch 0.3 s later (semitones; 0 if unknown).
    attack_glide: float
    sustain_seconds: float
    loudness_db: float

    def rejection(self, loud_db: float | None = None) -> str | None:
        """Why the note is not used, or None: ``drum`` (a short hit, or a sweep like a kick),
        ``chord`` (partials of several notes), ``unpitched`` (noise), ``unstable`` (a
        glide or wobble), ``quiet`` (far below ``loud_db``, the track's loud notes)."""
        if self.sustain_seconds < MIN_SUSTAIN_SECONDS or abs(self.attack_glide) > MAX_ATTACK_GLIDE_SEMITONES:
            return "drum"
        if self.harmonic_share < MIN_HARMONIC_SHARE:
            return "chord"
        if self.periodic_share < MIN_PERIODIC_SHARE:
            return "unpitched"
        if self.pitch_spread > MAX_PITCH_SPREAD_SEMITONES:
            return "unstable"
        if loud_db is not None and self.loudness_db < loud_db - MAX_BELOW_LOUD_DB:
            return "quiet"
        return None


@dataclass(frozen=True)
class _Candidate:
    note: Note
    #: False for a later piece of a legato run: it starts at a pitch change, not an attack.
    attacked: bool


def select_track_notes(audio: Audio, max_notes: int = 4) -> ClipAnalysis:
    """Up to ``max_notes`` clean single notes of a track at different pitches, best first.

    Raises :class:`InputAudioError` when the track has no note clean enough to match.
    """
    candidates = list(_candidates(audio))
    if not candidates:
        raise InputAudioError(f"{audio.name}: no note found (the track or stem is silent or holds only noise)")
    checked = [(c, check_note(c.note)) for c in candidates]
    clean = [(c, check) for c, check in checked if check.rejection() is None]
    # "Loud enough" is judged against the track's clean notes: drums are often far louder.
    loud_db = float(np.percentile([check.loudness_db for _, check in clean], 90)) if clean else 0.0
    kept = [replace(c.note, score=_score(c, check, loud_db)) for c, check in clean
            if check.rejection(loud_db) is None]
    if not kept:
        raise InputAudioError(f"{audio.name}: no clean single note to match (only chords, drums, noise, glides "
                              "or quiet notes); try another --stem, or a clip of one note")
    return ClipAnalysis(audio, tuple(_distinct_pitches(sorted(kept, key=lambda n: n.score, reverse=True), max_notes)))


def _candidates(audio: Audio) -> Iterator[_Candidate]:
    """Notes of every block (the longest copy of a note two blocks share), legato runs cut."""
    sr = audio.sample_rate
    block = int(TRACK_BLOCK_SECONDS * sr)
    step = block - int(TRACK_BLOCK_OVERLAP_SECONDS * sr)
    found: list[Note] = []
    for offset in range(0, max(1, audio.samples.size - (block - step)), step):
        notes = _block_notes(audio.samples[offset : offset + block], sr)
        # A note at a block's very start began before it: the previous block holds it whole.
        found += [replace(n, start=n.start + offset / sr) for n in notes if offset == 0 or n.start >= 0.02]
    found.sort(key=lambda n: n.start)
    distinct: list[Note] = []
    for note in found:
        if distinct and note.start - distinct[-1].start < 0.05:  # one note seen by two blocks
            if note.duration > distinct[-1].duration:
                distinct[-1] = note
            continue
        distinct.append(note)
    for note in distinct:
        for piece, attacked in _cut_legato(note):
            yield _Candidate(piece, attacked)


def track_onsets(env_db: np.ndarray, threshold_db: float, sample_rate: int) -> list[int]:
    """Onsets (envelope frames) judged against the loudest sound within LOCAL_PEAK_SECONDS,
    so that a quiet note next to a loud drum hit still has one."""
    reach = int(LOCAL_PEAK_SECONDS * sample_rate / ENVELOPE_HOP)
    padded = np.pad(env_db, reach, mode="edge")
    local_peak = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).max(axis=1)
    return find_onsets(env_db, threshold_db, sample_rate, reference_db=local_peak - ONSET_LOCAL_RELIEF_DB)


def _block_notes(x: np.ndarray, sr: int) -> list[Note]:
    """Every stretch of a block from one onset to the next onset or silence.

    Unlike a clip's analysis, onsets are judged against the loudest sound nearby rather
    than in the whole block, and nothing is merged: in a track, what follows a note
    without a pause is usually another instrument, not the note wobbling.
    """
    if x.size < ENVELOPE_FRAME:
        return []
    env_db = level_envelope_db(x)
    if env_db.max() < SILENT_CLIP_DBFS:
        return []
    threshold = activity_threshold_db(env_db)
    onsets = track_onsets(env_db, threshold, sr)
    active = env_db > threshold
    frames_per_second = sr / ENVELOPE_HOP
    notes = []
    for start, stop in zip(onsets, onsets[1:] + [env_db.size]):
        quiet = np.flatnonzero(~active[start:stop])
        quiet = quiet[quiet > _ONSET_LEAD_FRAMES]
        end = start + int(quiet[0]) if quiet.size else stop
        if (end - start) / frames_per_second < TRACK_MIN_NOTE_SECONDS:
            continue
        samples = x[start * ENVELOPE_HOP : min(x.size, end * ENVELOPE_HOP + ENVELOPE_FRAME // 2)]
        release = estimate_release(env_db[start:end], sr)
        notes.append(Note(samples, sr, start / frames_per_second, note_pitch(samples, sr),
                          float(env_db[start:end].max()), release if release is not None else samples.size / sr, 0.0))
    return notes


def _frame_pitches(x: np.ndarray, sr: int, fmin: float = DEFAULT_FMIN_HZ, hop: int = _PITCH_HOP) -> np.ndarray:
    """Per-frame MIDI pitch, NaN where the frame is not periodic or is quiet."""
    f0, aperiodicity, level = frame_f0(x, sr, hop=hop, fmin=fmin)
    good = (aperiodicity < YIN_THRESHOLD) & (level > level.max() * 10 ** (-30 / 20))
    return np.where(good, 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-6) / 440.0), np.nan)


def attack_glide(x: np.ndarray, sr: int) -> float:
    """How far (semitones) the pitch moves over the first 0.3 s: the sweep of a kick or a
    tom. Short YIN frames (fmin 50 Hz) follow it; a synth note reads ~0."""
    midi = _frame_pitches(x[: int(0.3 * sr)], sr, fmin=50.0, hop=128)
    voiced = midi[np.isfinite(midi)]
    if voiced.size < 6:
        return 0.0
    return float(np.median(voiced[:3]) - np.median(voiced[-3:]))


def _cut_legato(note: Note) -> Iterator[tuple[Note, bool]]:
    """The note up to where its pitch moves away, then each later stable piece."""
    sr = note.sample_rate
    attacked = True
    while True:
        if note.pitch.midi is None:
            yield note, attacked
            return
        midi = _frame_pitches(note.samples, sr)
        away = np.abs(midi - note.pitch.midi) > LEGATO_STEP_SEMITONES  # NaN compares False
        after_attack = int(0.15 * sr / _PITCH_HOP)
        runs = np.convolve(away.astype(int), np.ones(LEGATO_MIN_FRAMES, dtype=int), mode="valid")
        moved = np.flatnonzero(runs[after_attack:] == LEGATO_MIN_FRAMES)
        if moved.size == 0:
            yield note, attacked
            return
        cut = (after_attack + int(moved[0])) * _PITCH_HOP
        head = replace(note, samples=note.samples[:cut], release_at=min(note.release_at, cut / sr))
        if head.duration >= _MIN_PIECE_SECONDS:
            yield head, attacked
        rest = note.samples[cut:]
        if rest.size < _MIN_PIECE_SECONDS * sr:
            return
        note = replace(note, samples=rest, start=note.start + cut / sr, pitch=note_pitch(rest, sr),
                       release_at=max(0.0, note.release_at - cut / sr) if note.release_at < note.duration
                       else rest.size / sr)
        attacked = False


def check_note(note: Note) -> NoteCheck:
    """Chord, drum, stability and level measurements of one note."""
    sr = note.sample_rate
    env_db = level_envelope_db(note.samples)
    sustain = float(np.count_nonzero(env_db > env_db.max() - 12.0)) * ENVELOPE_HOP / sr
    midi = _frame_pitches(note.samples[int(0.05 * sr) : int(0.5 * sr)], sr)
    settled = midi[np.isfinite(midi)]
    spread = float(np.subtract(*np.percentile(settled, [75, 25]))) if settled.size >= 3 else math.inf
    return NoteCheck(
        harmonic_share=harmonic_share(note.samples, sr),
        periodic_share=note.pitch.confidence if note.pitch.hz is not None else 0.0,
        pitch_spread=spread,
        attack_glide=attack_glide(note.samples, sr),
        sustain_seconds=sustain,
        loudness_db=note.loudness_db,
    )


def harmonic_share(x: np.ndarray, sr: int, n_fft: int = 8192) -> float:
    """Share of the spectral peaks' power that lies on the harmonics of one fundamental.

    Close to 1 for one pitched note, detuned unison and vibrato included; a chord leaves the
    partials of its other notes unexplained. The fundamentals tried are the lowest strong
    peaks and their halves and thirds (a note whose fundamental is weak), all measured:
    a free-floating estimate (YIN's) can be nudged until a chord's third fits.
    """
    start = min(int(0.08 * sr), max(0, x.size - n_fft))
    excerpt = np.zeros(n_fft, dtype=np.float64)
    piece = x[start : start + n_fft]
    excerpt[: piece.size] = piece * hann(n_fft)[: piece.size]
    spectrum = np.abs(np.fft.rfft(excerpt, 2 * n_fft)) ** 2  # zero-padded: finer peak positions
    bin_hz = sr / (2 * n_fft)
    is_peak = (spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] >= spectrum[2:])
    index = np.flatnonzero(is_peak) + 1
    index = index[(index * bin_hz > 30.0) & (index * bin_hz < 6000.0)]
    if index.size == 0:
        return 0.0
    index = index[spectrum[index] > spectrum[index].max() * 10 ** (-PEAK_RANGE_DB / 10)]
    # parabolic interpolation of each peak on the log spectrum
    log_power = np.log(spectrum + 1e-30)
    a, b, c = log_power[index - 1], log_power[index], log_power[index + 1]
    denominator = a - 2 * b + c
    offset = np.where(np.abs(denominator) > 1e-12, 0.5 * (a - c) / np.where(denominator == 0, 1, denominator), 0.0)
    peak_hz = (index + np.clip(offset, -0.5, 0.5)) * bin_hz
    power = spectrum[index]
    strong = peak_hz[power > power.max() * 10 ** (-STRONG_PEAK_DB / 10)]
    # The partials that tell a chord from a note are the low ones; above a dozen harmonics of
    # the lowest strong peak, detuned or chorused partials blur into each other.
    in_range = peak_hz <= HARMONICS_CHECKED * strong[0]
    peak_hz, power = peak_hz[in_range], power[in_range]
    total = float(power.sum())
    best = 0.0
    for f0 in {f / d for f in strong[:4] for d in (1, 2, 3)}:
        if f0 < 25.0:
            continue
        harmonic = np.maximum(np.round(peak_hz / f0), 1.0)
        # Relative tolerance (detuning and vibrato are so many cents at every harmonic), but
        # never more than a quarter of the spacing, where every peak would fit somewhere.
        tolerance = np.maximum(np.minimum(HARMONIC_TOLERANCE * peak_hz, 0.25 * f0), 1.5 * bin_hz)
        on_harmonic = np.abs(peak_hz - harmonic * f0) <= tolerance
        best = max(best, float(power[on_harmonic].sum()) / total)
    return best


def _score(candidate: _Candidate, check: NoteCheck, loud_db: float) -> float:
    """Long, clean, loud notes with an attack first."""
    note = candidate.note
    return (min(note.duration, 1.5) + 0.5 * check.periodic_share + check.harmonic_share
            - 0.03 * max(0.0, loud_db - check.loudness_db) + (0.5 if candidate.attacked else 0.0))


def _distinct_pitches(notes: list[Note], max_notes: int) -> list[Note]:
    """The best notes, at most one per semitone."""
    chosen: list[Note] = []
    for note in notes:
        midi = note.pitch.midi
        assert midi is not None  # rejected otherwise
        if all(abs(midi - other.pitch.midi) >= 0.5 for other in chosen if other.pitch.midi is not None):
            chosen.append(note)
        if len(chosen) == max_notes:
            break
    return chosen
