"""The effect chain: its JSON, its checks, its search, and `render --fx`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.distance import PerceptualDistance
from patchpilot.errors import UsageError
from patchpilot.fx import EFFECT_KINDS, Effect, FxChain, chain_from_list, load_chain
from patchpilot.fx.search import ChainSearch
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, from_native_rate

from conftest import render_dry_and_wet, render_note

ROOM = FxChain((Effect("Reverb", (("room_size", 0.8), ("damping", 0.3), ("wet_level", 0.5))),))


def test_a_chain_round_trips_through_its_json_and_keeps_the_standard_order(tmp_path: Path) -> None:
    chain = ROOM.with_effect(Effect("Delay", (("delay_seconds", 0.25), ("feedback", 0.3), ("mix", 0.2))))
    chain = chain.with_effect(Effect("Distortion", (("drive_db", 12.0),)))
    assert [e.kind for e in chain.effects] == ["Distortion", "Delay", "Reverb"]  # drive first, the room last
    chain.save(tmp_path / "a.fx.json")
    assert load_chain(tmp_path / "a.fx.json") == chain
    assert json.loads((tmp_path / "a.fx.json").read_text())["fx"][2] == {
        "effect": "Reverb", "room_size": 0.8, "damping": 0.3, "wet_level": 0.5, "dry_level": 1.0, "width": 1.0,
        "freeze_mode": 0.0}
    assert "Reverb (room_size 0.8, damping 0.3, wet_level 0.5)" in chain.describe()


def test_the_chains_json_rebuilds_the_same_chain_in_plain_pedalboard(tmp_path: Path) -> None:
    """Every argument is in the JSON: a user who builds each effect as
    ``pedalboard.<effect>(**arguments)``, with none of our code, hears what we scored."""
    import pedalboard

    chain = FxChain(tuple(Effect(kind.name, tuple((c.name, c.value(0.6)) for c in kind.controls))
                          for kind in EFFECT_KINDS))
    chain.save(tmp_path / "all.fx.json")
    items = json.loads((tmp_path / "all.fx.json").read_text())["fx"]
    board = pedalboard.Pedalboard([getattr(pedalboard, item["effect"])(**{k: v for k, v in item.items() if k != "effect"})
                                   for item in items])
    rate = 44100
    t = np.arange(int(1.5 * rate)) / rate
    note = (np.sign(np.sin(2 * np.pi * 110 * t)) * np.exp(-2 * t)).astype(np.float32) * 0.3
    assert np.allclose(board(note, rate), chain.apply(note, rate), atol=1e-6)
    for item, kind in zip(items, EFFECT_KINDS):  # every argument of the class, pedalboard's defaults not relied on
        made = getattr(pedalboard, item["effect"])()
        arguments = {name for name in dir(made) if not name.startswith("_") and isinstance(getattr(made, name), float)}
        assert arguments <= set(item), (kind.name, arguments - set(item))


@pytest.mark.parametrize("items, message", [
    ([{"effect": "Flanger9000"}], "unknown effect"),
    ([{"effect": "Reverb", "room_size": 7}], "Room Size"),
    ([{"effect": "Reverb", "room_size": "big"}], "must be a number"),
    ([{"effect": "Delay", "speed": 1}], "no setting 'speed'"),
    ([{"effect": "Reverb", "dry_level": 0.4}], "dry_level is held at 1.0"),
    ([{"room_size": 0.5}], "\"effect\" name"),
    ({"effect": "Reverb"}, "a list of effects"),
])
def test_a_bad_chain_is_one_clear_error(items: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        chain_from_list(items)  # type: ignore[arg-type]


def test_every_effect_kind_runs_at_the_edges_of_its_ranges() -> None:
    note = np.sin(2 * np.pi * 220 * np.arange(22050) / 44100).astype(np.float32)
    for kind in EFFECT_KINDS:
        for u in (0.0, 1.0):
            chain = FxChain((Effect(kind.name, tuple((c.name, c.value(u)) for c in kind.controls)),))
            out = chain.apply(note, 44100)
            assert out.shape == note.shape and np.isfinite(out).all(), (kind.name, u)


def test_the_search_finds_the_room_a_note_was_played_in_and_leaves_a_dry_note_dry(tiny_banks: Path) -> None:
    dry = render_note("dexed", "Test Bell", tiny_banks, 60, sample_rate=NATIVE_SAMPLE_RATE_HZ)
    distance = PerceptualDistance(22050)
    for chain, expect_reverb in ((ROOM, True), (FxChain(), False)):
        signal = from_native_rate(chain.apply(dry, NATIVE_SAMPLE_RATE_HZ), 22050, dry.size / NATIVE_SAMPLE_RATE_HZ)
        target = distance.prepare_target(signal)
        plain = float(distance.score(target, [from_native_rate(dry, 22050, dry.size / NATIVE_SAMPLE_RATE_HZ)])[0])
        found, score = ChainSearch(distance, signal, target.length).search(target, dry, plain)
        if expect_reverb:
            assert [e.kind for e in found.effects] == ["Reverb"] and score < 0.3 * plain
        else:
            assert found == FxChain() and score == plain


def test_render_applies_an_exported_chain(tiny_index: Path, tmp_path: Path) -> None:
    ROOM.save(tmp_path / "room.fx.json")
    a, b = render_dry_and_wet(tiny_index, tmp_path, tmp_path / "room.fx.json")
    assert np.array_equal(b, ROOM.apply(a, 44100))
    runner = CliRunner()
    args = ["render", "dexed:test-bell", "--index", str(tiny_index), "--note", "60", "--seconds", "0.5", "--tail", "1"]
    (tmp_path / "bad.fx.json").write_text('{"fx": [{"effect": "Reverb", "room_size": 3}]}')
    bad = runner.invoke(app, [*args, "-o", str(tmp_path / "x.wav"), "--fx", str(tmp_path / "bad.fx.json")])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "bad.fx.json" in bad.stderr


def test_a_vital_answer_also_exports_its_chain_in_vitals_own_effects(tmp_path: Path) -> None:
    import vita

    from patchpilot.export import export_preset
    from patchpilot.synths import get_engine
    from patchpilot.synths.vital.fx import with_chain

    engine = get_engine("vital")
    chain = FxChain((Effect("HighpassFilter", (("cutoff_frequency_hz", 2000.0),)), Effect("Compressor", (
        ("threshold_db", -20.0), ("ratio", 4.0), ("attack_ms", 5.0), ("release_ms", 100.0))),
        Effect("Delay", (("delay_seconds", 0.25), ("feedback", 0.3), ("mix", 0.5)))))
    roomy = engine.make_preset("roomy", {"reverb_on": True})
    settings_json, left_out = with_chain(engine.to_json(roomy), FxChain((*chain.effects, *ROOM.effects)))
    settings = json.loads(settings_json)["settings"]
    assert settings["delay_on"] == 1 and settings["delay_sync"] == 0 and settings["delay_frequency"] == pytest.approx(2.0)
    assert settings["eq_low_mode"] == 1 and settings["eq_low_cutoff"] == pytest.approx(69 + 12 * np.log2(2000 / 440))
    assert left_out == ("Compressor: Vital's compressor is a multiband one, not an equivalent",
                        "Reverb: the preset already uses Vital's reverb")

    plain = engine.make_preset("plain", {"osc_1_wavetable": "Saw"})
    files = export_preset(plain, tmp_path, "answer", note=48, velocity=100, note_seconds=0.1, total_seconds=1.0,
                          fx=chain)
    assert files.fx_preset_file == tmp_path / "answer.with-fx.vital"
    assert files.fx_left_out == ("Compressor: Vital's compressor is a multiband one, not an equivalent",)

    def first_note(path: Path) -> np.ndarray:
        synth = vita.Synth()
        assert synth.load_preset(str(path))
        return np.asarray(synth.render(48, 100 / 127, 0.1, 1.0)).mean(axis=0)

    dry, wet = first_note(files.preset_file), first_note(files.fx_preset_file)

    def level(audio: np.ndarray, start: float, stop: float) -> float:
        return float(np.sqrt(np.mean(audio[int(start * 44100) : int(stop * 44100)] ** 2)))

    assert level(wet, 0.27, 0.33) > 10 * level(dry, 0.27, 0.33)  # the echo a quarter second on

    def low_share(audio: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(audio[: int(0.1 * 44100)])) ** 2
        return float(spectrum[: int(500 * 0.1)].sum() / spectrum.sum())

    assert low_share(wet) < 0.3 * low_share(dry)  # the high-pass at 2 kHz (pedalboard's: 0.83 -> 0.13)
