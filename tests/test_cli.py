"""The command line: exit codes, one-line errors, JSON on stdout, the other commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.paths import MANIFEST_NAME

from conftest import copy_index, index_files

runner = CliRunner()


def _run(*args: str, input: bytes | None = None):
    return runner.invoke(app, list(args), input=input)


def _one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert result.stdout == ""


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = ("import sys, patchpilot.cli; heavy = {'faiss', 'vita', 'dexed', 'torch', 'librosa', 'numpy'} & set(sys.modules);"
            " print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "patchpilot", "--help"], capture_output=True, text=True, check=True)
    assert "build-index" in help_text.stdout


def test_importing_the_cli_leaves_the_environment_alone() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "HF_HUB_OFFLINE")}
    code = "import os, patchpilot.cli; print(sorted({'OMP_NUM_THREADS', 'HF_HUB_OFFLINE'} & set(os.environ)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"
    code = ("import os, signal, patchpilot.cli as cli; handler = signal.getsignal(signal.SIGTERM)\n"
            "try:\n    cli.app(['presets', 'list', '--index', '/nonexistent'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ['OMP_NUM_THREADS'], os.environ['HF_HUB_OFFLINE'], signal.getsignal(signal.SIGTERM) is handler)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["1", "1", "True"]  # set when a command runs; the SIGTERM handler put back after it


def test_match_json_on_stdout(tiny_index: Path, pluck_wav: Path) -> None:
    result = _run("match", str(pluck_wav), "--index", str(tiny_index), "--json", "--top-k", "2")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["input"] == str(pluck_wav)
    assert [m["rank"] for m in document["matches"]] == [1, 2]
    assert document["matches"][0]["preset_id"] == "vital:test-pluck"


def test_match_table_names_the_preset_and_its_settings(tiny_index: Path, pluck_wav: Path) -> None:
    result = _run("match", str(pluck_wav), "--index", str(tiny_index), "--top-k", "2")
    assert result.exit_code == 0, result.stderr
    assert "Test Pluck" in result.stdout
    assert "filter_1_cutoff" in result.stdout and "Hz" in result.stdout
    assert "distance: how far the match" in result.stdout and "rough: a starting point only" in result.stdout


def test_match_reads_stdin_and_exports(tiny_index: Path, organ_wav: Path, tmp_path: Path) -> None:
    result = _run("match", "-", "--index", str(tiny_index), "--json", "--top-k", "1", "--export", str(tmp_path),
                  input=organ_wav.read_bytes())
    assert result.exit_code == 0, result.stderr
    match = json.loads(result.stdout)["matches"][0]
    assert Path(match["preset_file"]).suffix == ".syx" and Path(match["preset_file"]).exists()
    assert Path(match["audio_file"]).exists()


def test_bad_inputs_give_one_line_and_a_nonzero_exit(tiny_index: Path, tmp_path: Path) -> None:
    index = ("--index", str(tiny_index))
    _one_line_error(_run("match", str(tmp_path / "missing.wav"), *index), 2, "no such file")
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 50)
    _one_line_error(_run("match", str(text), *index), 2, "not a readable audio file")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(200))
    _one_line_error(_run("match", str(corrupt), *index), 2, "not a readable audio file")
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(44100, np.float32), 44100)
    _one_line_error(_run("match", str(silent), *index), 2, "silent")
    short = tmp_path / "short.wav"
    soundfile.write(short, np.full(200, 0.3, np.float32), 44100)
    _one_line_error(_run("match", str(short), *index), 2, "too short")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    _one_line_error(_run("match", str(empty), *index), 2, "empty")



def test_input_limits_through_the_cli(tiny_index: Path, pluck_wav: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import patchpilot.audio.io as audio_io

    index = ("--index", str(tiny_index))
    monkeypatch.setenv("PATCHPILOT_MAX_INPUT_BYTES", "1000")
    _one_line_error(_run("match", "-", *index, input=pluck_wav.read_bytes()), 2, "<stdin>: larger than 1 kB")
    monkeypatch.delenv("PATCHPILOT_MAX_INPUT_BYTES")
    monkeypatch.setattr(audio_io, "MAX_INPUT_SECONDS", 0.9)
    result = _run("match", str(pluck_wav), *index, "--json", "--top-k", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"warning: {pluck_wav} is longer than 0.015 minutes: only the first 0.015 minutes are used"]


def test_m4a_without_a_decoder_names_what_is_missing(tiny_index: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg
    m4a = tmp_path / "song.m4a"
    m4a.write_bytes(b"\0\0\0\x18ftypM4A \0\0\0\0M4A mp42" + bytes(64))
    index = ("--index", str(tiny_index))
    _one_line_error(_run("match", str(m4a), *index), 2, "no decoder for AAC/M4A here")
    _one_line_error(_run("match", "-", *index, input=m4a.read_bytes()), 2, "ffmpeg is not installed")

def test_bad_indexes_give_one_line_and_a_nonzero_exit(tiny_index: Path, pluck_wav: Path, tmp_path: Path) -> None:
    _one_line_error(_run("match", str(pluck_wav), "--index", str(tmp_path / "none")), 3, "no index")
    foreign = tmp_path / "foreign"
    foreign_files = copy_index(tiny_index, foreign)
    manifest = json.loads((foreign_files / MANIFEST_NAME).read_text())
    manifest["embedder"] = "clap/1"
    (foreign_files / MANIFEST_NAME).write_text(json.dumps(manifest))
    _one_line_error(_run("match", str(pluck_wav), "--index", str(foreign)), 3, "embedder")
    unreadable = tmp_path / "unreadable"
    unreadable_files = copy_index(tiny_index, unreadable)
    (unreadable_files / "presets.sqlite").write_bytes(b"garbage" * 100)
    _one_line_error(_run("match", str(pluck_wav), "--index", str(unreadable)), 3, "presets.sqlite")


def test_bad_options_are_usage_errors(tiny_index: Path, pluck_wav: Path) -> None:
    _one_line_error(_run("match", str(pluck_wav), "--index", str(tiny_index), "--synth", "moog"), 2, "vital or dexed")


def test_presets_list_json(tiny_index: Path) -> None:
    result = _run("presets", "list", "--index", str(tiny_index), "--json", "--synth", "dexed", "--designed")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["name"] for r in rows} == {"Test Tine", "Test Organ", "Test Brass", "Test Bell"}
    assert all({"preset_id", "synth", "name", "category", "tags"} <= set(r) for r in rows)
    keys = _run("presets", "list", "--index", str(tiny_index), "--json", "--category", "pad")
    assert {r["category"] for r in json.loads(keys.stdout)} == {"pad"}


def test_render_an_index_preset_and_a_preset_file(tiny_index: Path, tmp_path: Path) -> None:
    out = tmp_path / "pad.wav"
    result = _run("render", "vital:test-pad", "--note", "57", "--seconds", "0.5", "--tail", "0.5", "-o", str(out),
                  "--index", str(tiny_index))
    assert result.exit_code == 0, result.stderr
    audio, rate = soundfile.read(out)
    assert rate == 44100 and audio.shape == (44100,)
    assert np.abs(audio).max() > 0.01
    _one_line_error(_run("render", "vital:nope", "-o", str(out), "--index", str(tiny_index)), 4, "no preset")


def test_build_index_cli_adds_user_presets(tiny_index: Path, tmp_path: Path) -> None:
    from patchpilot.synths import get_engine

    target = tmp_path / "idx"
    shutil.copytree(tiny_index, target)
    engine = get_engine("dexed")
    engine.write_preset(engine.make_preset("MY BASS", {"algorithm": "1", "op2_output_level": 80}), tmp_path / "b.syx")
    result = _run("build-index", "--index", str(target), "--presets", str(tmp_path / "b.syx"))
    assert result.exit_code == 0, result.stderr
    assert "added 1 presets" in result.stderr
    listed = json.loads(_run("presets", "list", "--index", str(target), "--json", "--synth", "dexed").stdout)
    assert "dexed:user:b" in {r["preset_id"] for r in listed}
    _one_line_error(_run("build-index", "--index", str(target), "--presets", str(tmp_path / "nothing.syx")), 4,
                    "no such file")


@pytest.mark.slow
def test_shipped_index_and_example_work_through_the_installed_command(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    example = repo / "docs" / "examples" / "crystal-pick.wav"
    if not (repo / "indexes" / "default" / MANIFEST_NAME).exists():
        pytest.skip("the default index is not built in this checkout")
    result = subprocess.run([sys.executable, "-m", "patchpilot", "match", str(example), "--json", "--top-k", "3"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["matches"][0]["synth"] in ("vital", "dexed") and len(document["matches"]) == 3


def test_build_index_with_presets_starts_from_a_copy_of_the_shipped_index(tiny_index: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from patchpilot.index import manage
    from patchpilot.synths import get_engine

    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(manage, "shipped_index_dir", lambda: tiny_index)
    engine = get_engine("dexed")
    engine.write_preset(engine.make_preset("MY KEYS", {"algorithm": "5", "op2_output_level": 70}), tmp_path / "k.syx")
    result = _run("build-index", "--presets", str(tmp_path / "k.syx"))
    assert result.exit_code == 0, result.stderr
    user_index = tmp_path / "home" / "indexes" / "default"
    manifest = json.loads((index_files(user_index) / MANIFEST_NAME).read_text())
    assert manifest["synths"] == {"dexed": 9, "vital": 8}
    assert json.loads((index_files(tiny_index) / MANIFEST_NAME).read_text())["synths"] == {"dexed": 8, "vital": 8}


def test_match_text_json_has_the_audio_shape_and_the_words(tiny_index: Path, tmp_path: Path) -> None:
    result = _run("match", "--text", "that gritty Billie Eilish bassline", "--index", str(tiny_index), "--json",
                  "--top-k", "2", "--export", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["input"] == "that gritty Billie Eilish bassline"
    assert document["query"]["understood"] == ["gritty", "bassline (bass)"]
    assert document["query"]["ignored"] == ["billie", "eilish"]
    first = document["matches"][0]
    assert {"rank", "synth", "preset_id", "name", "category", "tags", "distance", "params", "preset_file"} <= set(first)
    assert first["category"] == "bass" and Path(first["preset_file"]).exists() and Path(first["audio_file"]).exists()
    assert "understood: gritty, bassline (bass); ignored: billie, eilish" in result.stderr


def test_match_text_table_and_usage_errors(tiny_index: Path, pluck_wav: Path) -> None:
    table = _run("match", "--text", "bright plucky", "--index", str(tiny_index), "--top-k", "2")
    assert table.exit_code == 0, table.stderr
    assert "Matches for bright plucky" in table.stdout and "start from the init patch" in table.stdout
    _one_line_error(_run("match", str(pluck_wav), "--text", "pad", "--index", str(tiny_index)), 2, "not both")
    _one_line_error(_run("match", "--index", str(tiny_index)), 2, "--text")
    _one_line_error(_run("match", "--text", "Billie Eilish", "--index", str(tiny_index)), 2, "no sound words")


def test_build_index_describe_adds_descriptors_to_an_old_index(tiny_index: Path, tmp_path: Path) -> None:
    import sqlite3

    old = tmp_path / "old"
    old_files = copy_index(tiny_index, old)
    with sqlite3.connect(old_files / "presets.sqlite") as db:
        db.execute("DROP TABLE descriptors")
    _one_line_error(_run("match", "--text", "dark pad", "--index", str(old)), 3, "--describe")
    result = _run("build-index", "--index", str(old), "--describe", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    assert "described 16 presets" in result.stderr
    assert _run("match", "--text", "dark pad", "--index", str(old), "--json").exit_code == 0


@pytest.mark.parametrize(("signal_number", "code"), [(15, 143), (2, 130)])
def test_sigterm_and_ctrl_c_clean_up_and_exit_with_the_signal_code(tiny_index: Path, tmp_path: Path,
                                                                   signal_number: int, code: int) -> None:
    import os
    import signal
    import time

    # A decoder that hangs (an ffmpeg stand-in) while the CLI holds a temporary folder.
    bin_dir, temp = tmp_path / "bin", tmp_path / "tmp"
    bin_dir.mkdir()
    temp.mkdir()
    started = tmp_path / "ffmpeg-started"
    fake = bin_dir / "ffmpeg"
    fake.write_text(f"#!{sys.executable}\nimport time\nopen({str(started)!r}, 'w').close()\ntime.sleep(60)\n")
    fake.chmod(0o755)
    m4a = tmp_path / "song.m4a"
    m4a.write_bytes(b"\0\0\0\x18ftypM4A \0\0\0\0M4A mp42" + bytes(64))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(temp)}
    process = subprocess.Popen([sys.executable, "-m", "patchpilot", "match", str(m4a), "--index", str(tiny_index)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert started.exists(), process.communicate()
        assert any(temp.iterdir())  # the decoder's temporary folder
        process.send_signal(signal.Signals(signal_number))
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == code, err
    assert err.strip().splitlines() == ["interrupted"] and out == ""
    assert not any(temp.iterdir())


def test_serve_without_its_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # None: the import raises ImportError
    result = _run("serve", "--port", "1")
    _one_line_error(result, 2, "pip install 'patchpilot[serve]'")
