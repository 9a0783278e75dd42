"""``similar``: presets that sound like a given one, by the distance ``match`` uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile
from typer.testing import CliRunner

from patchpilot.api import PatchPilot
from patchpilot.cli import app
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ

runner = CliRunner()


def test_similar_ranks_like_match_on_the_presets_sound_and_leaves_the_preset_out(tiny_index: Path,
                                                                                  tmp_path: Path) -> None:
    """The answer is `match` on the preset's note (rendered as its file plays), without the
    preset itself: the same presets, in the same order, at the same distances."""
    with PatchPilot(tiny_index) as pilot:
        similar = pilot.similar("dexed:test-organ", note=57, velocity=90, seconds=1.0, top_k=4)
        wav = tmp_path / "organ.wav"
        soundfile.write(wav, pilot.render(pilot.preset("dexed:test-organ"), note=57, velocity=90, seconds=1.0,
                                          tail=1.5, sample_rate=EXPORT_SAMPLE_RATE_HZ), EXPORT_SAMPLE_RATE_HZ,
                       subtype="FLOAT")
        matched = pilot.match(wav, top_k=5)
    assert matched.matches[0].preset_id == "dexed:test-organ"  # the preset itself is the best match ...
    assert "dexed:test-organ" not in [m.preset_id for m in similar.matches]  # ... and similar leaves it out
    assert [m.rank for m in similar.matches] == [1, 2, 3, 4]
    others = [m for m in matched.matches if m.preset_id != "dexed:test-organ"]
    assert [m.preset_id for m in similar.matches] == [m.preset_id for m in others][:4]
    for got, expected in zip(similar.matches, others):
        assert got.distance == pytest.approx(expected.distance, rel=0.05, abs=0.02)
    assert similar.played.note == 57 and similar.played.velocity == 90 and similar.reference_id == "dexed:test-organ"


def test_similar_cli_json_export_and_a_preset_file(tiny_index: Path, tmp_path: Path) -> None:
    with PatchPilot(tiny_index) as pilot:
        preset = pilot.preset("vital:test-pad")
        from patchpilot.synths import get_engine

        path = tmp_path / "my pad.vital"
        get_engine("vital").write_preset(preset.with_values({}, name="My Pad"), path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["similar", str(path), "--index", str(tiny_index), "--json", "-k", "2",
                                 "--note", "48", "--export", str(out)])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["reference"] == {"preset_id": None, "synth": "vital", "name": "My Pad", "note": 48,
                                     "note_name": "C3", "velocity": 100, "hold_seconds": 1.5}
    assert len(document["matches"]) == 2
    # a file is not an index preset: the library's copy of it is found first
    assert document["matches"][0]["preset_id"] == "vital:test-pad"
    assert all(Path(m["preset_file"]).exists() and Path(m["audio_file"]).exists() for m in document["matches"])
    table = runner.invoke(app, ["similar", "vital:test-pad", "--index", str(tiny_index), "-k", "1", "--synth", "dexed"])
    assert table.exit_code == 0 and "Presets like Test Pad (vital:test-pad), played at C4" in table.stdout
    assert "dexed" in table.stdout.split("distance")[1]


@pytest.mark.parametrize("reference, fragment", [("vital:nope", "no preset 'vital:nope'"),
                                                 ("missing.vital", "no such preset file")])
def test_similar_refuses_what_it_cannot_play_in_one_line(tiny_index: Path, tmp_path: Path, reference: str,
                                                         fragment: str) -> None:
    result = runner.invoke(app, ["similar", str(tmp_path / reference) if reference.endswith(".vital") else reference,
                                 "--index", str(tiny_index)])
    assert result.exit_code == 4 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0] and result.stdout == ""


def test_a_preset_silent_at_the_note_is_one_line(tiny_index: Path, tmp_path: Path) -> None:
    from patchpilot.synths import get_engine

    engine = get_engine("dexed")
    silent = engine.init_preset().with_values({f"op{i}_output_level": 0.0 for i in range(1, 7)}, name="Silent")
    path = tmp_path / "silent.syx"
    engine.write_preset(silent, path)
    result = runner.invoke(app, ["similar", str(path), "--index", str(tiny_index)])
    assert result.exit_code == 4, result.stderr
    assert "Silent plays nothing to compare at note 60" in result.stderr and "Traceback" not in result.stderr
