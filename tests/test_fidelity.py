"""Answers play as scored: an exported preset file, loaded fresh in the synth package as a user
loads it, plays the WAV exported beside it; every match carries a confidence label."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from patchpilot.api import PatchPilot
from patchpilot.audio.io import write_wav
from patchpilot.cli import app
from patchpilot.confidence import LABELS, confidence_label
from patchpilot.export import export_preset
from patchpilot.synths import get_engine

#: The issue's fidelity target is MR-STFT <= 0.05 between the WAV and the fresh file; the
#: reference render is deterministic, so the samples themselves must agree.
SAMPLE_TOLERANCE = 1e-6

VITAL_WITH_EFFECTS = {
    "chorus": {"chorus_on": True, "osc_1_unison_voices": 4},
    "phaser": {"phaser_on": True, "filter_1_on": True, "filter_1_cutoff": 2000},
    "flanger": {"flanger_on": True, "reverb_on": True},
    "delay+lfo": {"delay_on": True, "lfo_1_shape": "Sine", "mod_lfo_1_to_filter_1_cutoff": 0.4, "filter_1_on": True},
}


def plain_vita(path: Path, note: int, velocity: int, hold: float, total: float) -> np.ndarray:
    """The file in a new ``vita.Synth``, nothing of Patch Pilot involved."""
    import vita

    synth = vita.Synth()
    assert synth.load_preset(str(path))
    stereo = synth.render(note, velocity / 127, hold, total)
    return 0.5 * (stereo[0] + stereo[1])


def plain_dexed(path: Path, note: int, velocity: int, hold: float, total: float) -> np.ndarray:
    import dexed

    voice = path.read_bytes()[6:161]  # the bare voice of the framed single-voice dump
    synth = dexed.DexedSynth(44100)
    synth.load_patch(dexed.Patch.from_sysex(voice))
    return np.asarray(synth.render(note, velocity, hold, total))


@pytest.mark.parametrize("effect", sorted(VITAL_WITH_EFFECTS))
def test_exported_vital_file_loaded_fresh_plays_the_exported_wav(effect: str, tmp_path: Path) -> None:
    engine = get_engine("vital")
    preset = engine.make_preset(f"FX {effect}", VITAL_WITH_EFFECTS[effect])
    files = export_preset(preset, tmp_path, effect, note=57, velocity=90, note_seconds=0.6, total_seconds=1.2)
    wav, rate = soundfile.read(files.audio_file, dtype="float32")
    assert rate == 44100
    fresh = plain_vita(files.preset_file, 57, 90, 0.6, 1.2)
    assert np.abs(wav - fresh).max() < SAMPLE_TOLERANCE


def test_exported_dx7_voice_loaded_fresh_plays_the_exported_wav(tmp_path: Path) -> None:
    engine = get_engine("dexed")
    # a refined preset carries values between the DX7's steps: the file rounds them, and the
    # WAV must play the rounded voice, not the unrounded values
    preset = engine.make_preset("EP", {"algorithm": "5", "op2_output_level": 70, "op2_coarse": 14})
    preset = preset.with_values({"op2_output_level": 70.4, "op1_output_level": 91.6})
    files = export_preset(preset, tmp_path, "ep", note=64, velocity=70, note_seconds=0.8, total_seconds=1.5)
    wav, _ = soundfile.read(files.audio_file, dtype="float32")
    assert np.abs(wav - plain_dexed(files.preset_file, 64, 70, 0.8, 1.5)).max() < SAMPLE_TOLERANCE


def test_reported_distance_is_that_of_the_exported_file(tiny_index: Path, pluck_wav: Path, tmp_path: Path) -> None:
    """The distance of each match is the re-ranker's distance, at the input's own rate, of the
    fresh file render through the exported effect chain."""
    from patchpilot.distance import PerceptualDistance
    from patchpilot.fx import FxChain, load_chain
    from patchpilot.matching import Matcher
    from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, from_native_rate

    with PatchPilot(tiny_index) as pilot:
        result = pilot.match(pluck_wav, top_k=3)
        exports = pilot.export(result, tmp_path)
    note = result.analysis.best
    rate = Matcher.heard_rate(result.analysis)
    assert rate == NATIVE_SAMPLE_RATE_HZ  # the pluck is bright: its answers are confirmed at 44.1 kHz
    distance = PerceptualDistance(rate)
    # the input as the matcher compares it: the note and the quiet after it, floored at its noise
    target = distance.prepare_target(Matcher.compared(result.analysis, note, rate),
                                     noise=Matcher.noise_of(result.analysis, note, rate))
    for match in result.matches:
        engine = get_engine(match.preset.synth)
        data = exports[match.rank].preset_file.read_bytes()
        played = engine.play_file(data, match.render.note, match.render.velocity, match.render.note_seconds,
                                  match.render.total_seconds, sample_rate=NATIVE_SAMPLE_RATE_HZ)
        fx_file = exports[match.rank].fx_file  # the effect chain, as the user loads it
        played = (load_chain(fx_file) if fx_file else FxChain()).apply(played, NATIVE_SAMPLE_RATE_HZ)
        played = from_native_rate(played, rate, match.render.total_seconds)
        assert float(distance.score(target, [played])[0]) == pytest.approx(match.distance, abs=1e-4)
    assert [m.distance for m in result.matches] == sorted(m.distance for m in result.matches)


def test_confidence_labels_order_distances() -> None:
    labels = [confidence_label(d) for d in (0.0, 0.3, 1.0, 2.0, 5.0, 100.0)]
    assert labels == sorted(labels, key=LABELS.index)
    assert labels[0] == "close" and labels[-1] == "rough"


def test_json_carries_confidence_and_how_to_hear_the_match(tiny_index: Path, pluck_wav: Path) -> None:
    result = CliRunner().invoke(app, ["match", str(pluck_wav), "--index", str(tiny_index), "--json", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    for match in document["matches"]:
        assert match["confidence"] == confidence_label(match["distance"])
        assert set(match["audition"]) == {"note", "note_name", "velocity", "hold_seconds"}
    # the pluck is in the index: its own preset comes back close, and nothing warns
    assert document["matches"][0]["confidence"] == "close"
    assert "warning" not in document


def test_a_sound_nothing_in_the_index_resembles_is_labelled_rough_with_a_warning(tiny_index: Path,
                                                                                 tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(int(1.5 * rate)) / rate
    rng = np.random.default_rng(3)
    # a noise swell with a rattling, inharmonic tone: no test preset sounds like it
    sound = rng.normal(size=t.size) * np.minimum(1, t / 0.7) * (1 + np.sign(np.sin(2 * np.pi * 13 * t)))
    sound += np.sin(2 * np.pi * 1234.5 * t + 40 * np.sin(2 * np.pi * 3.3 * t))
    path = tmp_path / "odd.wav"
    write_wav(path, (0.2 * sound / np.abs(sound).max()).astype(np.float32), rate)
    result = CliRunner().invoke(app, ["match", str(path), "--index", str(tiny_index), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["matches"][0]["confidence"] == "rough"
    assert document["warning"].startswith("no close match")
    assert "no close match" in result.stderr
