"""Damaged preset files: every one is a PresetError naming the file, never a crash; what loads
also plays."""

from __future__ import annotations

import copy
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from patchpilot.errors import PatchPilotWarning, PresetError
from patchpilot.library.user_files import read_preset_files
from patchpilot.synths import get_engine
from patchpilot.synths.dexed import vced_to_values


@pytest.fixture(scope="module")
def vital_doc() -> dict:
    """A preset file of ours (wavetable, LFO shape, a routing) as parsed JSON."""
    engine = get_engine("vital")
    preset = engine.make_preset("Good", {"osc_1_wavetable": "Vowels", "filter_1_on": True,
                                         "mod_lfo_1_to_filter_1_cutoff": 0.3, "lfo_1_shape": "Sine"})
    return json.loads(engine.to_json(preset))


def _plays(engine_name: str, path: Path) -> list:
    """The file's presets, each checked to play a finite, audible note."""
    engine = get_engine(engine_name)
    presets = engine.read_presets(path)
    for preset in presets[:2]:
        audio = engine.render(preset, 60, 100, 0.2, 0.3)
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    return presets


def _settings(change: Callable[[dict], object]) -> Callable[[dict], None]:
    return lambda doc: change(doc["settings"])


def _component(doc: dict) -> dict:
    return doc["settings"]["wavetables"][0]["groups"][0]["components"][0]


#: Damage vita refuses or crashes on (each measured in a child process), and the words the
#: refusal must hold: what vita did, then the likely cause.
REFUSED = "vita refused this preset"
CRASHED = "the preset crashed vita"
OUT_OF_MEMORY = "run out of memory"
VITAL_DAMAGE: dict[str, tuple[Callable[[dict], object], str, str]] = {
    "settings missing": (lambda d: d.pop("settings"), "not a Vital preset", "no \"settings\" object"),
    "settings a list": (lambda d: d.update(settings=[1, 2]), "not a Vital preset", "no \"settings\" object"),
    "string for a number": (_settings(lambda s: s.update(osc_1_level="loud")), REFUSED, "\"osc_1_level\" is a str"),
    "list for a number": (_settings(lambda s: s.update(osc_1_level=[1])), REFUSED, "\"osc_1_level\" is a list"),
    "NaN": (_settings(lambda s: s.update(osc_1_level=float("nan"))), REFUSED, "not a finite number"),
    "infinity": (_settings(lambda s: s.update(env_1_attack=float("inf"))), REFUSED, "not a finite number"),
    "out of range": (_settings(lambda s: s.update(filter_1_cutoff=1e30)), CRASHED, "outside Vital's range 8 to 136"),
    "numeric names": (_settings(lambda s: s["modulations"].__setitem__(0, {"source": 3, "destination": 4})),
                      REFUSED, "must be names"),
    "modulation not an object": (_settings(lambda s: s["modulations"].__setitem__(0, 5)), REFUSED, "not an object"),
    "too many modulations": (_settings(lambda s: s.update(modulations=[{"source": "lfo_1",
                                                                         "destination": "filter_1_cutoff"}] * 100)),
                             CRASHED, "100 modulations"),
    "modulations not a list": (_settings(lambda s: s.update(modulations="x")), REFUSED,
                               "\"modulations\" is not a list"),
    "too many LFOs": (_settings(lambda s: s.update(lfos=s["lfos"] * 10)), CRASHED, "entries in \"lfos\""),
    "LFO shape empty": (_settings(lambda s: s["lfos"].__setitem__(0, {})), REFUSED, "point count"),
    "LFO points text": (_settings(lambda s: s["lfos"][0].update(points=["a", "b"] * 20)), REFUSED, "do not match"),
    "unknown wavetable component": (lambda d: _component(d).update(type="Bogus"), CRASHED,
                                    "unknown wavetable component"),
    "keyframe far away": (lambda d: _component(d)["keyframes"][0].update(position=10**9), OUT_OF_MEMORY,
                          "keyframe position"),
    "wavetables not a list": (_settings(lambda s: s.update(wavetables="x")), REFUSED, "\"wavetables\" is not a list"),
    "too many wavetables": (_settings(lambda s: s.update(wavetables=s["wavetables"] * 2)), CRASHED, "entries in"),
    "sample not an object": (_settings(lambda s: s.update(sample="x")), REFUSED, "\"sample\" is not an object"),
    "sample length absurd": (_settings(lambda s: s["sample"].update(length=10**12)), OUT_OF_MEMORY,
                             "sample length"),
    "no sample": (_settings(lambda s: s.pop("sample")), REFUSED, "no \"sample\""),
    "macro a number": (lambda d: d.update(macro1=5), REFUSED, "\"macro1\" is a int"),
    "version a number": (lambda d: d.update(synth_version=1.5), REFUSED, "\"synth_version\" is a float"),
    "silent": (_settings(lambda s: s.update(osc_1_on=0.0, osc_2_on=0.0, osc_3_on=0.0, sample_on=0.0)),
               "plays silence", ""),
}


