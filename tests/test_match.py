"""Matching end to end on the tiny index: retrieval, re-ranking, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from patchpilot.api import PatchPilot
from patchpilot.fx import FxChain, load_chain
from patchpilot.export import EXPORT_TAIL_SECONDS
from patchpilot.report import result_to_dict
from patchpilot.synths import get_engine


def test_a_vital_pluck_at_an_unindexed_pitch_is_found(tiny_index: Path, pluck_wav: Path) -> None:
    with PatchPilot(tiny_index) as pilot:
        result = pilot.match(pluck_wav, top_k=3)
    assert result.matches[0].preset_id == "vital:test-pluck"
    assert result.matches[0].distance < result.matches[1].distance


def test_the_same_input_gets_the_same_answer_whatever_was_matched_before(tiny_index: Path, pluck_wav: Path,
                                                                        organ_wav: Path) -> None:
    with PatchPilot(tiny_index) as pilot:
        first = pilot.match(pluck_wav, top_k=5, synth="vital")
        pilot.match(organ_wav, top_k=5, synth="vital")
        again = pilot.match(pluck_wav, top_k=5, synth="vital")
    assert [(m.preset_id, m.distance, m.render) for m in again.matches] == \
        [(m.preset_id, m.distance, m.render) for m in first.matches]


def test_a_dexed_organ_is_found_and_synth_filter_applies(tiny_index: Path, organ_wav: Path) -> None:
    with PatchPilot(tiny_index) as pilot:
        assert pilot.match(organ_wav, top_k=1).matches[0].preset_id == "dexed:test-organ"
        only_vital = pilot.match(organ_wav, top_k=3, synth="vital")
    assert all(m.preset.synth == "vital" for m in only_vital.matches)


def test_a_cheap_synths_extra_candidates_get_a_first_hearing(tiny_index: Path, organ_wav: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot.audio.analysis import analyse_clip
    from patchpilot.audio.io import load_audio
    from patchpilot.index.index import PresetIndex
    from patchpilot.matching import Contender, Matcher
    from patchpilot.matching.rerank import Reranker

    monkeypatch.setattr("patchpilot.matching.retrieval.SHORTLIST", 2)
    # none straight in by sketch (they would join the one shared candidate): this counts the shortlist
    monkeypatch.setattr("patchpilot.matching.retrieval.SKETCH_CANDIDATES", 0)
    with Matcher(PresetIndex.open(tiny_index)) as matcher:
        analysis = analyse_clip(load_audio(organ_wav))
        note = analysis.best
        dexed = [sp for sp in matcher.index.store.iter_presets() if sp.preset.synth == "dexed"]
        # every DX7 preset of the tiny index, the organ last, each at the input's key
        dexed.sort(key=lambda sp: sp.preset_id == "dexed:test-organ")
        heard = matcher.retrieval.shortlist(matcher.compared(analysis, note), matcher.noise_of(analysis, note),
                                            [Contender(sp, (66,), None) for sp in dexed])
        assert len(heard) == 2 and heard[0].stored.preset_id == "dexed:test-organ"
        # with one shared candidate, the re-ranker hears the DX7 shortlist too
        assert get_engine("dexed").min_rerank_candidates > 1
        heard_counts: list[int] = []
        rerank = Reranker.rerank
        monkeypatch.setattr(Reranker, "rerank", lambda self, t, candidates, *more: heard_counts.append(len(candidates))
                            or rerank(self, t, candidates, *more))
        result = matcher.match_audio(load_audio(organ_wav), top_k=1, synth="dexed", candidates=1)
    assert heard_counts == [1 + 2] and result.matches[0].preset_id == "dexed:test-organ"


def test_json_has_parameters_and_no_musical_content(tiny_index: Path, pluck_wav: Path) -> None:
    with PatchPilot(tiny_index) as pilot:
        document = result_to_dict(pilot.match(pluck_wav, top_k=2))
    assert set(document) == {"input", "matches"}
    match = document["matches"][0]
    assert {"rank", "synth", "preset_id", "name", "category", "tags", "distance", "params", "preset_file"} <= set(match)
    assert match["params"]["filter_1_cutoff"] == pytest.approx(900, rel=0.01)
    forbidden = {"note", "notes", "pitch", "midi", "onset", "onsets", "start", "time", "timing", "velocity", "melody"}

    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            # "audition" says how to hear the match (the key to play): the only place a note may appear
            return set(node) | set().union(*(keys(v) for k, v in node.items()
                                             if k not in ("params", "units", "audition")))
        if isinstance(node, list):
            return set().union(*(keys(v) for v in node)) if node else set()
        return set()

    assert not keys(document) & forbidden


def test_exported_presets_reload_and_render_the_exported_audio(tiny_index: Path, pluck_wav: Path,
                                                               organ_wav: Path, tmp_path: Path) -> None:
    with PatchPilot(tiny_index) as pilot:
        for wav, note in ((pluck_wav, 53), (organ_wav, 66)):
            result = pilot.match(wav, top_k=2)
            exports = pilot.export(result, tmp_path)
            for match in result.matches:
                files = exports[match.rank]
                engine = get_engine(match.preset.synth)
                (loaded,) = engine.read_presets(files.preset_file)
                audio, rate = soundfile.read(files.audio_file, dtype="float32")
                assert rate == 44100
                again = engine.render(loaded, match.render.note, match.render.velocity, match.render.note_seconds,
                                      match.render.total_seconds + EXPORT_TAIL_SECONDS, sample_rate=44100)
                chain = load_chain(files.fx_file) if files.fx_file else FxChain()
                assert chain == match.fx
                assert np.array_equal(audio, chain.apply(again, 44100))
                if match.preset_id.endswith(("test-pluck", "test-organ")):
                    assert match.render.note == note


def test_exported_vital_file_loads_in_plain_vita(tiny_index: Path, pluck_wav: Path, tmp_path: Path) -> None:
    import vita

    with PatchPilot(tiny_index) as pilot:
        result = pilot.match(pluck_wav, top_k=1)
        exports = pilot.export(result, tmp_path)
    match = result.matches[0]
    synth = vita.Synth()
    assert synth.load_preset(str(exports[1].preset_file))
    stereo = synth.render(53, match.render.velocity / 127, match.render.note_seconds,
                          match.render.total_seconds + EXPORT_TAIL_SECONDS)
    exported, _ = soundfile.read(exports[1].audio_file, dtype="float32")
    # the WAV (32-bit float) is what plain vita plays from the file
    assert np.abs(exported - 0.5 * (stereo[0] + stereo[1])).max() < 1e-6


def test_a_note_in_a_room_gets_a_reverb_and_a_dry_note_none(tiny_index: Path, tiny_banks: Path, pluck_wav: Path,
                                                            tmp_path: Path) -> None:
    from conftest import render_note

    from patchpilot.audio.io import write_wav
    from patchpilot.fx import Effect

    room = FxChain((Effect("Reverb", (("room_size", 0.85), ("damping", 0.3), ("wet_level", 0.6))),))
    dry = render_note("dexed", "Test Bell", tiny_banks, 62, sample_rate=44100)
    wet = tmp_path / "bell-in-a-room.wav"
    write_wav(wet, room.apply(np.concatenate([dry, np.zeros(22050, np.float32)]), 44100), 44100)
    with PatchPilot(tiny_index) as with_fx, PatchPilot(tiny_index, fx=False) as without:
        best = with_fx.match(wet, top_k=1).matches[0]
        plain = without.match(wet, top_k=1).matches[0]
        assert "Reverb" in [e.kind for e in best.fx.effects]
        # judged at 44.1 kHz (the input's rate) the reverb found brings it to x0.81 (x0.77 at 22.05 kHz)
        assert best.distance < 0.85 * plain.distance
        assert plain.fx == FxChain()
        exact = with_fx.match(pluck_wav, top_k=1).matches[0]
        assert exact.fx == FxChain() and exact.preset_id == "vital:test-pluck"
    document = result_to_dict(with_fx_result := PatchPilot(tiny_index).match(wet, top_k=1))
    assert document["matches"][0]["fx"][0]["effect"] in {e.kind for e in with_fx_result.matches[0].fx.effects}


def test_a_sustained_preset_on_a_decaying_note_is_released_at_the_inputs_note_off(
        tiny_index: Path, tiny_banks: Path, tmp_path: Path) -> None:
    """A held organ fading out (a sound that decays while the key is down, then is let go):
    the input falls away from the held organ within a few tenths of a second, which is where
    the held-render comparison reads its note-off. The re-ranker also releases the organ
    where the analysis read the input's own note-off, and that is what the answer plays."""
    from conftest import render_note

    from patchpilot.audio.analysis import analyse_clip
    from patchpilot.audio.io import load_audio, write_wav
    from patchpilot.index.index import PresetIndex
    from patchpilot.matching import Matcher

    held = 1.2
    organ = render_note("dexed", "Test Organ", tiny_banks, 66, velocity=80, seconds=held, tail=0.6, sample_rate=44100)
    fading = organ * np.exp(-np.arange(organ.size) / 44100 / 0.8).astype(np.float32)
    path = tmp_path / "fading-organ.wav"
    write_wav(path, fading, 44100)
    with Matcher(PresetIndex.open(tiny_index)) as matcher:
        analysis = analyse_clip(load_audio(path))
        assert Matcher.note_off(matcher.compared(analysis, analysis.best), analysis.best) == pytest.approx(held, abs=0.1)
        best = matcher.match_audio(load_audio(path), top_k=1, synth="dexed").matches[0]
    assert best.preset_id == "dexed:test-organ"
    assert best.render.note_seconds == pytest.approx(held, abs=0.1)
