"""A user's VST3 effects in the effect chain (``fx/plugin.py``), on Debian's zam-plugins
(installed by ``.ci/run``): found by the search where the input went through one, written
to the chain's JSON with the plugin's file and loaded back by ``render --fx``, exported
as a ``.vstpreset`` the plugin loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import render_dry_and_wet, render_note
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.distance import PerceptualDistance
from patchpilot.errors import UsageError
from patchpilot.fx import EFFECT_KINDS, Effect, FxChain, chain_from_list, load_chain
from patchpilot.fx.search import ChainSearch
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, from_native_rate

ZAM = Path("/usr/lib/vst3")
pytestmark = pytest.mark.skipif(not (ZAM / "ZamEQ2.vst3").exists() or not (ZAM / "ZamCompX2.vst3").exists(),
                                reason="zam-plugins is not installed (apt-get install zam-plugins; .ci/run does)")


def eq_kind():
    from patchpilot.fx.plugin import plugin_effect_kind

    return plugin_effect_kind("ZamEQ2")


def mid_boost() -> FxChain:
    """ZamEQ2 boosting a wide band of the mids (no built-in effect has a peak band)."""
    return FxChain((Effect(eq_kind(), (("boost_cut_1_db", 15.0), ("bandwidth_1", 2.0), ("frequency_1_hz", 1500.0))),))


def boosted_pluck(pluck_wav: Path, folder: Path) -> Path:
    """The test pluck recorded through :func:`mid_boost`, as a WAV in ``folder``."""
    from patchpilot.audio.io import write_wav

    audio, rate = soundfile.read(pluck_wav, dtype="float32")
    write_wav(folder / "boosted.wav", mid_boost().apply(audio, rate), rate)
    return folder / "boosted.wav"


def test_a_plugins_controls_are_its_own_automatable_settings_in_its_units() -> None:
    from patchpilot.fx.plugin import plugin_effect_kind

    comp = plugin_effect_kind("ZamComp")
    names = [c.name for c in comp.controls]
    # meters (gain reduction), host fields (buffer size) and the output level are not searched
    assert names == ["attack_ms", "release_ms", "knee_db", "ratio", "threshold_db", "slew"]
    threshold = next(c for c in comp.controls if c.name == "threshold_db")
    assert (threshold.low, threshold.high, threshold.unit, threshold.log) == (-80.0, 0.0, "dB", False)
    assert next(c for c in comp.controls if c.name == "attack_ms").log
    assert plugin_effect_kind(ZAM / "ZamComp.vst3") is comp  # one instance per plugin file
    # a dynamics plugin sits right after the built-in compressor, an EQ after the filters
    chain = FxChain((Effect("Reverb", (("room_size", 0.5),)),)).with_effect(Effect(comp, ())).with_effect(
        Effect(eq_kind(), ())).with_effect(Effect("Distortion", (("drive_db", 6.0),)))
    assert [e.kind for e in chain.effects] == ["Distortion", "ZamEQ2", "ZamComp", "Reverb"]


def test_settings_reach_the_plugin_and_every_call_starts_from_a_reset_plugin() -> None:
    from patchpilot.fx.plugin import plugin_effect_kind

    comp = plugin_effect_kind("ZamCompX2")  # a stereo plugin: mono notes are doubled and mixed back
    t = np.arange(44100) / 44100
    note = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    squashed = Effect(comp, (("threshold_db", -40.0), ("ratio", 20.0), ("attack_ms", 0.1)))
    gentle = Effect(comp, (("threshold_db", 0.0), ("ratio", 1.0)))
    first = gentle.apply(note, 44100)
    quiet = float(np.abs(squashed.apply(note, 44100)[22050:]).max())
    assert quiet < 0.5 * float(np.abs(first[22050:]).max())
    # nothing of the squashed call (its settings, its gain reduction) is left for the next
    assert first.shape == note.shape and np.array_equal(first, gentle.apply(note, 44100))
    stereo = squashed.apply(np.stack([note, note]), 44100)
    assert stereo.shape == (2, note.size)


def test_the_search_finds_a_plugin_eq_the_input_went_through(tiny_banks: Path) -> None:
    """A Vital pad through ZamEQ2 boosting a band of its mids: no built-in effect has a peak
    band, so the chain that comes closest uses the plugin (found although its gain and its
    frequency only matter together) and comes closer than the built-in effects can."""
    dry = render_note("vital", "Test Pad", tiny_banks, 60, sample_rate=NATIVE_SAMPLE_RATE_HZ)
    coloured = mid_boost()
    distance = PerceptualDistance(22050)
    seconds = dry.size / NATIVE_SAMPLE_RATE_HZ
    signal = from_native_rate(coloured.apply(dry, NATIVE_SAMPLE_RATE_HZ), 22050, seconds)
    target = distance.prepare_target(signal)
    plain = float(distance.score(target, [from_native_rate(dry, 22050, seconds)])[0])
    found, score = ChainSearch(distance, signal, target.length, (*EFFECT_KINDS, eq_kind())).search(target, dry, plain)
    assert "ZamEQ2" in [e.kind for e in found.effects] and score < 0.85 * plain
    _, builtin_score = ChainSearch(distance, signal, target.length).search(target, dry, plain)
    assert score < builtin_score


def test_a_plugin_chain_round_trips_through_its_json_and_render(tiny_index: Path, tmp_path: Path) -> None:
    chain = FxChain((Effect(eq_kind(), (("boost_cut_1_db", 12.0), ("frequency_1_hz", 900.0))),
                     Effect("Reverb", (("room_size", 0.6),))))
    chain.save(tmp_path / "a.fx.json")
    saved = json.loads((tmp_path / "a.fx.json").read_text())["fx"][0]
    assert saved == {"effect": "ZamEQ2", "plugin": str((ZAM / "ZamEQ2.vst3").resolve()),
                     "boost_cut_1_db": 12.0, "frequency_1_hz": 900.0}
    assert load_chain(tmp_path / "a.fx.json") == chain
    a, b = render_dry_and_wet(tiny_index, tmp_path, tmp_path / "a.fx.json")
    assert np.array_equal(b, chain.apply(a, 44100)) and not np.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("item, message", [
    ({"effect": "NoSuchEq", "plugin": "/nowhere/NoSuchEq.vst3"}, "no VST3 plugin named 'NoSuchEq'"),
    ({"effect": "ZamEQ2", "plugin": 3}, "must be the plugin's path or name"),
    ({"effect": "ZamEQ2", "plugin": "ZamEQ2", "boost_cut_1_db": 40.0}, "outside -50..20"),
    ({"effect": "ZamEQ2", "plugin": "ZamEQ2", "master_gain_db": 3.0}, "no setting 'master_gain_db'"),
    ({"effect": "ZamEQ2"}, "names its file in \"plugin\""),
])
def test_a_bad_plugin_effect_is_one_clear_error(item: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        chain_from_list([item])


def test_a_chain_made_on_another_machine_finds_the_plugin_by_its_file_name() -> None:
    chain = chain_from_list([{"effect": "ZamEQ2", "plugin": "C:/Program Files/Common Files/VST3/ZamEQ2.vst3",
                              "boost_cut_1_db": 6.0}])
    assert chain.effects[0].spec is eq_kind()


def test_many_settings_are_chosen_across_the_plugin_and_the_rest_named() -> None:
    """A graphic EQ (29 bands exposed): twelve bands spread over its range are searched (not the twelve
    lowest), and a warning names those left at their defaults."""
    from patchpilot.errors import PatchPilotWarning
    from patchpilot.fx.plugin import plugin_effect_kind

    if not (ZAM / "ZamGEQ31.vst3").exists():
        pytest.skip("ZamGEQ31 is not installed")
    with pytest.warns(PatchPilotWarning, match=r"moves 12 of its 29 settings; these stay at the plugin.s defaults: 40hz_db"):
        geq = plugin_effect_kind(ZAM / "ZamGEQ31.vst3")
    bands = [c.name for c in geq.controls]
    assert len(bands) == 12 and bands[0] == "32hz_db" and "20801hz_db" not in bands
    assert any(name.startswith(("10032", "12662", "16081")) for name in bands)  # the top octaves too


def test_a_plugin_without_settings_is_tried_once_and_a_failing_one_is_one_error() -> None:
    from patchpilot.errors import SynthError
    from patchpilot.fx.plugin import PluginEffectKind, plugin_effect_kind
    from patchpilot.fx.search import _spread
    from patchpilot.plugins.host import PluginHolder

    if (ZAM / "ZamPhono.vst3").exists():
        phono = plugin_effect_kind(ZAM / "ZamPhono.vst3")  # a switch and a choice: nothing to move
        assert phono.controls == () and _spread(phono, 10) == [()]

    class Broken:
        def process(self, *args: object, **kwargs: object) -> np.ndarray:
            raise RuntimeError("the plugin gave up\nbadly")

    broken = PluginEffectKind("Broken", (), {}, path="/x/Broken.vst3", holder=PluginHolder(Broken()))
    with pytest.raises(SynthError, match="Broken .* failed to process: the plugin gave up badly"):
        Effect(broken, ()).apply(np.zeros(64, np.float32), 44100)


def test_export_writes_each_plugin_effect_as_a_vstpreset_the_plugin_loads(tmp_path: Path) -> None:
    from patchpilot.export import export_preset
    from patchpilot.plugins.host import load_plugin_by_name_or_path, load_state
    from patchpilot.synths import get_engine

    engine = get_engine("vital")
    chain = FxChain((Effect(eq_kind(), (("boost_cut_1_db", 12.0), ("frequency_1_hz", 900.0))),
                     Effect("Delay", (("delay_seconds", 0.25), ("feedback", 0.3), ("mix", 0.5)))))
    files = export_preset(engine.make_preset("plain", {"osc_1_wavetable": "Saw"}), tmp_path, "answer", note=48,
                          velocity=100, note_seconds=0.1, total_seconds=1.0, fx=chain)
    assert files.fx_plugin_presets == (tmp_path / "answer.fx-1-zameq2.vstpreset",)
    assert files.fx_left_out == ("ZamEQ2: a VST3 effect, to load after Vital (its .vstpreset)",)
    fresh = load_plugin_by_name_or_path("ZamEQ2")
    load_state(fresh, files.fx_plugin_presets[0].read_bytes())
    assert float(fresh.boost_cut_1_db) == pytest.approx(12.0, abs=0.05)
    assert float(fresh.frequency_1_hz) == pytest.approx(900.0, rel=0.01)


def test_match_uses_a_named_plugin_and_refuses_a_missing_one(pluck_wav: Path, tiny_index: Path,
                                                              tmp_path: Path) -> None:
    """The whole path: a pluck recorded through the user's EQ comes back with that EQ in its
    chain, in the JSON with the plugin's file, and exported as a .vstpreset."""
    runner = CliRunner()
    base = ["match", str(boosted_pluck(pluck_wav, tmp_path)), "--index", str(tiny_index), "--top-k", "1", "--json"]
    ok = runner.invoke(app, [*base, "--fx-plugin", "ZamEQ2", "--export", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.stderr
    match = json.loads(ok.stdout)["matches"][0]
    assert [e["effect"] for e in match["fx"]] == ["ZamEQ2"], match["fx"]
    assert match["fx"][0]["plugin"] == str((ZAM / "ZamEQ2.vst3").resolve())
    assert [Path(f).suffix for f in match["fx_plugin_preset_files"]] == [".vstpreset"]
    missing = runner.invoke(app, [*base, "--fx-plugin", "NoSuchVerb"])
    assert missing.exit_code != 0 and missing.stderr.count("\n") == 1 and "NoSuchVerb" in missing.stderr
    off = runner.invoke(app, [*base, "--fx-plugin", "ZamEQ2", "--no-fx"])
    assert off.exit_code == 2 and "--no-fx" in off.stderr


def test_the_page_offers_each_plugin_effect_as_a_vstpreset(pluck_wav: Path, tiny_index: Path, tmp_path: Path) -> None:
    """``serve --fx-plugin``: a result whose chain holds the plugin links its .vstpreset, and
    the link gives the plugin's state at the chain's settings."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    pytest.importorskip("python_multipart", reason="the serve extra is not installed")
    from patchpilot.api import PatchPilot
    from patchpilot.serve.app import create_app

    boosted = boosted_pluck(pluck_wav, tmp_path)
    with PatchPilot(tiny_index, fx_plugins=["ZamEQ2"]) as pilot:
        app = create_app(pilot=pilot)
        server = app.state.server
        page = server.result_json(server.match_file(boosted, "boosted.wav"))
        first = page["matches"][0]
        assert first["fx_plugin_presets"] == [{"url": f"/api/results/{page['id']}/matches/1/fx-plugin/1",
                                               "filename": f"{first['preset_filename'].rsplit('.', 1)[0]}"
                                                           ".fx-1-zameq2.vstpreset"}]
        from patchpilot.serve.routes import fx_plugin_preset

        response = fx_plugin_preset(page["id"], 1, 1, server=server)
        assert response.body.startswith(b"VST3")
        with pytest.raises(UsageError, match="no effect 5 that is a VST3 effect"):
            fx_plugin_preset(page["id"], 1, 5, server=server)
