"""The index lifecycle: builds killed anywhere resume to the same index, readers keep one
version, one build at a time, user presets survive rebuilds, bad preset files are skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchpilot.audio.io import write_wav
from patchpilot.cli import app
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.errors import PatchPilotWarning
from patchpilot.index.builder import BuildPlan, IndexBuilder
from patchpilot.index.index import PresetIndex
from patchpilot.index.layout import BuildLock, IndexFolder
from patchpilot.index.store import PresetStore
from patchpilot.paths import MANIFEST_NAME
from patchpilot.synths import get_engine

from conftest import TEST_NOTES, assert_same_index, copy_index, index_contents, index_files, render_note

#: A dexed-only plan big enough for two feature chunks (64 presets each).
BIG = 70
SMALL = 8

BUILD_SCRIPT = """
import sys
from pathlib import Path
from patchpilot.index.builder import BuildPlan, IndexBuilder
out, banks, size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
plan = BuildPlan(output=out, synths=("dexed",), factory_root=banks, size_per_synth=size, notes=(48, 60, 72))
IndexBuilder(plan, workers=2).build()
"""


def _plan(out: Path, banks: Path, size: int) -> BuildPlan:
    assert TEST_NOTES == (48, 60, 72)  # the script above builds at these notes
    return BuildPlan(output=out, synths=("dexed",), factory_root=banks, size_per_synth=size, notes=TEST_NOTES)


def _build_in_subprocess(out: Path, banks: Path, size: int, kill_at: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PATCHPILOT_TEST_KILL_AT", None)
    if kill_at is not None:
        env["PATCHPILOT_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(out), str(banks), str(size)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def dexed_note(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lifecycle") / "bell.wav"
    write_wav(path, render_note("dexed", "Test Bell", tiny_banks, 62, sample_rate=EXPORT_SAMPLE_RATE_HZ),
              EXPORT_SAMPLE_RATE_HZ)
    return path


def _match_works(index: Path, wav: Path) -> dict:
    result = CliRunner().invoke(app, ["match", str(wav), "--index", str(index), "--json", "--top-k", "1",
                                      "--candidates", "2"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_a_build_killed_anywhere_resumes_to_the_index_an_uninterrupted_build_makes(
        tiny_banks: Path, tmp_path: Path, dexed_note: Path) -> None:
    reference_path = tmp_path / "reference"
    IndexBuilder(_plan(reference_path, tiny_banks, BIG)).build()
    reference = index_contents(reference_path)
    target = tmp_path / "idx"
    IndexBuilder(_plan(target, tiny_banks, SMALL)).build()
    for point in ("chunk-write", "render", "assemble", "finished", "publish"):
        before = index_contents(target)
        killed = _build_in_subprocess(target, tiny_banks, BIG, kill_at=point)
        assert killed.returncode == -9, (point, killed.stderr)
        # readers still get the whole previous version, and match works on it
        assert_same_index(target, before)
        assert _match_works(target, dexed_note)["matches"]
        if point == "render":  # a damaged chunk is redone, with a note
            chunk = sorted((target / "build" / "features").glob("chunk-*.npz"))[0]
            chunk.write_bytes(chunk.read_bytes()[:100])
            with pytest.warns(PatchPilotWarning, match="damaged"):
                IndexBuilder(_plan(target, tiny_banks, BIG)).build()
        else:
            IndexBuilder(_plan(target, tiny_banks, BIG)).build()
        assert_same_index(target, reference)
        assert not (target / "build").exists()
        assert [v.name for v in (target / "versions").iterdir()] == [index_files(target).name]  # old ones collected
        if point != "publish":  # switch back to the small index so that the next kill has a different one to keep
            IndexBuilder(_plan(target, tiny_banks, SMALL)).build()


def test_a_finished_build_left_unpublished_is_published_before_the_next_change(
        tiny_banks: Path, tmp_path: Path) -> None:
    target = tmp_path / "idx"
    IndexBuilder(_plan(target, tiny_banks, SMALL)).build()
    before = set(index_contents(target))
    assert _build_in_subprocess(target, tiny_banks, SMALL + 4, kill_at="publish").returncode == -9
    assert set(index_contents(target)) == before  # readers still get the small one
    finished = json.loads((target / "build" / "state.json").read_text())["version"]
    with PresetStore(target / "versions" / finished / "presets.sqlite", readonly=True) as store:
        killed_build = set(store.preset_ids(store.rows()).values())
    assert killed_build - before
    engine = get_engine("dexed")
    engine.write_preset(engine.make_preset("MY BASS", {"algorithm": "1", "op2_output_level": 80}), tmp_path / "b.syx")
    plan = BuildPlan(output=target, synths=("dexed",), user_paths=(tmp_path / "b.syx",))
    report = IndexBuilder(plan, append=True).build()
    assert report.appended == 1
    assert set(index_contents(target)) == killed_build | {"dexed:user:b"}  # added to the killed build's index


def test_a_reader_keeps_its_version_while_a_build_publishes_another(tiny_banks: Path, tmp_path: Path) -> None:
    target = tmp_path / "idx"
    IndexBuilder(_plan(target, tiny_banks, SMALL)).build()
    reader = PresetIndex.open(target)
    old_version = reader.files
    IndexBuilder(_plan(target, tiny_banks, SMALL + 4)).build()
    assert index_files(target) != old_version
    assert old_version.exists()  # leased by the reader: not collected
    vector = reader._vectors["vectors"][0, 1]
    assert reader.search(vector, 60.0, k=1)[0].row == int(reader._vectors["rows"][0])
    assert reader.manifest.synths == {"dexed": len(reader.store.rows())}
    reader.close()
    assert IndexFolder(target).collect_garbage() == [old_version.name]


def test_a_second_build_of_the_same_index_fails_with_one_line(tiny_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "idx"
    copy_index(tiny_index, target)
    engine = get_engine("dexed")
    engine.write_preset(engine.make_preset("MY BASS", {"algorithm": "1"}), tmp_path / "b.syx")
    with BuildLock(IndexFolder(target)):
        result = CliRunner().invoke(app, ["build-index", "--index", str(target), "--presets", str(tmp_path / "b.syx")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and f"pid {os.getpid()}" in result.stderr and "wait" in result.stderr


@pytest.fixture()
def tiny_factory(tiny_banks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's factory banks are the tiny test banks."""
    from patchpilot import paths

    root = tmp_path / "data"
    root.mkdir()
    (root / "presets").symlink_to(tiny_banks)
    monkeypatch.setattr(paths, "_DATA_CANDIDATES", (root,))


