"""From a clip to the notes worth matching: trim silence, split at attacks, pick clean notes.

Everything here is internal to matching. Note positions, pitches and lengths never reach
any output: Patch Pilot reports how to build a sound, not what was played.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchpilot.audio.dsp import amplitude_to_db, rms_envelope
from patchpilot.audio.io import Audio, resample
from patchpilot.audio.pitch import PitchEstimate, estimate_pitch
from patchpilot.constants import MAX_COMPARE_SECONDS, MIN_NOTE_SECONDS, SILENCE_THRESHOLD_DB, SILENT_CLIP_DBFS
from patchpilot.errors import InputAudioError

ENVELOPE_FRAME = 512
ENVELOPE_HOP = 128
#: A rise of the level by this much within ``_RISE_FRAMES`` starts a new note.
ONSET_RISE_DB = 9.0
#: ...and reach within this much of the clip's loudest point (a release bump or an echo
#: does not start a note).
ONSET_MIN_LEVEL_DB = 15.0
_RISE_FRAMES = 8
#: Frame and hop (samples) of the fine envelope that measures how long a short sound lasts:
#: the 23 ms frames above add up to 23 ms to a 30 ms kick, a 3 ms frame adds little.
_FINE_FRAME = 64
_FINE_HOP = 16
_MIN_ONSET_GAP_SECONDS = 0.08
_SMOOTH_FRAMES = 8
#: Only segments at least this long (in samples at the analysis rate, 0.25 s) are split
#: on a pitch difference.
_PITCH_SPLIT_MIN_FRAMES_SAMPLES = 5512
#: Segments at the same pitch are one note unless the level between them stays within
#: _GAP_ABOVE_FLOOR_DB of the background for _GAP_MIN_SAMPLES (80 ms at the analysis rate).
_GAP_ABOVE_FLOOR_DB = 6.0
_GAP_MIN_SAMPLES = 1764
#: A release must fall this much faster (dB/s) than the note decayed before it.
_RELEASE_SLOPE_GAP_DB_S = 25.0
#: ...and lose at least this much level.
_RELEASE_MIN_FALL_DB = 6.0


@dataclass(frozen=True)
class Note:
    """One note of the input, from its attack to the end of its sound."""

    samples: np.ndarray
    sample_rate: int
    #: Where the note starts in the clip, seconds.
    start: float
    pitch: PitchEstimate
    loudness_db: float
    #: Estimated note-off, seconds after the attack (== duration when none is visible).
    release_at: float
    score: float

    @property
    def duration(self) -> float:
        return self.samples.size / self.sample_rate


@dataclass(frozen=True)
class ClipAnalysis:
    audio: Audio
    notes: tuple[Note, ...]  # best first
    #: The same clip at a higher rate (``io.load_clip``), where the input had that band:
    #: what the refinement scores against. Its notes lie at the same times.
    full_band: Audio | None = None

    @property
    def best(self) -> Note:
        return self.notes[0]


def level_envelope_db(x: np.ndarray) -> np.ndarray:
    return amplitude_to_db(rms_envelope(x, ENVELOPE_FRAME, ENVELOPE_HOP))


def activity_threshold_db(env_db: np.ndarray) -> float:
    """Level above which a frame counts as sound: relative to the peak and the noise floor."""
    peak = float(env_db.max())
    floor = float(np.percentile(env_db, 10))
    return max(peak + SILENCE_THRESHOLD_DB, min(floor + 6.0, peak - 20.0))


def noise_floor_db(env_db: np.ndarray) -> float:
    """The clip's background level: the quietest stretch of its smoothed envelope."""
    if env_db.size < _SMOOTH_FRAMES:
        return float(env_db.min())
    return float(np.convolve(env_db, np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES, mode="valid").min())


