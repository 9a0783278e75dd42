"""Sketches (``embed/sketch.py``): what they hear, and the index's copy (``index/sketches.py``)
that retrieval scores for every preset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ as SR
from patchpilot.embed.sketch import decode, encode, shifted, sketch, sketch_db, sketch_distance
from patchpilot.index.index import PresetIndex
from patchpilot.index.layout import SKETCHES_NAME
from patchpilot.index.manage import describe_index

from tests.conftest import TEST_NOTES, copy_index, index_files, render_note


def tone(midi: float, harmonics: str, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    """A held tone: "saw", "square" or "sine", with a 5 ms fade-in."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    ks = {"saw": range(1, 60), "square": range(1, 60, 2), "sine": range(1, 2)}[harmonics]
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in ks if f0 * k < SR / 2)
    x = x * np.minimum(1.0, t / 0.005)
    return level * x / np.abs(x).max()


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(sketch_distance(sketch_db(a), sketch_db(b)[None])[0])


def test_sketches_tell_waveforms_apart_and_ignore_level() -> None:
    saw, square, sine = tone(48, "saw"), tone(48, "square"), tone(48, "sine")
    assert distance(saw, 0.05 * saw) < 0.01  # both metrics level the sounds first
    for a, b in ((saw, square), (saw, sine), (square, sine)):
        assert distance(a, b) > 3.0, "waveforms of one pitch must be far apart"
    assert distance(saw, square) < distance(saw, sine)


def test_stored_form_keeps_levels_to_a_quarter_decibel() -> None:
    levels = sketch_db(tone(60, "saw"))
    back = decode(encode(levels))
    near = levels > levels.max() - 100  # the stored range
    assert np.abs(back - levels)[near].max() <= 0.25 + 1e-6
    assert sketch(tone(60, "saw")).dtype == np.uint8


def test_a_sketch_moved_an_octave_stands_in_for_the_octave() -> None:
    low, high, square_high = sketch_db(tone(48, "saw")), sketch_db(tone(60, "saw")), sketch_db(tone(60, "square"))
    moved = shifted(low[None], np.array([12.0]))
    assert sketch_distance(high, moved)[0] < sketch_distance(high, low[None])[0]
    assert sketch_distance(high, moved)[0] < sketch_distance(high, square_high[None])[0]


def test_every_indexed_preset_has_a_sketch_and_its_own_note_finds_it(tiny_index: Path, tiny_banks: Path) -> None:
    with PresetIndex.open(tiny_index) as index:
        assert index.sketches is not None
        assert sorted(index.sketches.rows.tolist()) == sorted(index._vectors["rows"].tolist())
        assert index.sketches.data.shape[1] == len(TEST_NOTES)
        audio = render_note("dexed", "Test Organ", tiny_banks, 64)
        vector = np.zeros(index.manifest.dim, np.float32)
        found = index.search_sketches(vector, sketch_db(audio), 64.0, synth="dexed", k=3)
        names = index.store.preset_ids([c.row for c in found])
        assert names[found[0].row].endswith("test-organ"), names
        assert found[0].notes == (64,)
        # excluded rows are not returned, other synths' presets neither
        again = index.search_sketches(vector, sketch_db(audio), 64.0, synth="dexed", k=3,
                                      exclude={found[0].row})
        assert found[0].row not in {c.row for c in again}
        assert all(index.store.synth_by_row()[c.row] == "dexed" for c in again)


def test_describe_gives_an_index_without_sketches_the_same_sketches(tiny_index: Path, tmp_path: Path) -> None:
    files = copy_index(tiny_index, tmp_path / "old")
    with PresetIndex.open(tiny_index) as built:
        expected = built.sketches
    (files / SKETCHES_NAME).unlink()
    with PresetIndex.open(tmp_path / "old") as old:
        assert old.sketches is None
        assert old.search_sketches(np.zeros(old.manifest.dim, np.float32), np.zeros((6, 32)), 60.0, k=4) == []
    seen: list[tuple[str, int, int]] = []
    assert describe_index(tmp_path / "old", progress=lambda *step: seen.append(step)) == len(expected.rows)
    assert seen[-1] == ("sketch", len(expected.rows), len(expected.rows)), "the bar ends full"
    with PresetIndex.open(tmp_path / "old") as new:
        assert new.sketches is not None
        np.testing.assert_array_equal(new.sketches.rows, expected.rows)
        synths = new.store.synth_by_row()
        dexed = np.array([synths[int(r)] == "dexed" for r in expected.rows])
        # DX7 plays the same every time; Vital's oscillators start at random phases
        np.testing.assert_array_equal(new.sketches.data[dexed], expected.data[dexed])
        steps = np.abs(new.sketches.data[~dexed].astype(int) - expected.data[~dexed].astype(int))
        assert np.median(steps) <= 2
    assert describe_index(tmp_path / "old") == 0  # nothing left to add


