"""Any single sound in: one-shots from 25 ms (synth kicks, zaps), single notes ringing for
20 s, and songs told from long single sounds by what they hold rather than their length."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, drum_hit, render_note
from typer.testing import CliRunner

import patchpilot.api
from patchpilot.api import PatchPilot
from patchpilot.audio.analysis import analyse_clip
from patchpilot.audio.content import looks_like_song, measure_content
from patchpilot.audio.io import Audio, write_wav
from patchpilot.audio.segment import select_track_notes
from patchpilot.cli import app
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ as SR
from patchpilot.errors import InputAudioError, PatchPilotWarning
from patchpilot.library.bank import load_factory_bank
from patchpilot.synths import get_engine

runner = CliRunner()


def synth_kick(seconds: float = 0.06) -> np.ndarray:
    """A synth kick: a sine falling from 200 to 50 Hz within 15 ms, 50 ms exponential decay."""
    t = np.arange(int(seconds * SR)) / SR
    hz = 50.0 + 150.0 * np.exp(-t / 0.015)
    return (0.9 * np.sin(2 * np.pi * np.cumsum(hz) / SR) * np.exp(-t / 0.05)).astype(np.float32)


def zap(seconds: float = 0.03) -> np.ndarray:
    """A zap: a square wave sweeping down from 2.2 kHz to 200 Hz."""
    t = np.arange(int(seconds * SR)) / SR
    hz = 200.0 + 2000.0 * np.exp(-t / 0.01)
    return (0.5 * np.sign(np.sin(2 * np.pi * np.cumsum(hz) / SR)) * np.exp(-t / 0.02)).astype(np.float32)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ---- one-shots --------------------------------------------------------------------------------
@pytest.mark.parametrize(("sound", "seconds"), [(synth_kick, 0.06), (zap, 0.03)])
def test_a_60_ms_kick_and_a_30_ms_zap_are_notes(sound, seconds: float) -> None:
    for clip in (sound(), np.concatenate([np.zeros(2000, np.float32), sound(), np.zeros(8000, np.float32)])):
        note = analyse_clip(Audio(clip + np.float32(1e-5), SR, "one-shot")).best
        assert seconds - 0.005 <= note.duration <= seconds + 0.08
        assert note.pitch.midi is None  # sweeps: searched over every pitch, not an error


def test_sounds_under_25_ms_are_clear_errors() -> None:
    with pytest.raises(InputAudioError, match="too short .20 ms.; at least 25 ms of sound"):
        analyse_clip(Audio(zap(0.02), SR, "tick.wav"))
    click = np.zeros(SR, np.float32)
    click[1000:1400] = 0.5  # 18 ms, which the 23 ms analysis frames would widen to 41 ms
    with pytest.raises(InputAudioError, match="no note lasts 25 ms"):
        analyse_clip(Audio(click, SR, "click.wav"))


def test_kick_and_zap_match_through_the_cli_and_the_api(tiny_index: Path, tmp_path: Path) -> None:
    kick, short_zap = tmp_path / "kick.wav", tmp_path / "zap.wav"
    write_wav(kick, synth_kick(), SR)
    write_wav(short_zap, zap(), SR)
    result = runner.invoke(app, ["match", str(kick), "--index", str(tiny_index), "--json", "--top-k", "3"])
    assert result.exit_code == 0, result.stderr
    matches = json.loads(result.stdout)["matches"]
    assert len(matches) == 3 and all(np.isfinite(m["distance"]) for m in matches)
    with PatchPilot(tiny_index) as pilot:
        assert [m.preset_id for m in pilot.match(kick, top_k=3).matches] == [m["preset_id"] for m in matches]
        zapped = pilot.match(short_zap, top_k=3).matches
    assert len(zapped) == 3 and all(np.isfinite(m.distance) for m in zapped)


def test_a_60_ms_pitched_one_shot_is_found_with_its_pitch_and_early_note_off(tiny_index: Path,
                                                                                 tiny_banks: Path) -> None:
    # A DX7 tine released after 30 ms: its pitch comes from the whole note, and the
    # re-ranker tries note-offs earlier than its held-render comparison can see.
    tine = render_note("dexed", "Test Tine", tiny_banks, 55, seconds=0.03, tail=0.1)
    note = analyse_clip(Audio(tine, SR, "tine")).best
    assert note.duration < 0.08 and note.pitch.midi == pytest.approx(55, abs=0.3)
    with PatchPilot(tiny_index) as pilot:
        best = pilot.matcher.match_audio(Audio(tine, SR, "tine"), top_k=2).matches[0]
    assert best.preset_id == "dexed:test-tine" and best.distance < 0.3
    assert best.render.note == 55 and best.render.note_seconds == pytest.approx(0.03, abs=0.006)


# ---- long single sounds and songs -------------------------------------------------------------
def _place(seconds: float, parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    out = np.zeros(int(seconds * SR), np.float32)
    for start, sound in parts:
        at = int(start * SR)
        piece = sound[: out.size - at]
        out[at : at + piece.size] += piece
    return out + np.random.default_rng(1).normal(size=out.size).astype(np.float32) * 1e-4


def make_song(banks: Path) -> np.ndarray:
    """12 s at 120 bpm: two bars of drums (kick, snare, hi-hats) under organ chords, two of
    a lead whose notes overlap, then drums under the lead."""
    vital, dexed = get_engine("vital"), get_engine("dexed")
    lead = next(p for p in load_factory_bank("vital", banks) if p.name == "Test Square Lead")
    organ = next(p for p in load_factory_bank("dexed", banks) if p.name == "Test Organ")
    t = np.arange(int(0.05 * SR)) / SR
    hat = (np.random.default_rng(5).normal(size=t.size) * np.exp(-t / 0.01) * 0.2).astype(np.float32)
    beats = [b for b in range(24) if not 8 <= b < 16]  # a break from 4 to 8 s
    drums = ([(0.5 * b, drum_hit("kick" if b % 2 == 0 else "snare", SR, b)) for b in beats]
             + [(0.5 * b + 0.25, hat) for b in beats])
    chords = [(2.0 * k, 0.1 * sum(dexed.render(organ, n, 90, 2.2, 3.0, sample_rate=SR) for n in chord))
              for k, chord in enumerate([(57, 60, 64), (53, 57, 60)])]
    melody = [(4.0 + 0.6 * k + (0.5 if k > 6 else 0.0),
               0.4 * vital.render(lead, (69, 72, 71, 67, 64, 65, 67, 69, 72, 74, 72)[k], 100, 0.7, 0.9, sample_rate=SR))
              for k in range(11)]
    return _place(12.0, drums + chords + melody)


@pytest.fixture(scope="module")
def song_wav(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("song") / "song.wav"
    write_wav(path, make_song(tiny_banks), SR)
    return path


def long_pad() -> np.ndarray:
    """A 20 s note: the tiny bank's pad held 5 s, with a 10 s release."""
    vital = get_engine("vital")
    pad = vital.make_preset("pad", {"osc_1_wavetable": "Sine to Saw", "osc_1_wave_frame": 60, "osc_1_unison_voices": 4,
                                    "env_1_attack": 0.4, "env_1_release": 10.0, "chorus_on": True})
    return vital.render(pad, 57, 100, 5.0, 20.0, sample_rate=SR)