def find_onsets(env_db: np.ndarray, threshold_db: float, sample_rate: int,
                reference_db: np.ndarray | None = None) -> list[int]:
    """Envelope frames where a note starts: the sound's start, then every sharp level rise.

    A rise starts a note when it comes within ONSET_MIN_LEVEL_DB of ``reference_db``: the
    clip's loudest point by default; tracks pass a moving maximum, so that a quiet verse
    still has notes next to a loud chorus or drum hit.
    """
    active = np.flatnonzero(env_db > threshold_db)
    if active.size == 0:
        return []
    # A slow attack starts below the threshold: walk back along a smoothed envelope to
    # where it meets the noise floor, so the note keeps its whole attack.
    smooth = np.convolve(env_db, np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES, mode="valid")
    floor = noise_floor_db(env_db)
    first = int(active[0])
    # (a clip shorter than the smoothing, a 30 ms one-shot, has no smoothed envelope)
    while first > 0 and smooth.size and smooth[min(first - 1, smooth.size - 1)] > floor + 3.0:
        first -= 1
    onsets = [first]
    min_gap = int(_MIN_ONSET_GAP_SECONDS * sample_rate / ENVELOPE_HOP)
    padded = np.concatenate([np.full(_RISE_FRAMES, env_db[0]), env_db])
    windows = np.lib.stride_tricks.sliding_window_view(padded[:-1], _RISE_FRAMES)[: env_db.size]
    rise = env_db - windows.min(axis=1)
    reference = float(env_db.max()) if reference_db is None else reference_db
    loud_enough = env_db > np.maximum(threshold_db, reference - ONSET_MIN_LEVEL_DB)
    candidates = np.flatnonzero((rise >= ONSET_RISE_DB) & loud_enough)
    for frame in candidates:
        if frame - onsets[-1] < min_gap:
            continue
        # start the note at the quiet point just before the rise
        start = max(onsets[-1] + 1, int(frame) - _RISE_FRAMES + int(np.argmin(windows[frame])))
        if start - onsets[-1] >= min_gap:
            onsets.append(start)
    return onsets


