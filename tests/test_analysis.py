"""Clip analysis: silence, length, notes, releases. Nothing here is ever output."""

from __future__ import annotations

import numpy as np
import pytest

from patchpilot.audio.analysis import analyse_clip, estimate_release, level_envelope_db
from patchpilot.audio.io import Audio
from patchpilot.errors import InputAudioError
from patchpilot.synths import get_engine

SR = 22050


def _noise(size: int, level: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=size) * level).astype(np.float32)


def test_silence_and_too_short_clips_are_clear_errors() -> None:
    with pytest.raises(InputAudioError, match="silent"):
        analyse_clip(Audio(np.zeros(SR, np.float32), SR, "quiet.wav"))
    with pytest.raises(InputAudioError, match="too short"):
        analyse_clip(Audio(np.ones(100, np.float32) * 0.1, SR, "blip.wav"))
    click = np.zeros(SR, np.float32)
    click[1000:1400] = 0.5
    with pytest.raises(InputAudioError, match="no note lasts"):
        analyse_clip(Audio(click, SR, "click.wav"))


@pytest.mark.parametrize("held", [0.4, 0.9, 1.4])
def test_release_of_a_held_note_is_found(held: float) -> None:
    engine = get_engine("vital")
    pad = engine.make_preset("pad", {"env_1_attack": 0.2, "env_1_release": 0.6})
    audio = engine.render(pad, 55, 100, held, held + 0.9)
    audio = audio + _noise(audio.size, 0.003)
    note = analyse_clip(Audio(audio, SR, "pad")).best
    assert note.release_at == pytest.approx(held, abs=0.08)
    assert note.pitch.midi == pytest.approx(55, abs=0.2)


def test_two_separate_notes_are_two_notes_and_a_tremolo_is_one() -> None:
    engine = get_engine("dexed")
    pluck = engine.make_preset("p", {"op1_eg_rate_2": 40, "op1_eg_level_3": 0})
    first = engine.render(pluck, 60, 100, 0.4, 0.8)
    second = engine.render(pluck, 67, 100, 0.4, 0.8)
    clip = np.concatenate([first, np.zeros(4000, np.float32), second]) + _noise(first.size * 2 + 4000, 1e-4)
    assert len(analyse_clip(Audio(clip, SR, "two")).notes) == 2

    vital = get_engine("vital")
    tremolo = vital.make_preset("t", {"mod_lfo_2_to_voice_amplitude": -0.9, "lfo_2_frequency": 6.0})
    audio = vital.render(tremolo, 60, 100, 1.5, 1.7)
    notes = analyse_clip(Audio(audio, SR, "tremolo")).notes
    assert len(notes) == 1 and notes[0].duration > 1.4


def test_release_estimate_sees_no_release_in_a_held_organ() -> None:
    engine = get_engine("dexed")
    audio = engine.render(engine.init_preset(), 60, 100, 1.0, 1.0)
    assert estimate_release(level_envelope_db(audio), SR) is None
