"""Building, opening, resuming, extending and protecting indexes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_NOTES, copy_index, index_files
from patchpilot.errors import EmbedderMismatchError, IndexLoadError
from patchpilot.index.builder import BuildPlan, IndexBuilder
from patchpilot.index.index import PresetIndex
from patchpilot.paths import MANIFEST_NAME
from patchpilot.synths import get_engine


def test_tiny_index_holds_every_preset_with_full_parameters(tiny_index: Path) -> None:
    index = PresetIndex.open(tiny_index, "timbre")
    assert index.manifest.embedder == "timbre/1"
    assert index.manifest.notes == TEST_NOTES
    assert index.manifest.synths == {"dexed": 8, "vital": 8}
    stored = index.store.get_by_id("vital:test-pluck")
    assert stored is not None and stored.preset.category == "pluck"
    assert set(stored.preset.values) == set(get_engine("vital").params)
    assert stored.pitch_offset == pytest.approx(0.0, abs=0.2)
    bass = index.store.get_by_id("vital:test-sine-bass")
    assert bass.pitch_offset == pytest.approx(-12.0, abs=0.3)  # transposed an octave down
    variant = index.store.get_by_id("dexed:test-organ~001")
    assert variant is not None and variant.preset.origin == "variant of Test Organ"


def test_search_finds_a_preset_at_an_unindexed_pitch(tiny_index: Path, tiny_banks: Path) -> None:
    from conftest import render_note
    from patchpilot.embed import get_embedder

    index = PresetIndex.open(tiny_index)
    audio = render_note("dexed", "Test Brass", tiny_banks, 54)
    vector = index.transform.apply(get_embedder().features([audio]))[0]
    found = index.search(vector, 54.0, k=4)
    assert index.store.get_rows([found[0].row])[found[0].row].preset_id.startswith("dexed:test-brass")
    assert 54 in found[0].notes
    only_vital = index.search(vector, 54.0, synth="vital", k=4)
    assert all(index.store.get_rows([c.row])[c.row].preset.synth == "vital" for c in only_vital)


def test_missing_incomplete_and_foreign_indexes_are_clear_errors(tiny_index: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexLoadError, match="no index"):
        PresetIndex.open(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken_files = copy_index(tiny_index, broken)
    (broken_files / "vectors.faiss").unlink()
    with pytest.raises(IndexLoadError, match="incomplete index"):
        PresetIndex.open(broken)
    foreign = tmp_path / "foreign"
    foreign_files = copy_index(tiny_index, foreign)
    manifest = json.loads((foreign_files / MANIFEST_NAME).read_text())
    manifest["embedder"] = "clap/1"
    (foreign_files / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(EmbedderMismatchError, match="clap"):
        PresetIndex.open(foreign, "timbre")
    garbage = tmp_path / "garbage"
    garbage_files = copy_index(tiny_index, garbage)
    (garbage_files / "vectors.faiss").write_bytes(b"not faiss")
    with pytest.raises(IndexLoadError, match="unreadable"):
        PresetIndex.open(garbage).search(np.zeros(8, np.float32), 60.0)


class _Stop(Exception):
    pass


def test_an_interrupted_build_resumes_and_keeps_the_old_index(tiny_banks: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    plan = BuildPlan(output=out, synths=("dexed",), factory_root=tiny_banks, size_per_synth=8, notes=TEST_NOTES)
    IndexBuilder(plan).build()
    before = (index_files(out) / "vectors.faiss").read_bytes()

    bigger = BuildPlan(output=out, synths=("dexed",), factory_root=tiny_banks, size_per_synth=140, notes=TEST_NOTES)
    calls = []

    def interrupt(stage: str, done: int, total: int) -> None:
        calls.append(done)
        if stage == "render" and done >= 64:
            raise _Stop

    with pytest.raises(_Stop):
        IndexBuilder(bigger, progress=interrupt).build()
    assert (index_files(out) / "vectors.faiss").read_bytes() == before  # the old index is untouched
    assert PresetIndex.open(out).manifest.synths == {"dexed": 8}

    resumed: list[int] = []
    IndexBuilder(bigger, progress=lambda s, d, t: resumed.append(d) if s == "render" else None).build()
    assert resumed[0] >= 64  # it started where the interrupted build stopped
    assert PresetIndex.open(out).manifest.synths["dexed"] > 100
    assert not (out / "build").exists()


def add_user_presets(tiny_index: Path, tmp_path: Path) -> tuple[Path, object]:
    """A copy of the tiny index with a 32-voice DX7 bank and one .vital file of the user's."""
    import dexed

    out = tmp_path / "mine"
    copy_index(tiny_index, out)
    bank = tmp_path / "mybank.syx"
    patches = []
    for i in range(32):
        patch = dexed.Patch(f"MINE {i:02d}")
        patch.algorithm = i
        patch.op[1].output_level = 50 + i
        patches.append(patch)
    dexed.Patch.save_to_bank(str(bank), patches)
    vital_engine = get_engine("vital")
    vital_file = tmp_path / "My Lead.vital"
    vital_engine.write_preset(vital_engine.make_preset("My Lead", {"osc_1_wavetable": "Pulse Width"}), vital_file)

    plan = BuildPlan(output=out, user_paths=(bank, vital_file), notes=TEST_NOTES)
    return out, IndexBuilder(plan, append=True).build()


