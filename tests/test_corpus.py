"""``patchpilot corpus``: every patch at every slot, made again exactly from its number, the
same from one run to the next, resumed after a kill, grown, and refused where it would mix
with something else. The two-node Ray run is in ``test_cluster.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.constants import INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS
from patchpilot.corpus import Corpus, CorpusBuilder, CorpusError, CorpusPlan, PatchMaker
from patchpilot.corpus.build import render_patch
from patchpilot.embed import get_embedder
from patchpilot.synths import get_engine

from conftest import assert_same_corpus

SLOTS = dict(notes=(48, 60), velocities=(40, 127))

DRIVER_SCRIPT = """
import sys
from pathlib import Path
from patchpilot.corpus import CorpusBuilder, CorpusPlan
plan = CorpusPlan(Path(sys.argv[1]), 10, ("dexed",), factory_root=Path(sys.argv[2]), shard_size=4,
                  notes=(48, 60), velocities=(40, 127))
CorpusBuilder(plan).build()
"""


def _plan(out: Path, banks: Path, size: int = 10, **changes: object) -> CorpusPlan:
    return CorpusPlan(out, size, ("dexed",), factory_root=banks, **{"shard_size": 4, **SLOTS, **changes})


@pytest.fixture(scope="module")
def dexed_corpus(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "dexed"
    CorpusBuilder(_plan(out, tiny_banks)).build()
    return out


def test_every_patch_is_rendered_at_every_slot_and_made_again_from_its_number(dexed_corpus: Path,
                                                                               tiny_banks: Path) -> None:
    corpus = Corpus.open(dexed_corpus)
    assert corpus.slots.tolist() == [[48, 40], [48, 127], [60, 40], [60, 127]]
    assert corpus.manifest["shards"] == {"dexed": 3} and corpus.manifest["complete"]
    data = corpus.load("dexed")
    names = corpus.param_names("dexed")
    assert data.numbers.tolist() == list(range(10))
    assert data.params.shape == (10, len(names)) and data.features.shape[:2] == (10, 4)
    assert set(data.kind.tolist()) == {0, 1}  # perturbed and uniform patches both
    assert sum(corpus.manifest["counts"]["dexed"].values()) == 10
    maker = PatchMaker("dexed", tiny_banks, seed=0)
    engine, embedder = get_engine("dexed"), get_embedder("timbre")
    for i in (0, 3, 7):
        patch = maker.patch(i)
        values = engine.params.complete(patch.preset.values)
        assert data.params[i].tolist() == pytest.approx([values[n] for n in names], abs=1e-6)
        assert data.parent[i] == patch.parent
        # the stored features are those of the regenerated patch, rendered afresh, slot by slot
        for slot, (note, velocity) in enumerate(corpus.slots.tolist()):
            audio = engine.render(patch.preset, note, velocity, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS)
            if data.audible[i, slot]:
                expected = embedder.features([audio])[0]
                assert np.allclose(data.features[i, slot], expected, rtol=2e-3, atol=2e-3)
            else:
                assert not data.features[i, slot].any()
    loud = data.audible
    assert (data.level_db[loud] > -100).all() and (data.level_db[~loud] == -120).all()
    assert ((data.status == 1) == ~loud.any(axis=1)).all()


def test_the_same_plan_makes_the_same_corpus_and_another_seed_another(dexed_corpus: Path, tiny_banks: Path,
                                                                       tmp_path: Path) -> None:
    CorpusBuilder(_plan(tmp_path / "again", tiny_banks)).build()
    assert_same_corpus(tmp_path / "again", dexed_corpus)
    CorpusBuilder(_plan(tmp_path / "other", tiny_banks, seed=1)).build()
    assert not np.array_equal(Corpus.open(tmp_path / "other").load("dexed").params,
                              Corpus.open(dexed_corpus).load("dexed").params)


def test_a_killed_run_resumes_from_its_shards_and_a_larger_size_grows_it(dexed_corpus: Path, tiny_banks: Path,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    env = dict(os.environ, PATCHPILOT_TEST_KILL_AT="corpus-shard")  # killed once the first shard is written
    killed = subprocess.run([sys.executable, "-c", DRIVER_SCRIPT, str(out), str(tiny_banks)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert [p.name for p in (out / "dexed").glob("shard-*.npz")] == ["shard-00000.npz"]
    with pytest.raises(CorpusError, match="not finished"):
        Corpus.open(out)
    first = (out / "dexed" / "shard-00000.npz").stat().st_mtime_ns
    report = CorpusBuilder(_plan(out, tiny_banks)).build()
    assert report.made == 2 and (out / "dexed" / "shard-00000.npz").stat().st_mtime_ns == first
    assert_same_corpus(out, dexed_corpus)
    # a damaged shard is made again; a larger size adds patches (the last shard is completed)
    (out / "dexed" / "shard-00001.npz").write_bytes(b"not a shard")
    report = CorpusBuilder(_plan(out, tiny_banks, size=14)).build()
    assert report.made == 3  # shard 1 (damaged), shard 2 (now 4 patches), shard 3 (new)
    CorpusBuilder(_plan(tmp_path / "fresh", tiny_banks, size=14)).build()
    assert_same_corpus(out, tmp_path / "fresh")


def test_a_patch_the_synth_cannot_play_is_recorded_as_failed(tiny_banks: Path) -> None:
    class Broken:
        def render(self, *args: object) -> np.ndarray:
            raise RuntimeError("boom")

    patch = PatchMaker("dexed", tiny_banks, 0).patch(0)
    result = render_patch(Broken(), patch, ((60, 100),), get_embedder("timbre"), dim=8, keep_audio=False)
    assert result.features is None and result.failure == "RuntimeError: boom"


def test_audio_is_kept_when_asked(tiny_banks: Path, tmp_path: Path) -> None:
    CorpusBuilder(_plan(tmp_path / "audio", tiny_banks, size=3, audio=True, notes=(60,), velocities=(100,))).build()
    data = Corpus.open(tmp_path / "audio").load("dexed", audio=True)
    assert data.audio is not None and data.audio.shape[:2] == (3, 1) and data.audio.dtype == np.float16
    engine = get_engine("dexed")
    expected = engine.render(PatchMaker("dexed", tiny_banks, 0).patch(1).preset, 60, 100, INDEX_NOTE_SECONDS,
                             INDEX_RENDER_SECONDS)
    assert np.allclose(data.audio[1, 0, : len(expected)].astype(np.float32), expected, atol=2e-3)


def test_a_folder_that_is_not_this_corpus_is_refused_in_one_line(dexed_corpus: Path, tiny_banks: Path,
                                                                   tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="made with other settings"):
        CorpusBuilder(_plan(dexed_corpus, tiny_banks, notes=(61,))).build()
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "keep.txt").write_text("mine")
    with pytest.raises(CorpusError, match="not empty and holds no corpus"):
        CorpusBuilder(_plan(tmp_path / "stuff", tiny_banks)).build()
    assert sorted(p.name for p in (tmp_path / "stuff").iterdir()) == ["keep.txt"]  # nothing written there
    runner = CliRunner()
    for args, message in ((["--notes", "6x"], "--notes takes whole numbers"),
                          (["--velocities", "0"], "velocities 1-127"),
                          (["--synth", "vst3:foo"], "a corpus can be made of vital and dexed")):
        result = runner.invoke(app, ["corpus", str(tmp_path / "new"), "--size", "2", *args])
        assert result.exit_code != 0
        assert result.output.count("\n") == 1 and message in result.output, result.output
    with pytest.raises(CorpusError, match="no corpus in"):
        Corpus.open(tmp_path / "stuff")


def test_the_cli_makes_a_corpus_of_both_synths(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["corpus", str(tmp_path / "c"), "--size", "3", "--notes", "60",
                                      "--velocities", "100", "--shard-size", "2"])
    assert result.exit_code == 0, result.output
    assert "4 of 4 shards made by this run" in result.output
    corpus = Corpus.open(tmp_path / "c")
    assert corpus.synths == ["vital", "dexed"]
    for synth in corpus.synths:
        data = corpus.load(synth)
        assert len(data.numbers) == 3 and len(corpus.param_names(synth)) == data.params.shape[1]


def test_velocity_pairs_are_one_patch_played_two_ways_and_teach_the_projection(tiny_banks: Path,
                                                                                tmp_path: Path) -> None:
    from patchpilot.index.builder import BuildPlan, IndexBuilder
    from patchpilot.index.index import PresetIndex

    CorpusBuilder(_plan(tmp_path / "corpus", tiny_banks, size=60, shard_size=32, notes=(48, 60, 72))).build()
    corpus = Corpus.open(tmp_path / "corpus")
    data = corpus.load("dexed")
    first, second = corpus.velocity_pairs(["dexed"], 10_000, seed=0, velocity=100)
    # slots (note, 40) and (note, 127) for three notes; 127 is the nearest to the index's 100
    expected = sum(int((data.audible[:, 2 * n] & data.audible[:, 2 * n + 1]).sum()) for n in range(3))
    assert len(first) == len(second) == expected > 150
    quiet, loud = data.features[:, 0::2].astype(np.float32), data.features[:, 1::2].astype(np.float32)
    for a, b in zip(first[:20], second[:20]):  # some patch at some note played a at 40 and b at 127
        assert (np.all(quiet == a, axis=-1) & np.all(loud == b, axis=-1)).any()
    assert len(corpus.velocity_pairs(["dexed"], 5, seed=0, velocity=100)[0]) == 5

    transforms = []
    for name, pairs in (("plain", None), ("pairs", (first, second))):
        plan = BuildPlan(output=tmp_path / name, synths=("dexed",), factory_root=tiny_banks, size_per_synth=40,
                         notes=(48, 60, 72))
        IndexBuilder(plan, projection_pairs=pairs).build()
        with PresetIndex.open(tmp_path / name) as index:
            transforms.append(index.transform.components.copy())
    assert transforms[0].shape != transforms[1].shape or not np.allclose(transforms[0], transforms[1])
