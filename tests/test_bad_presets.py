"""Damaged preset files: every one is a PresetError naming the file, never a crash; what loads
also plays."""

from __future__ import annotations

import copy
import re
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from patchpilot.errors import PresetError
from patchpilot.library.user_files import read_preset_files
from patchpilot.synths import get_engine


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


VITAL_DAMAGE: dict[str, tuple[Callable[[dict], object], str]] = {
    "settings missing": (lambda d: d.pop("settings"), "no \"settings\" object"),
    "settings a list": (lambda d: d.update(settings=[1, 2]), "no \"settings\" object"),
    "string for a number": (_settings(lambda s: s.update(osc_1_level="loud")), "\"osc_1_level\" is a str"),
    "list for a number": (_settings(lambda s: s.update(osc_1_level=[1])), "\"osc_1_level\" is a list"),
    "NaN": (_settings(lambda s: s.update(osc_1_level=float("nan"))), "not a finite number"),
    "infinity": (_settings(lambda s: s.update(env_1_attack=float("inf"))), "not a finite number"),
    "huge integer": (_settings(lambda s: s.update(env_1_attack=10**400)), "not a finite number"),
    "out of range": (_settings(lambda s: s.update(filter_1_cutoff=1e30)), "outside Vital's range 8 to 136"),
    "unknown source": (_settings(lambda s: s["modulations"].__setitem__(0, {"source": "lfo_99",
                                                                              "destination": "filter_1_cutoff"})),
                       "unknown source 'lfo_99'"),
    "unknown destination": (_settings(lambda s: s["modulations"].__setitem__(0, {"source": "lfo_1",
                                                                                   "destination": "nowhere"})),
                            "unknown destination 'nowhere'"),
    "numeric names": (_settings(lambda s: s["modulations"].__setitem__(0, {"source": 3, "destination": 4})),
                      "must be names"),
    "modulation not an object": (_settings(lambda s: s["modulations"].__setitem__(0, 5)), "not an object"),
    "too many modulations": (_settings(lambda s: s.update(modulations=[{"source": "lfo_1",
                                                                         "destination": "filter_1_cutoff"}] * 100)),
                             "100 modulations"),
    "modulations not a list": (_settings(lambda s: s.update(modulations="x")), "\"modulations\" is not a list"),
    "too many LFOs": (_settings(lambda s: s.update(lfos=s["lfos"] * 10)), "entries in \"lfos\""),
    "LFO shape empty": (_settings(lambda s: s["lfos"].__setitem__(0, {})), "point count"),
    "LFO points short": (_settings(lambda s: s["lfos"][0].update(num_points=50)), "do not match"),
    "LFO point count huge": (_settings(lambda s: s["lfos"][0].update(num_points=10**6)), "point count"),
    "LFO points text": (_settings(lambda s: s["lfos"][0].update(points=["a", "b"] * 20)), "do not match"),
    "unknown wavetable component": (lambda d: _component(d).update(type="Bogus"), "unknown wavetable component"),
    "keyframe far away": (lambda d: _component(d)["keyframes"][0].update(position=10**9), "keyframe position"),
    "wavetables not a list": (_settings(lambda s: s.update(wavetables="x")), "\"wavetables\" is not a list"),
    "too many wavetables": (_settings(lambda s: s.update(wavetables=s["wavetables"] * 2)), "entries in"),
    "sample not an object": (_settings(lambda s: s.update(sample="x")), "\"sample\" is not an object"),
    "sample length absurd": (_settings(lambda s: s["sample"].update(length=10**12)), "absurdly large"),
    "macro a number": (lambda d: d.update(macro1=5), "\"macro1\" is a int"),
    "version a number": (lambda d: d.update(synth_version=1.5), "\"synth_version\" is a float"),
}


@pytest.mark.parametrize("case", sorted(VITAL_DAMAGE))
def test_damaged_vital_json_is_one_preset_error(case: str, vital_doc: dict, tmp_path: Path) -> None:
    damage, message = VITAL_DAMAGE[case]
    doc = copy.deepcopy(vital_doc)
    damage(doc)
    path = tmp_path / "damaged.vital"
    path.write_text(json.dumps(doc))
    with pytest.raises(PresetError) as caught:
        get_engine("vital").read_presets(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


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
    del doc["settings"]["sample"]
    path.write_text(json.dumps(doc))
    with pytest.raises(PresetError, match="vita refused this preset"):
        get_engine("vital").read_presets(path)


def test_a_vita_crash_in_the_sandbox_is_an_error_and_the_next_check_works() -> None:
    from patchpilot.synths.vital import _VitaSandbox

    crashing = _VitaSandbox()
    crashing._CHILD = "import ctypes, sys\nsys.stdin.buffer.read(4)\nctypes.string_at(0)\n"  # a segfault
    try:
        assert "crashed vita" in crashing.complaint("{}")
        assert "crashed vita" in crashing.complaint("{}")  # a new child each time
    finally:
        crashing.close()
    sandbox = _VitaSandbox()
    try:
        assert sandbox.complaint("[1]") == "vita refused this preset (made by a newer Vital, or damaged)"
        assert sandbox.complaint(get_engine("vital").to_json(get_engine("vital").init_preset())) is None
    finally:
        sandbox.close()


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
    (lambda v, b: _flip(v, 40, (v[40] + 1) & 0x7F), "checksum does not match"),
    (lambda v, b: _flip(v, 40, 0xC5), "bytes over 127"),
    (lambda v, b: _flip(v, len(v) - 1, 0x00), "broken sysex framing"),
    (lambda v, b: _flip(v, 2, 0x70), "broken sysex framing"),
    (lambda v, b: b[:3000], "is 4104 bytes, this file has 3000 (truncated)"),
    (lambda v, b: _flip(b, 1000, (b[1000] + 3) & 0x7F), "checksum does not match"),
    (lambda v, b: _flip(b, 1000, 0x80), "bytes over 127"),
    (lambda v, b: _flip(b[6:-2], 7, 0xFF), "bytes over 127"),
])
def test_damaged_sysex_is_one_preset_error(damage, message: str, tmp_path: Path) -> None:
    path = tmp_path / "damaged.syx"
    path.write_bytes(damage(_voice_file(), _bank_file(tmp_path)))
    with pytest.raises(PresetError) as caught:
        get_engine("dexed").read_presets(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text, text


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