def test_user_presets_are_added_to_an_existing_index(tiny_index: Path, tmp_path: Path) -> None:
    out, report = add_user_presets(tiny_index, tmp_path)
    index = PresetIndex.open(out)
    assert report.appended == 33
    assert index.manifest.synths == {"dexed": 8 + 32, "vital": 8 + 1}
    mine = index.store.get_by_id("dexed:user:mybank:06")
    assert mine is not None and mine.preset.name == "MINE 05"
    lead = index.store.get_by_id("vital:user:my-lead")
    assert lead is not None and lead.preset.base_state is not None


def test_a_users_own_presets_always_join_the_reranked_candidates(tiny_index: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot.audio.io import Audio
    from patchpilot.matching import Matcher
    from patchpilot.matching.rerank import Reranker
    from patchpilot.matching.retrieval import USER_CANDIDATES

    out, _ = add_user_presets(tiny_index, tmp_path)
    index = PresetIndex.open(out)
    user_rows = index.store.user_rows()
    assert len(user_rows) == 33
    vector = index.transform.apply(np.ones((1, index.transform.mean.size), dtype=np.float32))[0]
    found = index.search(vector, 60.0, synth="dexed", k=10, user=True)
    assert len(found) == 10 and {c.row for c in found} <= user_rows
    assert not index.search(vector, 60.0, synth="vital", k=10, user=True)[1:]  # one .vital of the user's

    engine = get_engine("vital")  # a factory-like sound, so that the user's are not its nearest anyway
    audio = Audio(engine.render(engine.make_preset("saw", {}), 60, 100, 0.8, 1.4), 22050, "saw.wav")
    heard: list[set[int]] = []
    original = Reranker.rerank

    def spy(self, target, candidates, *more):
        heard.append({contender.stored.row for contender in candidates})
        return original(self, target, candidates, *more)

    monkeypatch.setattr(Reranker, "rerank", spy)
    monkeypatch.setattr("patchpilot.matching.retrieval.SHORTLIST", 0)  # no DX7 shortlist: only the user's join
    monkeypatch.setattr("patchpilot.matching.retrieval.SKETCH_CANDIDATES", 0)  # ... and none by sketch
    with Matcher(index) as matcher:
        matcher.match_audio(audio, top_k=1, candidates=1)
    # one candidate asked for; the user's nearest on each synth join it (one .vital of theirs)
    assert index.store.get_by_id("vital:user:my-lead").row in heard[0]
    assert len(heard[0] & user_rows) >= USER_CANDIDATES + 1
    assert len(heard[0]) <= 1 + USER_CANDIDATES + 1