def estimate_release(env_db: np.ndarray, sample_rate: int) -> float | None:
    """Note-off time (seconds from the start of ``env_db``) from a kink in the decay.

    Fits two straight lines (in dB) from the loudest frame to the end of the sound; a second
    line that falls clearly faster than the first marks the release. ``None`` when the note
    is held to the end or has died away before the release could show.
    """
    # start where the note first comes within 3 dB of its peak: the whole plateau is fitted
    peak = int(np.argmax(env_db >= env_db.max() - 3.0))
    # the last half frame is zero-padded by the envelope's centred frames: leave it out
    y = env_db[peak : max(peak, env_db.size - 2)].astype(np.float64)
    n = y.size
    if n < 12:
        return None
    t = np.arange(n, dtype=np.float64)
    # prefix sums for O(n) least-squares fits of every split
    s1, st, stt = np.cumsum(np.ones(n)), np.cumsum(t), np.cumsum(t * t)
    sy, sty, syy = np.cumsum(y), np.cumsum(t * y), np.cumsum(y * y)

    def fit(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        def seg(c: np.ndarray) -> np.ndarray:
            return c[hi - 1] - np.where(lo > 0, c[np.maximum(lo - 1, 0)], 0.0)

        count, sum_t, sum_tt, sum_y, sum_ty, sum_yy = seg(s1), seg(st), seg(stt), seg(sy), seg(sty), seg(syy)
        var_t = sum_tt - sum_t**2 / count
        cov = sum_ty - sum_t * sum_y / count
        slope = np.where(var_t > 1e-9, cov / np.maximum(var_t, 1e-9), 0.0)
        sse = (sum_yy - sum_y**2 / count) - slope * cov
        return slope, np.maximum(sse, 0.0)

    margin = 6
    splits = np.arange(margin, n - margin)
    if splits.size == 0:
        return None
    slope_a, sse_a = fit(np.zeros_like(splits), splits)
    slope_b, sse_b = fit(splits, np.full_like(splits, n))
    best = int(np.argmin(sse_a + sse_b))
    frames_per_second = sample_rate / ENVELOPE_HOP
    gap = (slope_a[best] - slope_b[best]) * frames_per_second
    _, sse_one = fit(np.array([0]), np.array([n]))
    improved = (sse_a[best] + sse_b[best]) < 0.5 * float(sse_one[0])
    fall = -slope_b[best] * (n - splits[best])  # dB lost over the release segment
    if gap < _RELEASE_SLOPE_GAP_DB_S or not improved or fall < _RELEASE_MIN_FALL_DB:
        return None
    return (peak + int(splits[best])) / frames_per_second


#: The stretch of a note its pitch is read from (seconds after the attack). The index reads
#: its presets' pitch from the same stretch, so the two agree on sweeping or wobbling sounds.
PITCH_EXCERPT_SECONDS = (0.05, 0.5)
#: Shortest excerpt read as above (seconds); a shorter note (a one-shot under ~70 ms) is
#: read whole, from its attack ...
MIN_PITCH_EXCERPT_SECONDS = 0.05
#: ... with a laxer periodicity threshold (YIN's cumulative-mean-normalised difference): the
#: YIN frames of so short a note are mostly zero padding, which raises it to 0.17-0.27 on
#: clean 60 ms synth notes; noise, zaps and kick sweeps stay above 0.4.
SHORT_NOTE_YIN_THRESHOLD = 0.25


def note_pitch(note: np.ndarray, sample_rate: int) -> PitchEstimate:
    """The pitch of a note that starts at its attack, read from PITCH_EXCERPT_SECONDS."""
    start, stop = (int(t * sample_rate) for t in PITCH_EXCERPT_SECONDS)
    excerpt = note[start:stop] if note.size >= stop else note[min(start, note.size // 4) :]
    if excerpt.size < int(MIN_PITCH_EXCERPT_SECONDS * sample_rate):
        return estimate_pitch(note, sample_rate, min_seconds=MIN_NOTE_SECONDS, threshold=SHORT_NOTE_YIN_THRESHOLD)
    return estimate_pitch(excerpt, sample_rate, min_seconds=MIN_PITCH_EXCERPT_SECONDS)


def analyse_clip(audio: Audio, max_notes: int = 4) -> ClipAnalysis:
    """Find the notes of a clip, best first. Raises :class:`InputAudioError` for silence or
    clips with no note long enough to match."""
    x = audio.samples
    sr = audio.sample_rate
    if x.size < MIN_NOTE_SECONDS * sr:
        raise InputAudioError(f"{audio.name}: too short ({audio.duration * 1000:.0f} ms); "
                              f"at least {MIN_NOTE_SECONDS * 1000:.0f} ms of sound is needed")
    env_db = level_envelope_db(x)
    if env_db.max() < SILENT_CLIP_DBFS:
        raise InputAudioError(f"{audio.name}: the clip is silent (peak level {env_db.max():.0f} dBFS)")
    threshold = activity_threshold_db(env_db)
    active = env_db > threshold
    onsets = find_onsets(env_db, threshold, sr)

    spans: list[tuple[int, int, PitchEstimate]] = []  # (first frame, end frame, pitch)
    for start, stop in zip(onsets, onsets[1:] + [env_db.size]):
        live = np.flatnonzero(active[start:stop])
        if live.size == 0:
            continue
        end = start + int(live[-1]) + 1
        pitch = note_pitch(_frames_to_samples(x, start, end), sr)
        if spans and _same_sound(spans[-1], (start, end, pitch), env_db):
            spans[-1] = (spans[-1][0], end, spans[-1][2])
        else:
            spans.append((start, end, pitch))

    notes: list[Note] = []
    frames_per_second = sr / ENVELOPE_HOP
    for start, end, pitch in spans:
        duration = (end - start) / frames_per_second
        segment = _frames_to_samples(x, start, end)
        # the envelope's frames (and the walk back to a slow attack's start) widen a sound
        if sound_seconds(segment, threshold, sr) < MIN_NOTE_SECONDS:
            continue
        segment_env = env_db[start:end]
        release = estimate_release(segment_env, sr)
        loudness = float(segment_env.max())
        # long, clearly pitched, loud and early notes first
        score = (min(duration, 2.0) + 0.5 * pitch.confidence + 0.06 * (loudness - float(env_db.max()))
                 - 0.05 * start / frames_per_second)
        notes.append(Note(segment, sr, start / frames_per_second, pitch, loudness,
                          release if release is not None else segment.size / sr, score))
    if not notes:
        raise InputAudioError(
            f"{audio.name}: no note lasts {MIN_NOTE_SECONDS * 1000:.0f} ms or more above the noise floor "
            "(clip too short?)"
        )
    notes.sort(key=lambda n: n.score, reverse=True)
    return ClipAnalysis(audio, tuple(notes[:max_notes]))


def sound_seconds(x: np.ndarray, threshold_db: float, sample_rate: int) -> float:
    """How long ``x`` stays above ``threshold_db``, first to last crossing, on a 3 ms
    envelope: a one-shot's real length, without the smear of the 23 ms analysis frames."""
    above = np.flatnonzero(amplitude_to_db(rms_envelope(x, _FINE_FRAME, _FINE_HOP)) > threshold_db)
    return float(above[-1] - above[0] + 1) * _FINE_HOP / sample_rate if above.size else 0.0


def _frames_to_samples(x: np.ndarray, start: int, end: int) -> np.ndarray:
    return x[start * ENVELOPE_HOP : min(x.size, end * ENVELOPE_HOP + ENVELOPE_FRAME // 2)]


def _same_sound(previous: tuple[int, int, PitchEstimate], current: tuple[int, int, PitchEstimate],
                env_db: np.ndarray) -> bool:
    """Whether a "note" is its predecessor wobbling (tremolo, an LFO on the filter, an
    echo): no stretch of silence separates them and they are not clearly at different
    pitches."""
    p_start, p_end, p_pitch = previous
    c_start, _, c_pitch = current
    if c_start - p_end > 4:
        return False
    # Pitch readings of short stretches (an attack transient) are unreliable.
    long_enough = min(p_end - p_start, current[1] - c_start) * ENVELOPE_HOP >= _PITCH_SPLIT_MIN_FRAMES_SAMPLES
    confident = long_enough and p_pitch.confidence > 0.6 and c_pitch.confidence > 0.6
    if confident and p_pitch.midi is not None and c_pitch.midi is not None and abs(p_pitch.midi - c_pitch.midi) >= 1.0:
        return False  # a new note: legato to another pitch
    # A new note at the same pitch needs a stretch of near-silence before it; an LFO dip
    # under noise reaches the noise floor too, but only briefly.
    quiet = env_db[p_start : c_start + 1] <= noise_floor_db(env_db) + _GAP_ABOVE_FLOOR_DB
    longest = max((len(run) for run in np.split(quiet, np.flatnonzero(np.diff(quiet.astype(int))) + 1) if run.all()),
                  default=0)
    return longest * ENVELOPE_HOP < _GAP_MIN_SAMPLES


def compare_window(note: Note) -> tuple[float, float]:
    """(note length, render length) in seconds that a candidate is rendered with for ``note``."""
    total = min(note.duration, MAX_COMPARE_SECONDS)
    held = min(note.release_at, total)
    return max(0.02, min(held, total - 0.01)), total


#: How much of the clip either side of a note the recording's noise is measured on.
NOISE_CONTEXT_SECONDS = 1.0


def _start_in_clip(analysis: ClipAnalysis, note: Note) -> int | None:
    """Where ``note`` starts in the analysed audio (samples), or None where it was not cut
    from it (a resampled stem)."""
    start = int(round(note.start * analysis.audio.sample_rate))
    return start if np.array_equal(analysis.audio.samples[start : start + 64], note.samples[:64]) else None


def _clip_stretch(analysis: ClipAnalysis, first: int, last: int, rate: int) -> np.ndarray:
    """Samples ``first:last`` of the analysed audio at ``rate``: the same stretch of the
    full-band copy where it has that rate, resampled otherwise."""
    audio, full = analysis.audio, analysis.full_band
    if rate != audio.sample_rate and full is not None and full.sample_rate == rate:
        scale = rate / audio.sample_rate
        return full.samples[int(round(first * scale)) : int(round(last * scale))]
    return resample(audio.samples[first:last], audio.sample_rate, rate)


def around_note(analysis: ClipAnalysis, note: Note, sample_rate: int | None = None,
                margin: float = NOISE_CONTEXT_SECONDS) -> tuple[np.ndarray, tuple[int, int]]:
    """The clip from ``margin`` seconds before ``note`` to ``margin`` seconds after its end, at
    ``sample_rate`` (default: the note's; from the full-band copy where it has that rate),
    and where the note lies in it (start, end samples): the stretch a recording's noise is
    measured on, quiet moments around the note included. Just the note where it was not cut
    from the analysed audio (a stem)."""
    rate = note.sample_rate if sample_rate is None else sample_rate
    audio = analysis.audio
    start = _start_in_clip(analysis, note)
    if start is None:
        samples = resample(note.samples, note.sample_rate, rate)
        return samples, (0, samples.size)
    first = max(0, int(round((note.start - margin) * audio.sample_rate)))
    end = start + note.samples.size
    last = min(audio.samples.size, end + int(round(margin * audio.sample_rate)))
    scale = rate / audio.sample_rate
    span = (int(round((start - first) * scale)), int(round((end - first) * scale)))
    return _clip_stretch(analysis, first, last, rate), span


#: The compared stretch runs up to this far past a note's end while the input stays quiet
#: (it stops where the level rises TAIL_RISE_DB again: the next note), so a candidate that
#: keeps ringing after the input has stopped pays for it, and one released too early too.
TAIL_SECONDS = 0.5
TAIL_RISE_DB = 6.0


def note_with_tail(analysis: ClipAnalysis, note: Note, sample_rate: int | None = None) -> np.ndarray:
    """The note's samples and the quiet stretch that follows it in the clip, at
    ``sample_rate`` (default: the note's): taken from the analysis's full-band copy where it
    has one at that rate, resampled otherwise."""
    rate = note.sample_rate if sample_rate is None else sample_rate
    audio = analysis.audio
    start = _start_in_clip(analysis, note)
    if start is None:
        return resample(note.samples, note.sample_rate, rate)
    end = start + note.samples.size
    after = audio.samples[end : end + int(TAIL_SECONDS * audio.sample_rate)]
    if after.size >= ENVELOPE_FRAME:
        level = level_envelope_db(after)
        rises = np.flatnonzero(level > level[0] + TAIL_RISE_DB)
        end += after.size if rises.size == 0 else int(rises[0]) * ENVELOPE_HOP
    return _clip_stretch(analysis, start, end, rate)


def compared_stretch(analysis: ClipAnalysis, note: Note, sample_rate: int | None = None) -> np.ndarray:
    """What every candidate is compared with: the note's compare window (``compare_window``)
    and, where the note ends inside it, the quiet that follows it in the clip (up to
    TAIL_SECONDS), at ``sample_rate`` (default: the note's)."""
    rate = note.sample_rate if sample_rate is None else sample_rate
    _, window = compare_window(note)
    tail = TAIL_SECONDS if note.duration <= MAX_COMPARE_SECONDS else 0.0
    return note_with_tail(analysis, note, rate)[: int(round((window + tail) * rate))]