@pytest.mark.parametrize("case", sorted(VITAL_DAMAGE))
def test_damaged_vital_json_is_one_preset_error(case: str, vital_doc: dict, tmp_path: Path) -> None:
    damage, verdict, cause = VITAL_DAMAGE[case]
    doc = copy.deepcopy(vital_doc)
    damage(doc)
    path = tmp_path / "damaged.vital"
    path.write_text(json.dumps(doc))
    with pytest.raises(PresetError) as caught:
        get_engine("vital").read_presets(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and verdict in text and cause in text and "\n" not in text, text


#: Content our old checks refused but vita loads and plays: it imports (measured in vita).
VITA_PLAYS: dict[str, Callable[[dict], object]] = {
    "LFO point count past its points": _settings(lambda s: s["lfos"][0].update(num_points=10**6)),
    "LFO points short": _settings(lambda s: s["lfos"][0].update(num_points=50)),
    "integer too large for a float": _settings(lambda s: s.update(env_1_attack=10**400)),
    "unknown modulation source": _settings(lambda s: s["modulations"].__setitem__(
        0, {"source": "lfo_99", "destination": "filter_1_cutoff"})),
    "unknown modulation destination": _settings(lambda s: s["modulations"].__setitem__(
        0, {"source": "lfo_1", "destination": "nowhere"})),
    "a control past its range": _settings(lambda s: s.update(filter_1_style=9.0)),
}


@pytest.mark.parametrize("case", sorted(VITA_PLAYS))
def test_what_vita_plays_imports(case: str, vital_doc: dict, tmp_path: Path) -> None:
    doc = copy.deepcopy(vital_doc)
    VITA_PLAYS[case](doc)
    path = tmp_path / "odd-but-playable.vital"
    path.write_text(json.dumps(doc))
    assert [p.name for p in _plays("vital", path)] == ["Good"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"  \n", "the file is empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    (b"[1, 2, 3]", "a JSON list, not an object"),
    (b"[" * 100_000, "broken JSON"),
    (b'"text"', "a JSON str"),
])
def test_vital_files_that_are_not_json_objects(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "odd.vital"
    path.write_bytes(content)
    with pytest.raises(PresetError, match=f"^{re.escape(str(path))}: .*{message}"):
        get_engine("vital").read_presets(path)


def test_truncated_vital_files(vital_doc: dict, tmp_path: Path) -> None:
    text = json.dumps(vital_doc)
    for cut in (1, 10, len(text) // 3, len(text) // 2, len(text) - 1):
        path = tmp_path / f"cut-{cut}.vital"
        path.write_text(text[:cut])
        with pytest.raises(PresetError, match=f"^{re.escape(str(path))}: not a Vital preset: broken JSON"):
            get_engine("vital").read_presets(path)


def test_vital_files_that_load_also_play(vital_doc: dict, tmp_path: Path) -> None:
    path = tmp_path / "good.vital"
    path.write_text(json.dumps(vital_doc))
    assert [p.name for p in _plays("vital", path)] == ["Good"]
    # What a file may leave out (vita fills in its defaults; it refuses a file without a
    # "sample"); a value a rounding error past its control's end is clamped.
    doc = copy.deepcopy(vital_doc)
    for key in ("lfos", "modulations", "wavetables", "osc_1_level"):
        del doc["settings"][key]
    doc["settings"]["filter_1_cutoff"] = 136.000001
    path.write_text(json.dumps(doc))
    (preset,) = _plays("vital", path)
    assert preset.values["filter_1_cutoff"] == 136.0


def test_a_vita_crash_or_hang_in_the_trial_is_an_error_and_the_next_trial_works() -> None:
    from patchpilot.synths.vital.trial import VitaTrial

    crashing = VitaTrial("import ctypes, sys\nsys.stdin.buffer.read(4)\nctypes.string_at(0)\n")  # a segfault
    hanging = VitaTrial("import sys, time\nsys.stdin.buffer.read(4)\ntime.sleep(60)\n", hang_seconds=1.0)
    try:
        assert "crashed vita" in crashing.complaint("{}")
        assert "crashed vita" in crashing.complaint("{}")  # a new child each time
        assert "hung vita" in hanging.complaint("{}")
        assert "hung vita" in hanging.complaint("{}")
    finally:
        crashing.close()
        hanging.close()
    trial = VitaTrial()
    try:
        assert trial.complaint("[1]") == "vita refused this preset (made by a newer Vital, or damaged)"
        assert trial.complaint(get_engine("vital").to_json(get_engine("vital").init_preset())) is None
    finally:
        trial.close()


# ---- DX7 ------------------------------------------------------------------------------------
def _voice_file() -> bytes:
    engine = get_engine("dexed")
    return engine.preset_bytes(engine.make_preset("GOOD VOICE", {"algorithm": "5", "op2_output_level": 70}))


def _bank_file(tmp_path: Path) -> bytes:
    import dexed

    dexed.Patch.save_to_bank(str(tmp_path / "source.syx"), [dexed.Patch(f"VOICE {i:02d}") for i in range(32)])
    return (tmp_path / "source.syx").read_bytes()


def _flip(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1:]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda v, b: b"", "the file is empty"),
    (lambda v, b: b"hello", "not a DX7 sysex file"),
    (lambda v, b: v[:100], "is 163 bytes, this file has 100 (truncated)"),
    (lambda v, b: v + b"\0", "extra bytes after it"),
    (lambda v, b: _flip(v, len(v) - 1, 0x00), "broken sysex framing"),
    (lambda v, b: _flip(v, 2, 0x70), "broken sysex framing"),
    (lambda v, b: b[:3000], "is 4104 bytes, this file has 3000 (truncated)"),
    (lambda v, b: _flip(b, len(b) - 1, 0x00), "broken sysex framing"),
])
def test_sysex_no_reader_makes_sense_of_is_one_preset_error(damage, message: str, tmp_path: Path) -> None:
    path = tmp_path / "damaged.syx"
    path.write_bytes(damage(_voice_file(), _bank_file(tmp_path)))
    with pytest.raises(PresetError) as caught:
        get_engine("dexed").read_presets(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text, text


@pytest.mark.parametrize(("damage", "count", "warning"), [
    (lambda v, b: _flip(v, 40, (v[40] + 1) & 0x7F), 1, "checksum of this DX7 single-voice dump does not match"),
    (lambda v, b: _flip(b, 1000, (b[1000] + 3) & 0x7F), 32, "checksum of this DX7 32-voice bank does not match"),
    (lambda v, b: _flip(v, 40, 0x80 | v[40]), 1, "bytes over 127"),
    (lambda v, b: _flip(b, 1000, 0x80 | b[1000]), 32, "bytes over 127"),
    (lambda v, b: _flip(b[6:-2], 7, 0x80 | b[6 + 7]), 32, "bytes over 127"),
    (lambda v, b: b + b"\0", 32, "extra bytes after it); imported as Dexed reads it"),
    (lambda v, b: _flip(b, 2, 0x70), 32, "broken sysex framing; imported as Dexed reads it"),
])
def test_sysex_dexed_forgives_imports_with_one_warning(damage, count: int, warning: str, tmp_path: Path) -> None:
    """A stale checksum, bytes over 127 and framing dexed-py's own reader accepts: Dexed
    loads such files, so they import, each with one warning line; the voices are those
    dexed-py reads."""
    import dexed

    path = tmp_path / "forgiven.syx"
    path.write_bytes(damage(_voice_file(), _bank_file(tmp_path)))
    with pytest.warns(PatchPilotWarning) as caught:
        presets = _plays("dexed", path)
    assert len(presets) == count
    messages = [str(w.message) for w in caught if issubclass(w.category, PatchPilotWarning)]
    assert len(messages) == 1 and messages[0].startswith(f"{path}: ") and warning in messages[0], messages
    if count == 32:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = dexed.Patch.load_bank(str(path))
        params = get_engine("dexed").params
        assert [p.values for p in presets] == [vced_to_values(t.to_sysex()[:155], params) for t in theirs]


def test_sysex_that_loads_also_plays(tmp_path: Path) -> None:
    voice, bank = tmp_path / "voice.syx", tmp_path / "bank.syx"
    voice.write_bytes(_voice_file())
    assert [p.name for p in _plays("dexed", voice)] == ["GOOD VOICE"]
    bank.write_bytes(_bank_file(tmp_path))
    assert len(_plays("dexed", bank)) == 32
    bare = tmp_path / "bare.syx"  # a bank saved without its sysex framing
    bare.write_bytes(bank.read_bytes()[6:-2])
    assert [p.values for p in _plays("dexed", bare)] == [p.values for p in get_engine("dexed").read_presets(bank)]


# ---- reading a user's files -------------------------------------------------------------------
def test_read_preset_files_keeps_the_good_and_lists_the_bad(vital_doc: dict, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.vital").write_text(json.dumps(vital_doc))
    (folder / "sub" / "a.syx").write_bytes(_voice_file())
    (folder / "broken.vital").write_text("{")
    (folder / "short.syx").write_bytes(_voice_file()[:50])
    (folder / "notes.txt").write_text("not a preset")  # other files in a folder are not presets
    readme = tmp_path / "readme.txt"
    readme.write_text("hello")
    items, skipped = read_preset_files([folder, tmp_path / "missing.vital", readme], ("vital", "dexed"))
    assert [(path.name, [p.name for p in presets]) for path, presets in items] == [
        ("b.vital", ["Good"]), ("a.syx", ["GOOD VOICE"])]
    reasons = dict(skipped)
    assert set(reasons) == {folder / "broken.vital", folder / "short.syx", tmp_path / "missing.vital", readme}
    assert reasons[tmp_path / "missing.vital"] == "no such file or folder"
    assert reasons[readme].startswith("unsupported preset file; expected one of .syx, .vital")
    assert reasons[folder / "broken.vital"].startswith("not a Vital preset: broken JSON")
    assert "truncated" in reasons[folder / "short.syx"]
    only_dexed, skipped = read_preset_files([folder], ["dexed"])
    assert [path.name for path, _ in only_dexed] == ["a.syx"] and [p.name for p, _ in skipped] == ["short.syx"]


def test_a_bank_after_other_sysex_messages_is_read(tmp_path: Path) -> None:
    path = tmp_path / "with-a-header.syx"
    path.write_bytes(bytes([0xF0, 0x43, 0x10, 0x7F, 0xF7]) + _bank_file(tmp_path))
    assert len(get_engine("dexed").read_presets(path)) == 32