@pytest.fixture(scope="module")
def long_pad_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "pad.wav"
    write_wav(path, long_pad(), SR)
    return path


def test_long_single_sounds_and_songs_are_told_apart_by_what_they_hold(tiny_banks: Path, song_wav: Path) -> None:
    vital, dexed = get_engine("vital"), get_engine("dexed")
    toll = next(p for p in load_factory_bank("dexed", REPO / "presets") if p.name == "Cathedral Toll")
    tremolo = vital.make_preset("t", {"mod_lfo_2_to_voice_amplitude": -0.9, "lfo_2_frequency": 6.0})
    chime = next(p for p in load_factory_bank("dexed", REPO / "presets") if p.name == "Tubular Chime")
    single = {
        "bell ringing 20 s": dexed.render(toll, 60, 100, 1.0, 20.0, sample_rate=SR),
        "pad with a 10 s release": long_pad(),
        "tremolo held 20 s": vital.render(tremolo, 60, 100, 19.5, 20.0, sample_rate=SR),
        "three chimes": _place(20.0, [(0.5 + 6 * k, dexed.render(chime, n, 100, 1.0, 8.0, sample_rate=SR))
                                      for k, n in enumerate((60, 67, 64))]),
    }
    for name, sound in single.items():
        content = measure_content(Audio(sound, SR, name))
        assert not content.is_song and content.drum_hits == 0 and content.new_sounds <= 3, (name, content)
        assert not looks_like_song(Audio(sound, SR, name))
    song = make_song(tiny_banks)
    content = measure_content(Audio(song, SR, "song"))
    assert content.is_song and content.drum_hits >= 8, content
    drums = _place(12.0, [(0.5 * b, drum_hit("kick" if b % 2 == 0 else "snare", SR, b)) for b in range(24)])
    assert measure_content(Audio(drums, SR, "drums")).drum_hits >= 16
    # length still counts: short clips are clips, anything over 30 s a track
    assert not looks_like_song(Audio(song[: 9 * SR], SR, "loop"))
    assert looks_like_song(Audio(np.tile(single["tremolo held 20 s"], 2)[: 31 * SR], SR, "drone"))


