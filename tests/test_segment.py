"""Choosing notes in a track: chords and drums are rejected, clean notes at different pitches
are kept. What is chosen stays internal (see test_separate for the JSON check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import drum_hit, make_track

from patchpilot.audio.io import Audio
from patchpilot.audio.segment import attack_glide, harmonic_share, select_track_notes
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ as SR
from patchpilot.errors import InputAudioError
from patchpilot.synths import get_engine


def _saw(note: int) -> np.ndarray:
    engine = get_engine("vital")
    return engine.render(engine.init_preset(), note, 100, 0.7, 0.9)


def test_a_track_gives_clean_notes_at_different_pitches_and_no_chord_or_drum(tiny_banks: Path) -> None:
    track, events = make_track(tiny_banks)
    chosen = select_track_notes(Audio(track, SR, "song")).notes
    assert 3 <= len(chosen) <= 4
    pitches = [round(n.pitch.midi) for n in chosen]
    assert len(set(pitches)) == len(pitches)
    for note in chosen:
        # the note lies within one single-note event, whose pitch it has
        middle = note.start + min(note.duration, 0.5) / 2
        kind, start, _ = next(e for e in events if e[1] - 0.05 <= middle <= e[2])
        assert kind == "note", (kind, start)
    assert set(pitches) <= {57, 60, 62, 64, 67, 72}


def test_chords_and_single_notes_are_told_apart_by_their_harmonics() -> None:
    assert harmonic_share(_saw(60), SR) > 0.95
    triad = _saw(60) + _saw(64) + _saw(67)
    assert harmonic_share(triad, SR) < 0.75
    minor = _saw(57) + _saw(60) + _saw(64)
    assert harmonic_share(minor, SR) < 0.75


def test_a_kick_sweeps_and_a_synth_note_does_not() -> None:
    assert attack_glide(drum_hit("kick", SR), SR) > 3.0
    assert abs(attack_glide(_saw(45), SR)) < 0.5


def test_a_track_of_drums_and_chords_only_is_a_clear_error() -> None:
    hits = [drum_hit(kind, SR, seed=i) for i, kind in enumerate(["kick", "snare"] * 6)]
    chords = [(_saw(60) + _saw(64) + _saw(67)) / 3, (_saw(62) + _saw(65) + _saw(69)) / 3]
    gap = np.zeros(3000, np.float32)
    track = np.concatenate([part for item in hits + chords for part in (item.astype(np.float32), gap)])
    with pytest.raises(InputAudioError, match="no clean single note"):
        select_track_notes(Audio(track, SR, "drums.wav"))
    with pytest.raises(InputAudioError, match="silent"):
        select_track_notes(Audio(np.zeros(SR * 12, np.float32), SR, "quiet.wav"))