def _user_files(folder: Path) -> list[Path]:
    folder.mkdir()
    dexed = get_engine("dexed")
    vital = get_engine("vital")
    dexed.write_preset(dexed.make_preset("MY KEYS", {"algorithm": "5", "op2_output_level": 70}), folder / "keys.syx")
    vital.write_preset(vital.make_preset("My Lead", {"osc_1_wavetable": "Pulse Width"}), folder / "lead.vital")
    return [folder / "keys.syx", folder / "lead.vital"]


def _user_ids(index: Path) -> set[str]:
    listed = CliRunner().invoke(app, ["presets", "list", "--user", "--json", "--index", str(index)])
    assert listed.exit_code == 0, listed.stderr
    return {row["preset_id"] for row in json.loads(listed.stdout)}


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_factory")
def test_user_presets_survive_rebuilds_and_describe(tiny_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "idx"
    copy_index(tiny_index, target)
    files = _user_files(tmp_path / "mine")
    run = CliRunner().invoke
    added = run(app, ["build-index", "--index", str(target), "--presets", str(tmp_path / "mine")])
    assert added.exit_code == 0, added.stderr
    mine = {"dexed:user:keys", "vital:user:lead"}
    assert _user_ids(target) == mine
    listed = json.loads(run(app, ["presets", "list", "--user", "--json", "--index", str(target)]).stdout)
    assert {row["source"] for row in listed} == {str(f.resolve()) for f in files}
    for file in files:
        file.unlink()  # a rebuild takes them from the index, not from their files
    for command in (["--size", "8"], ["--synth", "vital", "--size", "8"], ["--describe"]):
        result = run(app, ["build-index", "--index", str(target), "--workers", "1", *command])
        assert result.exit_code == 0, (command, result.stderr)
        assert _user_ids(target) == mine, command
        if command != ["--describe"]:
            assert "kept your 2 presets" in result.stderr
    with PresetIndex.open(target) as index:
        assert index.manifest.synths == {"dexed": 1, "vital": 9}  # --synth vital: factory vital + both of yours
    dropped = run(app, ["build-index", "--index", str(target), "--size", "8", "--drop-user-presets"])
    assert dropped.exit_code == 0, dropped.stderr
    assert _user_ids(target) == set()


def test_bad_preset_files_are_skipped_and_named(tiny_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "idx"
    copy_index(tiny_index, target)
    folder = tmp_path / "mine"
    _user_files(folder)
    (folder / "garbage.syx").write_bytes(bytes(range(256)) + b"\xf0" * 46)  # 302 bytes of nothing
    text = (folder / "lead.vital").read_text()
    (folder / "truncated.vital").write_text(text[: len(text) // 2])
    (folder / "wrong-types.vital").write_text(json.dumps(["not", "a", "preset"]))
    document = json.loads(text)
    # 100 modulations: vita crashes on it (its trial in a child process tells)
    document["settings"]["modulations"] = [{"source": "lfo_1", "destination": "osc_1_level"}] * 100
    (folder / "crashes-vita.vital").write_text(json.dumps(document))
    result = CliRunner().invoke(app, ["build-index", "--index", str(target), "--presets", str(folder)])
    assert result.exit_code == 0, result.stderr
    for name in ("garbage.syx", "truncated.vital", "wrong-types.vital", "crashes-vita.vital"):
        assert f"skipped {folder / name}:" in result.stderr, name
    assert "crashed vita" in result.stderr
    assert "added 2 presets" in result.stderr
    assert _user_ids(target) == {"dexed:user:keys", "vital:user:lead"}


def test_an_index_from_before_versions_is_upgraded_by_its_next_build(tiny_index: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    version = index_files(tiny_index)
    flat.mkdir()
    for name in (MANIFEST_NAME, "presets.sqlite", "vectors.faiss", "transform.npz"):
        (flat / name).write_bytes((version / name).read_bytes())
    (tmp_path / ".flat.partial").mkdir()  # left by an older Patch Pilot
    engine = get_engine("dexed")
    engine.write_preset(engine.make_preset("MY BASS", {"algorithm": "1", "op2_output_level": 80}), tmp_path / "b.syx")
    result = CliRunner().invoke(app, ["build-index", "--index", str(flat), "--presets", str(tmp_path / "b.syx")])
    assert result.exit_code == 0, result.stderr
    assert "older Patch Pilot" in result.stderr and not (tmp_path / ".flat.partial").exists()
    assert not (flat / MANIFEST_NAME).exists() and (flat / "current").is_file()
    with PresetIndex.open(flat) as index:
        assert index.manifest.synths == {"dexed": 9, "vital": 8}


def test_readers_during_builds_always_see_one_whole_version(tiny_banks: Path, tmp_path: Path) -> None:
    import threading

    target = tmp_path / "idx"
    IndexBuilder(_plan(target, tiny_banks, SMALL)).build()
    errors: list[BaseException] = []

    def rebuild() -> None:
        try:
            for size in (SMALL + 6, SMALL + 2, SMALL + 10):
                IndexBuilder(_plan(target, tiny_banks, size), workers=1).build()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    builder = threading.Thread(target=rebuild)
    builder.start()
    seen = set()
    while builder.is_alive():
        with PresetIndex.open(target) as index:
            rows = set(index.store.rows())
            assert set(index._vectors["rows"].tolist()) == rows
            assert sum(index.manifest.synths.values()) == len(rows)
            seen.add(index.files.name)
    builder.join()
    assert not errors
    assert len(seen) >= 2  # the readers did run across publishes
