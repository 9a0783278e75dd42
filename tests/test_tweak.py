"""``tweak``: words to descriptor moves, the release measures, and presets moved as asked,
judged on the exported file played on a fresh synth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from patchpilot.api import PatchPilot
from patchpilot.cli import app
from patchpilot.errors import UsageError
from patchpilot.synths import get_engine
from patchpilot.tweak import word_moves
from patchpilot.tweak.measure import MEASURE_NOTE_SECONDS, MEASURE_TOTAL_SECONDS, TWEAK_DESCRIPTORS, measure

runner = CliRunner()
SR = 22050


def test_words_become_descriptor_moves_and_the_rest_is_said() -> None:
    moves, ignored = word_moves("brighter, shorter attack, less reverb, vintage")
    assert [(m.descriptor, m.way) for m in moves] == [("brightness", 1), ("attack", -1), ("space", -1)]
    assert ignored == ("vintage",)
    [slight], _ = word_moves("slightly darker", amount=2.0)
    [plain], _ = word_moves("darker")
    assert slight.way == plain.way == -1 and slight.asked_steps == pytest.approx(plain.asked_steps)  # 0.5 x 2
    assert [(m.descriptor, m.way) for m in word_moves("longer release, drier, wider, grittier")[0]] == [
        ("release", 1), ("space", -1), ("width", 1), ("grit", 1)]


def _note(release_seconds: float, echo: float = 0.0) -> np.ndarray:
    """A 220 Hz tone held MEASURE_NOTE_SECONDS, released exponentially (-60 dB over
    ``release_seconds``), with an optional echo 0.3 s later."""
    t = np.arange(int(MEASURE_TOTAL_SECONDS * SR)) / SR
    level = np.where(t < MEASURE_NOTE_SECONDS, 1.0, 10 ** (-3 * (t - MEASURE_NOTE_SECONDS) / release_seconds))
    tone = 0.3 * level * np.sin(2 * np.pi * 220 * t)
    delay = int(0.3 * SR)
    tone[delay:] += echo * tone[:-delay]
    return tone.astype(np.float32)


def test_release_and_space_grow_with_the_tail() -> None:
    names = list(TWEAK_DESCRIPTORS)
    short, long_ = measure(_note(0.1), SR), measure(_note(0.8), SR)
    assert long_[names.index("release")] - short[names.index("release")] > 0.5  # log10 s
    assert long_[names.index("space")] > short[names.index("space")] + 10
    dry, wet = measure(_note(0.1), SR), measure(_note(0.1, echo=0.5), SR)
    assert wet[names.index("space")] > dry[names.index("space")] + 10
    assert np.isnan(measure(np.zeros(int(MEASURE_TOTAL_SECONDS * SR), np.float32), SR)).all()


def test_the_measures_do_not_depend_on_how_loud_the_note_is() -> None:
    """Turning a preset up must not read as less reverb or a shorter release."""
    for note in (_note(0.1), _note(0.8, echo=0.5), _pluck()):
        loud, quiet = measure(note, SR), measure(0.1 * note, SR)  # 20 dB quieter
        assert np.allclose(loud, quiet, atol=1e-3, equal_nan=True), (loud, quiet)


def _pluck() -> np.ndarray:
    """A 220 Hz pluck that has died long before its note-off."""
    t = np.arange(int(MEASURE_TOTAL_SECONDS * SR)) / SR
    return (0.5 * np.exp(-t / 0.08) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_descriptor_at_the_end_of_what_is_measured_is_at_its_limit() -> None:
    from patchpilot.tweak.search import at_limit

    names = list(TWEAK_DESCRIPTORS)
    died = measure(_pluck(), SR)
    [shorter], _ = word_moves("shorter release")
    [longer], _ = word_moves("longer release")
    [drier], _ = word_moves("less reverb")
    assert at_limit(shorter, float(died[names.index("release")]))  # a pluck that died has no release
    assert not at_limit(longer, float(died[names.index("release")]))
    assert at_limit(drier, float(died[names.index("space")]))
    ringing = measure(_note(5.0), SR)  # rings past the end of the render
    assert at_limit(longer, float(ringing[names.index("release")]))


@pytest.mark.parametrize("reference, words, descriptor", [("vital:test-pad", "brighter", "brightness"),
                                                          ("dexed:test-organ", "longer release", "release")])
def test_a_tweak_moves_the_asked_way_in_the_file_the_user_loads(tiny_index: Path, tmp_path: Path, reference: str,
                                                                 words: str, descriptor: str) -> None:
    with PatchPilot(tiny_index) as pilot:
        result = pilot.tweak(reference, words)
        files = pilot.export_tweak(result, tmp_path)
        start = pilot.preset(reference)
    [move] = result.moves
    assert move.descriptor == descriptor and move.reached and result.changed and result.distance > 0
    # the exported file, read back and played on a fresh synth, measures as the result says
    engine = get_engine(start.synth)
    [loaded] = engine.read_presets(files.preset_file)
    k = TWEAK_DESCRIPTORS.index(descriptor)

    def measured(preset: object) -> float:
        voice = engine.new_voice(SR)
        return float(measure(voice.render_stereo(preset, 60, 100, MEASURE_NOTE_SECONDS, MEASURE_TOTAL_SECONDS), SR)[k])

    assert measured(loaded) - measured(start) == pytest.approx(result.after[descriptor] - result.before[descriptor],
                                                               abs=0.05 * abs(result.after[descriptor]) + 0.05)
    assert measured(loaded) > measured(start)


def test_a_move_the_synth_cannot_make_changes_nothing_and_says_so(tiny_index: Path) -> None:
    with PatchPilot(tiny_index) as pilot:
        result = pilot.tweak("dexed:test-organ", "wider")  # the DX7 is mono
        with pytest.raises(UsageError, match="nothing in 'vintage please' says how to move"):
            pilot.tweak("dexed:test-organ", "vintage please")
    assert not result.changed and not result.moves[0].reached and result.preset.values == pilot_values(tiny_index)


def pilot_values(index: Path) -> dict:
    with PatchPilot(index) as pilot:
        return dict(pilot.preset("dexed:test-organ").values)


def test_tweak_cli_json_and_match_tweak(tiny_index: Path, tmp_path: Path, pluck_wav: Path) -> None:
    result = runner.invoke(app, ["tweak", "vital:test-pad", "darker", "--amount", "0.5", "--index", str(tiny_index),
                                 "--json", "--export", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["moves"][0]["descriptor"] == "brightness" and document["moves"][0]["asked"] == "less"
    assert document["moves"][0]["asked_steps"] == 1.0 and Path(document["preset_file"]).exists()
    assert set(document["descriptors"]) == set(TWEAK_DESCRIPTORS)
    table = runner.invoke(app, ["match", str(pluck_wav), "--index", str(tiny_index), "--tweak", "darker", "-k", "2"])
    assert table.exit_code == 0, table.stderr
    assert "darker" in table.stdout and "less brightness" in table.stdout
    # a user's own preset file, tweaked, and the tweaked file tweaked again
    with PatchPilot(tiny_index) as pilot:
        get_engine("dexed").write_preset(pilot.preset("dexed:test-brass").with_values({}, name="My Brass"),
                                         tmp_path / "mine.syx")
    first = runner.invoke(app, ["tweak", str(tmp_path / "mine.syx"), "longer release", "--index", str(tiny_index),
                                "--json", "--export", str(tmp_path / "once")])
    assert first.exit_code == 0, first.stderr
    once = json.loads(first.stdout)
    assert once["preset"] == "My Brass" and once["moves"][0]["descriptor"] == "release"
    again = runner.invoke(app, ["tweak", once["preset_file"], "darker", "--index", str(tiny_index), "--json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["moves"][0]["descriptor"] == "brightness"
    bad = runner.invoke(app, ["tweak", "vital:test-pad", "vintage", "--index", str(tiny_index)])
    assert bad.exit_code != 0 and "says how to move" in bad.stderr and "Traceback" not in bad.stderr


def test_modules_are_named_as_on_the_synths_panel() -> None:
    vital, dexed = get_engine("vital"), get_engine("dexed")
    assert [vital.panel_name(m) for m in ("osc_1", "filter_fx", "env_2", "lfo_1", "reverb")] == [
        "Oscillator 1", "FX filter", "Envelope 2", "LFO 1", "Reverb"]
    assert dexed.panel_name("op3") == "Operator 3"
    values = vital.native_values(vital.init_preset())
    assert vital.drawing("env_1", values)["kind"] == "adsr" and vital.drawing("filter_1", values)["cutoff_hz"] > 0
    assert dexed.drawing("op2", dexed.native_values(dexed.init_preset()))["kind"] == "dx7-eg"
