"""The answer is played as long as the input's note: the note-off is read from the sound, so
a pluck that rings is not cut short, a pad is released where the input's was, and a one-shot
stays short."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patchpilot.api import PatchPilot
from patchpilot.audio.io import write_wav
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.synths import get_engine

from conftest import render_note

RATE = EXPORT_SAMPLE_RATE_HZ


def _end_of_sound(audio: np.ndarray, below_db: float = -40.0) -> float:
    """Seconds until the level (20 ms RMS) last stands within ``below_db`` of its peak."""
    frame = int(0.02 * RATE)
    level = np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(frame) / frame, mode="same"))
    return float(np.flatnonzero(level >= level.max() * 10 ** (below_db / 20))[-1]) / RATE


# (synth, preset, note held, clip length): a DX7 tine that rings on while held, a pad held
# 1 s with a long release, a pluck tapped for 60 ms.
CASES = {
    "ringing tine": ("dexed", "Test Tine", 1.5, 2.2),
    "pad": ("vital", "Test Pad", 1.0, 2.6),
    "tapped pluck": ("vital", "Test Pluck", 0.06, 0.8),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_answer_is_held_and_rings_as_long_as_the_input(case: str, tiny_index: Path, tiny_banks: Path,
                                                           tmp_path: Path) -> None:
    synth, name, held, total = CASES[case]
    clip = render_note(synth, name, tiny_banks, 60, seconds=held, tail=total - held, sample_rate=RATE)
    wav = tmp_path / f"{case}.wav"
    write_wav(wav, np.concatenate([np.zeros(int(0.2 * RATE), np.float32), clip]), RATE)
    with PatchPilot(tiny_index) as pilot:
        best = pilot.match(wav, top_k=1, synth=synth).matches[0]
    assert best.preset.name == name
    settings = best.render
    answer = get_engine(synth).render(best.preset, settings.note, settings.velocity, settings.note_seconds,
                                      total, sample_rate=RATE)
    assert abs(_end_of_sound(answer) - _end_of_sound(clip)) < 0.12, (settings, _end_of_sound(answer),
                                                                        _end_of_sound(clip))
    if case != "ringing tine":  # a tine that has died away while held has no audible note-off
        assert abs(settings.note_seconds - held) < max(0.1, 0.15 * held), settings
