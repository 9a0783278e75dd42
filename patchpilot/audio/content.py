"""Song or single sound: whether a long input is a track to search or one sound to match.

Length alone does not tell: a tubular bell or a pad's release rings for 20 s, a song can
be 12 s long. What makes a song is what it holds:

* new sounds: onsets that bring partials the half second before did not have (a note at
  another pitch, another instrument). Tremolo, an LFO on the filter and the beating of
  detuned unison voices make level rises as sharp as a note's, but on partials already
  sounding;
* drum hits: onsets whose added energy is broadband (a snare, a hi-hat, a kick's click) or
  a low sweep (a kick), and dies away within DRUM_DECAY_SECONDS.

More than SINGLE_SOUND_MAX_NEW_SOUNDS new sounds or at least SONG_MIN_DRUM_HITS drum hits
make a song; one note, or a few notes of one sound, stay one sound. Onsets are found as in
a track (``segment.track_onsets``): against the loudest sound nearby.

Like the rest of ``audio/``, nothing measured here reaches any output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchpilot.audio.analysis import ENVELOPE_HOP, activity_threshold_db, level_envelope_db
from patchpilot.audio.dsp import EPS, power_spectrogram
from patchpilot.audio.io import Audio
from patchpilot.audio.segment import track_onsets
from patchpilot.constants import SILENT_CLIP_DBFS, SINGLE_SOUND_MAX_SECONDS, TRACK_MIN_SECONDS

#: A song has more new sounds than this ...
SINGLE_SOUND_MAX_NEW_SOUNDS = 4
#: ... or at least this many drum hits.
SONG_MIN_DRUM_HITS = 4

#: FFT size of the spectra compared (frames hop like the level envelope, ENVELOPE_HOP).
_N_FFT = 1024
#: An onset's partials are compared with the loudest each bin was over this much before it.
NEW_SOUND_MEMORY_SECONDS = 0.5
#: A bin is new where it comes this much (dB) above that ...
NEW_PARTIAL_DB = 10.0
#: ... and an onset is a new sound where new bins hold this share of its power. Measured on
#: renders: 0.6-1.0 for notes at other pitches and new instruments, 0.0 for tremolo and
#: unison beating; repeated identical drum hits score 0-0.3 (they count as drum hits).
NEW_SOUND_MIN_SHARE = 0.3
#: The level an onset adds (over the frames before it) must fall this much (dB) ...
DRUM_FALL_DB = 10.0
#: ... within this long for a drum hit (a synth note keeps what it added).
DRUM_DECAY_SECONDS = 0.15
#: Broadband: the spectral flatness of the added energy (100 Hz-8 kHz) reaches this; it is
#: 0.05-0.7 for snares and hi-hats over a mix and under 0.03 for synth notes and plucks,
#: whose energy rises only on their partials.
DRUM_MIN_FLATNESS = 0.05
_BROADBAND_HZ = (100.0, 8000.0)
#: A kick: the added energy sits below this (its centroid, Hz) ...
KICK_MAX_CENTROID_HZ = 200.0
#: ... and its pitch falls by at least this much (semitones, the centroid under
#: _KICK_BAND_HZ) over the next KICK_SWEEP_SECONDS: a sub-bass note holds its pitch.
KICK_MIN_SWEEP_SEMITONES = 3.0
KICK_SWEEP_SECONDS = 0.05
_KICK_BAND_HZ = 300.0
#: Frames read before an onset (what was sounding), and after it for its peak.
_BEFORE_FRAMES = 6
_PEAK_SEARCH_FRAMES = 16


@dataclass(frozen=True)
class Content:
    """What a long input holds, as far as the song test needs."""

    new_sounds: int
    drum_hits: int

    @property
    def is_song(self) -> bool:
        return self.new_sounds > SINGLE_SOUND_MAX_NEW_SOUNDS or self.drum_hits >= SONG_MIN_DRUM_HITS


def looks_like_song(audio: Audio) -> bool:
    """Whether ``audio`` is a track (a song, a recording of many notes) rather than one
    sound: clips up to TRACK_MIN_SECONDS never are, inputs over SINGLE_SOUND_MAX_SECONDS
    always are, and in between the content decides."""
    if audio.duration <= TRACK_MIN_SECONDS:
        return False
    if audio.duration > SINGLE_SOUND_MAX_SECONDS:
        return True
    return measure_content(audio).is_song


def measure_content(audio: Audio) -> Content:
    """Count the new sounds and drum hits of ``audio`` (seconds of numpy for 30 s)."""
    x, sr = audio.samples, audio.sample_rate
    env_db = level_envelope_db(x)
    if env_db.max() < SILENT_CLIP_DBFS:
        return Content(0, 0)
    onsets = track_onsets(env_db, activity_threshold_db(env_db), sr)
    power = power_spectrogram(x, _N_FFT, ENVELOPE_HOP)  # frames line up with env_db's
    hz = np.fft.rfftfreq(_N_FFT, 1.0 / sr)
    broadband = (hz > _BROADBAND_HZ[0]) & (hz < _BROADBAND_HZ[1])
    kick_band = hz < _KICK_BAND_HZ
    memory = int(NEW_SOUND_MEMORY_SECONDS * sr / ENVELOPE_HOP)
    decay = int(DRUM_DECAY_SECONDS * sr / ENVELOPE_HOP)
    sweep = int(KICK_SWEEP_SECONDS * sr / ENVELOPE_HOP)
    last = power.shape[0] - 1
    new_sounds = drum_hits = 0
    for onset in onsets:
        peak = onset + int(np.argmax(env_db[onset : onset + _PEAK_SEARCH_FRAMES]))
        at_peak = power[max(0, peak - 1) : peak + 2].mean(axis=0)
        # New partials: above the loudest each bin (or a neighbour: vibrato, detuning) was
        # over the memory before the onset.
        heard = power[max(0, onset - memory) : max(0, onset - 1)]
        loudest = heard.max(axis=0) if heard.size else np.zeros(power.shape[1], dtype=power.dtype)
        loudest = np.maximum(loudest, np.maximum(np.roll(loudest, 1), np.roll(loudest, -1)))
        new = at_peak > loudest * 10 ** (NEW_PARTIAL_DB / 10)
        if at_peak[new].sum() >= NEW_SOUND_MIN_SHARE * (at_peak.sum() + EPS):
            new_sounds += 1
        # Drum hit: what the onset added, gone again within DRUM_DECAY_SECONDS.
        before = power[max(0, onset - _BEFORE_FRAMES) : onset + 1].mean(axis=0)
        added = np.maximum(at_peak - before, 0.0)
        later = np.maximum(power[min(last, peak + decay)] - before, 0.0)
        if 10 * np.log10((added.sum() + EPS) / (later.sum() + EPS)) < DRUM_FALL_DB:
            continue
        band = added[broadband] + EPS
        flatness = float(np.exp(np.mean(np.log(band))) / np.mean(band))
        if flatness >= DRUM_MIN_FLATNESS or _is_kick(added, np.maximum(power[min(last, peak + sweep)] - before, 0.0),
                                                     hz, kick_band):
            drum_hits += 1
    return Content(new_sounds, drum_hits)


def _is_kick(added: np.ndarray, later: np.ndarray, hz: np.ndarray, band: np.ndarray) -> bool:
    """Low added energy whose pitch sweeps down (a kick drum), not a sub-bass note."""
    if (added * hz).sum() / (added.sum() + EPS) >= KICK_MAX_CENTROID_HZ:
        return False
    start = (added[band] * hz[band]).sum() / (added[band].sum() + EPS)
    end = (later[band] * hz[band]).sum() / (later[band].sum() + EPS)
    return bool(end > 0 and 12 * np.log2(max(start, EPS) / end) >= KICK_MIN_SWEEP_SEMITONES)