def test_an_unpitched_preset_is_played_at_the_note_its_sketch_was_scored_at() -> None:
    from patchpilot.index.sketches import Sketches

    notes = (48, 60)
    stored = np.stack([np.stack([sketch(tone(48, "sine")), sketch(tone(60, "saw"))]),   # row 1: a saw at 60
                       np.stack([sketch(tone(48, "saw")), sketch(tone(60, "sine"))])])  # row 2: a saw at 48
    table = Sketches(np.array([1, 2]), stored)
    query = sketch_db(tone(60, "saw"))
    distances, keys = table.distances(query, np.array([1, 2, 3]), np.array([np.nan, np.nan, np.nan]), notes)
    assert keys[:2].tolist() == [60.0, 48.0]  # each at the indexed note nearest the query
    assert distances[0] < 1.0 < distances[1] and np.isinf(distances[2])
    distances, keys = table.distances(query, np.array([1, 2]), np.array([60.0, 60.0]), notes)
    assert keys.tolist() == [60.0, 60.0] and distances[0] < distances[1]  # a pitched key stays as given


def test_describe_interrupted_while_sketching_resumes_without_sketching_again(
        tiny_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import patchpilot.index.manage as manage

    files = copy_index(tiny_index, tmp_path / "old")
    with PresetIndex.open(tiny_index) as built:
        expected = built.sketches
    (files / SKETCHES_NAME).unlink()
    monkeypatch.setattr(manage, "SKETCH_CHUNK", 2)
    sketched: list[tuple[str, str]] = []  # (synth, name): every preset of the tiny index has its own
    original = manage.sketch_preset
    monkeypatch.setattr(manage, "sketch_preset", lambda notes, voice, preset: (
        sketched.append((preset.synth, preset.name)), original(notes, voice, preset))[1])

    class PowerCut(Exception):
        pass

    def cut(name: str) -> None:
        if name == "sketch-chunk" and len(sketched) >= 4:
            raise PowerCut

    monkeypatch.setattr(manage, "checkpoint", cut)
    with pytest.raises(PowerCut):
        describe_index(tmp_path / "old")
    before = list(sketched)
    assert len(before) == 4  # two chunks of two were kept
    monkeypatch.setattr(manage, "checkpoint", lambda name: None)
    assert describe_index(tmp_path / "old") == len(expected.rows)
    again = sketched[len(before):]
    assert not set(again) & set(before) and len(again) == len(expected.rows) - 4
    assert len(set(sketched)) == len(sketched) == len(expected.rows)  # each preset sketched once
    with PresetIndex.open(tmp_path / "old") as new:
        np.testing.assert_array_equal(new.sketches.rows, expected.rows)
    assert not (tmp_path / "old" / "build").exists()


def test_a_damaged_sketch_file_is_searched_by_vector_with_a_warning(tiny_index: Path, tmp_path: Path) -> None:
    files = copy_index(tiny_index, tmp_path / "damaged")
    (files / SKETCHES_NAME).write_bytes(b"not a zip")
    with PresetIndex.open(tmp_path / "damaged") as index, pytest.warns(UserWarning, match="unreadable sketches"):
        assert index.sketches is None
    shutil.rmtree(tmp_path / "damaged")
    assert index_files(tiny_index).exists()


def test_retrieval_hears_each_synths_nearest_by_sketch(tiny_index: Path, tiny_banks: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot.audio.analysis import analyse_clip
    from patchpilot.audio.io import Audio
    from patchpilot.matching import Matcher

    monkeypatch.setattr("patchpilot.matching.retrieval.SKETCH_CANDIDATES", 2)
    audio = Audio(render_note("dexed", "Test Organ", tiny_banks, 62), SR, "organ.wav")
    note = analyse_clip(audio).best
    with PresetIndex.open(tiny_index) as index, Matcher(index) as matcher:
        retrieval = matcher.retrieval
        vector = retrieval.vector(note)
        by_vector = {c.row for c in matcher.index.search(vector, note.pitch.midi, k=1)}
        found, _ = retrieval.candidates(vector, note, None, 1)
        synths = matcher.index.store.synth_by_row()
        extra = [c for c in found if c.row not in by_vector]
        assert sorted(synths[c.row] for c in extra) == ["dexed", "dexed", "vital", "vital"]
        ids = matcher.index.store.preset_ids([c.row for c in found])
        assert any(i.endswith("test-organ") for i in ids.values())
        assert len({c.row for c in found}) == len(found)  # no preset twice


def test_a_short_note_is_compared_on_the_windows_it_was_held_for() -> None:
    from patchpilot.embed.sketch import windows_held

    assert windows_held(None) == windows_held(5.0) == 6
    assert windows_held(0.2) == 4  # the windows from 0, 30, 80 and 160 ms
    assert windows_held(0.005) == 2
    held, short = tone(57, "saw", 1.0), tone(57, "saw", 0.36)  # released at 0.3 s: the first four windows
    short[-int(0.06 * SR):] *= np.linspace(1.0, 0.0, int(0.06 * SR))
    whole, early = sketch_db(held), sketch_db(short)
    assert sketch_distance(early, whole[None], windows_held(0.3))[0] < 0.5 < sketch_distance(early, whole[None])[0]