def test_a_20_s_note_matches_as_one_sound_without_demucs(tiny_index: Path, long_pad_wav: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def no_separator(*args: object, **kwargs: object) -> None:
        raise AssertionError("a single note must not be separated")

    monkeypatch.setattr(PatchPilot, "separator", no_separator)
    monkeypatch.setattr(patchpilot.api, "select_track_notes", no_separator)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PatchPilotWarning)
        with PatchPilot(tiny_index) as pilot:
            result = pilot.match(long_pad_wav, top_k=2)
    assert result.matches[0].preset_id.startswith("vital:test-pad")
    assert len(result.analysis.notes) == 1 and result.analysis.best.duration > 10.0
    cli = runner.invoke(app, ["match", str(long_pad_wav), "--index", str(tiny_index), "--json", "--top-k", "1",
                              "--candidates", "4"])
    assert cli.exit_code == 0, cli.stderr
    assert json.loads(cli.stdout)["matches"][0]["preset_id"] == result.matches[0].preset_id
    assert "warning" not in cli.stderr


@pytest.fixture
def without_demucs(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the core install: importing demucs fails (a None entry makes import raise)."""
    for name in ("demucs", "demucs.apply", "demucs.pretrained", "demucs.repo"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("without_demucs")
def test_a_song_without_demucs_is_matched_from_the_mix_with_one_line_on_demucs(
        tiny_index: Path, song_wav: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["match", str(song_wav), "--index", str(tiny_index)]
    result = runner.invoke(app, [*base, "--json", "--top-k", "2"])
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["matches"]) == 2
    lines = _lines(result.stderr)
    # one line on Demucs (a tiny index may add the one-line warning that the best answer is rough)
    (line,) = [line for line in lines if "Demucs" in line]
    assert line.startswith("warning:") and "Demucs is not installed" in line and "patchpilot[separate]" in line
    assert all(line.startswith("warning:") for line in lines) and len(lines) <= 2

    selected = []

    def spy(audio: Audio) -> object:
        selected.append(audio)
        return select_track_notes(audio)

    monkeypatch.setattr(patchpilot.api, "select_track_notes", spy)
    with PatchPilot(tiny_index) as pilot, pytest.warns(PatchPilotWarning, match="sounds like a song"):
        assert pilot.match(song_wav, top_k=1, candidates=4).matches
    assert [a.duration for a in selected] == [pytest.approx(12.0)]  # the whole mix, by the track analysis

    # asked for explicitly, separation without demucs stays an error
    explicit = runner.invoke(app, [*base, "--separate"])
    assert explicit.exit_code == 2 and explicit.stdout == ""
    (error,) = _lines(explicit.stderr)
    assert error.startswith("error:") and "patchpilot[separate]" in error
