"""VST3 hosting: the plugin layer on real plugins (Debian's zam-plugins effects, installed by
``.ci/run``), the instrument engine on a stand-in with pedalboard's instrument interface
(``vst3_standin.py``), and every VST3 instrument found on the machine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from patchpilot.audio.io import write_wav
from patchpilot.cli import app
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import PresetError, SynthError
from patchpilot.plugins.host import (
    PluginLoadError,
    describe_parameters,
    find_plugin,
    installed_plugins,
    load_plugin_by_name_or_path,
    might_be_instrument,
    load_state,
    quiet_plugin_output,
    save_state,
)
from patchpilot.synths import get_engine, register_plugin

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
ZAM = Path("/usr/lib/vst3")
needs_zam = pytest.mark.skipif(not (ZAM / "ZamComp.vst3").exists() or not (ZAM / "ZamCompX2.vst3").exists(),
                               reason="zam-plugins is not installed (apt-get install zam-plugins; .ci/run does)")
STANDIN = "vst3_standin:StandInSynth"


@pytest.fixture(autouse=True)
def _free_plugins_quietly():
    """Plugins a test loaded are freed when it ends, and DPF plugins print when freed: free
    them inside the redirection so the test log stays readable."""
    yield
    import gc

    with quiet_plugin_output():
        gc.collect()


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")])
    return env


# ---- the hosting layer on real plugins ---------------------------------------------------------
@needs_zam
def test_plugins_load_by_path_and_by_name() -> None:
    by_path = load_plugin_by_name_or_path(ZAM / "ZamComp.vst3")
    by_name = load_plugin_by_name_or_path("zamcomp")
    assert by_path.name == by_name.name == "ZamComp"
    assert by_name.is_effect and not by_name.is_instrument
    assert find_plugin("Zam Comp") == ZAM / "ZamComp.vst3"  # case, spaces and punctuation do not matter
    assert ZAM / "ZamVerb.vst3" in installed_plugins([ZAM])
    assert not might_be_instrument(ZAM / "ZamVerb.vst3")  # "Fx|Reverb|Stereo", told without loading it


@needs_zam
def test_parameters_carry_names_ranges_units_choices_and_switches() -> None:
    infos = {i.name: i for i in describe_parameters(load_plugin_by_name_or_path("ZamComp"))}
    threshold = infos["threshold_db"]
    assert (threshold.kind, threshold.unit, threshold.minimum, threshold.maximum) == ("continuous", "dB", -80.0, 0.0)
    assert threshold.label == "Threshold"
    assert threshold.to_value(0.75) == pytest.approx(-20.0, abs=0.1)
    assert threshold.to_normalised(-20.0) == pytest.approx(0.75, abs=0.002)
    assert infos["attack_ms"].unit == "ms"
    assert infos["sidechain"].is_boolean
    program = infos["current_program"]
    assert program.kind == "choice" and program.options == ("Zero", "PoppySnare", "VocalLeveller")


@needs_zam
def test_state_round_trips_through_a_vstpreset(tmp_path: Path) -> None:
    plugin = load_plugin_by_name_or_path("ZamComp")
    plugin.parameters["threshold_db"].raw_value = 0.25
    with quiet_plugin_output():  # VST3 delivers a parameter change with the next processed block
        plugin.process(np.zeros((1, 256), np.float32), 44100, reset=False)
    preset = tmp_path / "comp.vstpreset"
    preset.write_bytes(save_state(plugin))
    assert preset.read_bytes().startswith(b"VST3")
    fresh = load_plugin_by_name_or_path("ZamComp")
    assert float(fresh.threshold_db) == pytest.approx(0.0)
    load_state(fresh, preset.read_bytes())
    assert float(fresh.threshold_db) == pytest.approx(-60.0, abs=0.1)
    raw = save_state(fresh, "raw")
    other = load_plugin_by_name_or_path("ZamComp")
    load_state(other, raw, "raw")
    assert float(other.threshold_db) == pytest.approx(-60.0, abs=0.1)
    with pytest.raises(PresetError, match="not a .vstpreset"):
        load_state(other, b"garbage")


@needs_zam
def test_component_state_inside_raw_state_round_trips() -> None:
    """The container an .fxp chunk is put into (Surge XT's patches): pedalboard's raw_state
    XML and JUCE's base64, read and written exactly, and a component state moved from one
    instance to another carries the setting."""
    import struct

    from patchpilot.plugins.fxp import component_state, juce_base64_decode, juce_base64_encode, with_component_state

    plugin = load_plugin_by_name_or_path("ZamComp")
    raw = save_state(plugin, "raw")
    assert with_component_state(raw, component_state(raw)) == raw
    for size in range(0, 40):
        data = bytes(range(size))
        assert juce_base64_decode(juce_base64_encode(data)) == data
    source = load_plugin_by_name_or_path("ZamComp")
    source.parameters["threshold_db"].raw_value = 0.25
    with quiet_plugin_output():
        source.process(np.zeros((1, 64), np.float32), 44100, reset=False)
    load_state(plugin, with_component_state(raw, component_state(save_state(source, "raw"))), "raw")
    assert float(plugin.threshold_db) == pytest.approx(-60.0, abs=0.1)
    assert struct.unpack("<I", raw[4:8])[0] == len(raw) - 9


@needs_zam
def test_a_chain_of_builtin_and_vst3_effects_processes_a_note() -> None:
    import pedalboard

    # ZamCompX2: a stereo effect that loads in 0.1 s (ZamVerb took 85 s to load here at 44.1 kHz)
    comp = load_plugin_by_name_or_path("ZamCompX2", instrument=False)
    t = np.arange(22050) / 44100
    note = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-4 * t)).astype(np.float32)
    with quiet_plugin_output():
        wet = pedalboard.Pedalboard([pedalboard.Gain(gain_db=-3), comp, pedalboard.Reverb()])(
            np.stack([note, note]), 44100)
    assert wet.shape == (2, note.size) and np.isfinite(wet).all() and np.abs(wet).max() > 0.01


CHATTER = """
import json, sys
import numpy as np
block = np.zeros((1, 4096), np.float32)
if sys.argv[1] == "quiet":
    from patchpilot.plugins.host import load_plugin_by_name_or_path, quiet_plugin_output
    plugin = load_plugin_by_name_or_path("ZamComp")
    with quiet_plugin_output():
        plugin(block, 44100)
else:
    import pedalboard
    plugin = pedalboard.load_plugin("/usr/lib/vst3/ZamComp.vst3")
    plugin(block, 44100)
sys.stdout.write(json.dumps({"ok": True}) + "\\n")
"""


@needs_zam
def test_plugin_chatter_stays_off_our_streams() -> None:
    """DPF plugins print when they are freed (ZamVerb also on every block): none of it may
    reach our stdout (``--json``) or stderr. The control run, plain pedalboard, shows the chatter."""
    quiet = subprocess.run([sys.executable, "-c", CHATTER, "quiet"], capture_output=True, text=True,
                           env=_subprocess_env(), timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == '{"ok": true}\n'
    assert quiet.stderr == ""
    loud = subprocess.run([sys.executable, "-c", CHATTER, "loud"], capture_output=True, text=True,
                          env=_subprocess_env(), timeout=60)
    assert "DPF warning" in loud.stdout + loud.stderr


def test_missing_plugin_is_one_clear_line_through_the_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build-index", "--plugin", str(tmp_path / "Nope.vst3"),
                                      "--index", str(tmp_path / "idx")])
    assert result.exit_code == SynthError.exit_code
    assert result.output.strip().count("\n") == 0
    assert "no such plugin file" in result.output


def test_unloadable_plugin_is_one_clear_line_in_a_subprocess(tmp_path: Path) -> None:
    broken = tmp_path / "Broken.vst3"
    broken.mkdir()
    result = subprocess.run([sys.executable, "-m", "patchpilot", "build-index", "--plugin", str(broken),
                             "--index", str(tmp_path / "idx")], capture_output=True, text=True,
                            env=_subprocess_env(), timeout=120)
    assert result.returncode == SynthError.exit_code
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load plugin" in lines[0] and "Broken.vst3" in lines[0], result.stderr


@needs_zam
def test_an_effect_is_refused_as_an_instrument(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build-index", "--plugin", "ZamComp", "--index", str(tmp_path / "idx")])
    assert result.exit_code == SynthError.exit_code
    assert "is an effect, not an instrument" in result.output


def test_unknown_plugin_name_lists_where_it_looked() -> None:
    with pytest.raises(PluginLoadError, match="no VST3 plugin named 'Definitely Not Here'"):
        find_plugin("Definitely Not Here")


# ---- the instrument engine on the stand-in -----------------------------------------------------
@pytest.fixture(scope="module")
def standin() -> str:
    return register_plugin("", factory=STANDIN)


def test_engine_builds_its_space_from_the_plugins_parameters(standin: str) -> None:
    engine = get_engine(standin)
    assert standin == "vst3:stand-in-synth"
    params = engine.params
    # plumbing (bypass, the program list) is not matched
    assert list(params) == ["waveform", "cutoff_hz", "attack_s", "decay_s", "sustain", "release_s", "chorus"]
    assert params["waveform"].options == ("Sine", "Saw", "Square")
    assert params["chorus"].kind == "switch"
    cutoff = params["cutoff_hz"]
    assert cutoff.unit == "Hz" and cutoff.native(0.0) == pytest.approx(80, rel=0.01)
    assert cutoff.parse(1000.0) == pytest.approx(np.log(1000 / 80) / np.log(12000 / 80), abs=0.002)
    assert params["cutoff_hz"].group == "filter" and params["attack_s"].group == "envelope"


def test_programs_are_presets_and_renders_do_not_depend_on_the_last_one(standin: str) -> None:
    engine = get_engine(standin)
    programs = engine.factory_presets()
    assert [p.name for p in programs] == ["Soft Sine", "Bright Saw", "Dark Square", "Pluck"]
    assert engine.native_values(programs[2])["waveform"] == "Square"
    voice = engine.new_voice()
    first = voice.render(programs[1], 60, 100, 0.4, 0.8)
    voice.render(programs[2], 48, 60, 0.2, 0.8)  # another patch, note and velocity in between
    again = voice.render(programs[1], 60, 100, 0.4, 0.8)
    assert first.shape == (int(0.8 * ANALYSIS_SAMPLE_RATE_HZ),) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    # the reference render (the .vstpreset file played) is what the pooled voice plays
    np.testing.assert_allclose(engine.render(programs[1], 60, 100, 0.4, 0.8), first, atol=1e-6)
    stereo = voice.render_stereo(programs[1], 60, 100, 0.4, 0.8)
    assert stereo.shape == (2, first.size)


def test_vstpreset_files_round_trip(standin: str, tmp_path: Path) -> None:
    engine = get_engine(standin)
    preset = engine.factory_presets()[3].with_values({"cutoff_hz": 0.3, "waveform": 2.0})
    path = tmp_path / "mine.vstpreset"
    engine.write_preset(preset, path)
    [read] = engine.read_presets(path)
    assert read.name == "mine" and read.base_state is not None
    for name, value in preset.values.items():
        assert read.values[name] == pytest.approx(value, abs=1e-6), name
    bad = tmp_path / "bad.vstpreset"
    bad.write_bytes(b"nope")
    with pytest.raises(PresetError):
        engine.read_presets(bad)


def test_a_preset_file_that_crashes_or_silences_the_plugin_is_refused_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are tried in a worker process first: one the plugin crashes on is named and
    refused while this process goes on; a good one imports."""
    monkeypatch.setenv("STANDIN_CRASH_PID", str(os.getpid()))  # the stand-in aborts any other process
    engine = get_engine(register_plugin("", factory="vst3_standin:CrashingStandInSynth"))
    good = engine.factory_presets()[1]
    path = tmp_path / "good.vstpreset"
    engine.write_preset(good, path)
    state = json.loads(path.read_bytes()[4:])
    crashing, broken = tmp_path / "crashing.vstpreset", tmp_path / "broken.vstpreset"
    crashing.write_bytes(b"VST3" + json.dumps({**state, "crash": 1.0}).encode())
    broken.write_bytes(b"VST3" + json.dumps({**state, "waveform": "not a number"}).encode())
    with pytest.raises(PresetError, match=f"^{re.escape(str(crashing))}: the plugin crashed"):
        engine.read_presets(crashing)
    with pytest.raises(PresetError, match=f"^{re.escape(str(broken))}: the plugin failed on this preset"):
        engine.read_presets(broken)
    [read] = engine.read_presets(path)  # the worker came back after the crash
    assert read.values == pytest.approx(good.values)


def test_fxp_patches_are_given_to_the_plugin_as_component_state(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Surge XT's path for its .fxp patches, on the stand-in (whose component state is the JSON
    of its values): the chunk of an opaque-chunk .fxp becomes the plugin's state."""
    import struct

    from patchpilot.plugins import profiles

    profile = profiles.PluginProfile("fxp-test", fxp_patches=True)
    monkeypatch.setattr(profiles, "PROFILES", profiles.PROFILES + (profile,))
    from patchpilot.synths.vst3 import PluginSpec, VST3Engine

    engine = VST3Engine(PluginSpec("vst3:fxp-test", factory=STANDIN, profile="fxp-test"))
    assert ".fxp" in engine.bank_suffixes
    wanted = {"waveform": 0.9, "cutoff_hz": 0.3, "attack_s": 0.2, "decay_s": 0.5, "sustain": 0.5,
              "release_s": 0.6, "chorus": 1.0, "bypass": 0.0, "current_program": 0.0}
    chunk = json.dumps(wanted).encode()
    name = b"My Patch".ljust(28, b"\x00")
    header = b"CcnK" + struct.pack(">I", 52 + len(chunk)) + b"FPCh" + struct.pack(">III", 1, 0x636A7333, 1)
    fxp = tmp_path / "patch.fxp"
    fxp.write_bytes(header + struct.pack(">I", 1) + name + struct.pack(">I", len(chunk)) + chunk)
    [preset] = engine.read_presets(fxp)
    assert preset.name == "My Patch"
    assert engine.native_values(preset)["waveform"] == "Square" and preset.values["cutoff_hz"] == pytest.approx(0.3)
    fxp.write_bytes(b"CcnK" + bytes(60))
    with pytest.raises(PresetError, match="patch.fxp"):
        engine.read_presets(fxp)


@pytest.fixture(scope="module")
def standin_index(standin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from patchpilot.index.manage import BuildRequest, build_index

    root = tmp_path_factory.mktemp("standin")
    presets = root / "user"
    presets.mkdir()
    engine = get_engine(standin)
    engine.write_preset(engine.factory_presets()[2].with_values({"cutoff_hz": 0.55, "attack_s": 0.2}),
                        presets / "Warm Square.vstpreset")
    index = root / "index"
    report, _ = build_index(BuildRequest(index=index, synths=(standin,), presets=(presets,), size_per_synth=16,
                                         workers=2, rebuild=True))
    assert report.presets[standin] >= 8 and not report.failed
    return index


def test_build_index_and_match_a_rendered_note_end_to_end(standin: str, standin_index: Path,
                                                          tmp_path: Path) -> None:
    engine = get_engine(standin)
    target = engine.factory_presets()[1]  # Bright Saw
    audio = engine.render(target, 57, 100, 0.6, 1.2, sample_rate=44100)
    clip = tmp_path / "saw.wav"
    write_wav(clip, audio, 44100)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["match", str(clip), "--index", str(standin_index), "--synth", "vst3:Stand-In Synth",
                                      "--json", "--top-k", "3", "--export", str(out)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    best = answer["matches"][0]
    assert best["synth"] == standin
    assert best["params"]["waveform"] == "Saw" and best["params"]["chorus"] == "On"
    assert best["units"]["cutoff_hz"] == "Hz"
    assert best["distance"] < 0.3
    exported = Path(best["preset_file"])
    assert exported.suffix == ".vstpreset" and exported.read_bytes().startswith(b"VST3")
    assert engine.read_presets(exported)[0].values["waveform"] == 1.0
    # the index remembers how to load the plugin: a user preset of the build is listed with its file
    listing = CliRunner().invoke(app, ["presets", "list", "--index", str(standin_index), "--user", "--json"])
    assert "Warm Square" in listing.stdout


def test_match_json_stays_clean_when_the_plugin_prints(standin: str, standin_index: Path, tmp_path: Path) -> None:
    """The whole CLI in a subprocess, with a stand-in that writes to file descriptors 1 and 2
    on every render: stdout is exactly the JSON, stderr has no plugin text. The subprocess
    finds the plugin through the index's record alone."""
    engine = get_engine(standin)
    clip = tmp_path / "square.wav"
    write_wav(clip, engine.render(engine.factory_presets()[2], 50, 100, 0.5, 1.0, sample_rate=44100), 44100)
    env = _subprocess_env()
    env["STANDIN_CHATTER"] = "1"
    result = subprocess.run([sys.executable, "-m", "patchpilot", "match", str(clip), "--index", str(standin_index),
                             "--json", "--top-k", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["matches"][0]["synth"] == standin
    assert "stand-in:" not in result.stdout + result.stderr


@pytest.mark.skipif(not Path("/usr/lib/vst3/ZamEQ2.vst3").exists(), reason="zam-plugins is not installed")
def test_refining_a_plugin_match_renders_in_worker_processes_through_a_vst3_effect(standin: str, standin_index: Path,
                                                                                  tmp_path: Path) -> None:
    """A plugin's renders run in its worker processes; what does not travel there (a loaded
    VST3 effect of the answer's chain, the fit notes' targets) stays here and scores here."""
    from dataclasses import replace

    from patchpilot.api import PatchPilot, RefineOptions
    from patchpilot.fx import Effect, FxChain
    from patchpilot.fx.plugin import plugin_effect_kind
    from patchpilot.synths.isolated import IsolatedRenderPool

    engine = get_engine(standin)
    clip = tmp_path / "saw.wav"
    write_wav(clip, engine.render(engine.factory_presets()[1], 57, 100, 0.6, 1.2, sample_rate=44100), 44100)
    chain = FxChain((Effect(plugin_effect_kind("ZamEQ2"),
                            (("boost_cut_1_db", 6.0), ("bandwidth_1", 2.0), ("frequency_1_hz", 1500.0))),))
    with PatchPilot(standin_index, workers=2) as pilot:
        result = pilot.match(clip, top_k=2, synth=standin)
        through_eq = replace(result, matches=tuple(replace(m, fx=chain) for m in result.matches))
        refined = pilot.refine(through_eq, RefineOptions(budget=12, seed=0, starts=1, discrete=False, hold=False))
        assert isinstance(pilot.matcher.pool(standin), IsolatedRenderPool)
    outcome = next(m.refinement for m in refined.matches if m.refinement is not None)
    assert outcome.evaluations >= 12 and np.isfinite(outcome.distance_after)


def test_the_index_records_how_to_load_the_plugin(standin_index: Path, standin: str) -> None:
    from patchpilot.index.index import PresetIndex
    from patchpilot.index.store import ENGINE_META

    with PresetIndex.open(standin_index) as index:
        record = json.loads(index.store.get_meta(f"{ENGINE_META}{standin}"))
    assert record["factory"] == STANDIN and record["synth"] == standin


def test_a_crashing_plugin_costs_its_presets_not_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in's "Crash" program aborts any process but this one (the renders run in
    worker processes): those presets are reported as failed and the rest is indexed."""
    from patchpilot.index.manage import BuildRequest, build_index

    monkeypatch.setenv("STANDIN_CRASH_PID", str(os.getpid()))
    synth = register_plugin("", factory="vst3_standin:CrashingStandInSynth")
    report, _ = build_index(BuildRequest(index=tmp_path / "index", synths=(synth,), size_per_synth=10, workers=2))
    crashed = [pid for pid, why in report.failed if "crashed" in why]
    assert crashed and all(":crash" in pid for pid in crashed)
    assert report.presets[synth] >= 5


def test_a_preset_that_crashes_the_plugin_during_match_costs_one_line(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``match`` renders a plugin through its worker processes: the "Crash" program, indexed
    while it did not crash, now aborts the worker that plays it; the match still answers,
    without it, and says so in one line."""
    from patchpilot.api import PatchPilot
    from patchpilot.errors import PatchPilotWarning
    from patchpilot.index.manage import BuildRequest, build_index

    monkeypatch.setenv("STANDIN_CRASH_PID", str(os.getpid()))  # never this process
    synth = register_plugin("", factory="vst3_standin:CrashingStandInSynth")
    monkeypatch.setenv("STANDIN_NO_CRASH", "1")
    report, _ = build_index(BuildRequest(index=tmp_path / "index", synths=(synth,), size_per_synth=10, workers=2))
    assert not report.failed
    monkeypatch.delenv("STANDIN_NO_CRASH")
    engine = get_engine(synth)
    clip = tmp_path / "saw.wav"  # every preset of the index is heard, "Crash" too
    write_wav(clip, engine.render(engine.factory_presets()[1], 60, 100, 0.6, 1.2, sample_rate=44100), 44100)
    with PatchPilot(tmp_path / "index", workers=2) as pilot, pytest.warns(PatchPilotWarning) as caught:
        assert any(row["name"] == "Crash" for row in pilot.list_presets())
        result = pilot.match(clip, top_k=3)
    assert result.matches and not [m.preset_id for m in result.matches if m.preset.name.startswith("Crash")]
    crashed = [str(w.message) for w in caught if "crashed" in str(w.message)]
    assert len(crashed) == 1 and "Crash" in crashed[0] and "\n" not in crashed[0], crashed


def test_match_synth_accepts_plugin_names() -> None:
    from patchpilot.cli import _check_synth

    assert _check_synth("vst3:Surge XT") == "vst3:surge-xt"
    assert _check_synth("DX7") == "dexed"


# ---- every VST3 instrument on this machine -----------------------------------------------------
def _instruments() -> list[Path]:
    found = []
    for path in installed_plugins():
        if not might_be_instrument(path):
            continue
        try:
            plugin = load_plugin_by_name_or_path(path)
        except PluginLoadError:
            continue
        if plugin.is_instrument:
            found.append(path)
    return found


@pytest.mark.slow
def test_every_installed_vst3_instrument_builds_an_index_and_matches(tmp_path: Path) -> None:
    instruments = _instruments()
    if not instruments:
        pytest.skip("no VST3 instrument is installed here (Debian packages none; zam-plugins are effects)")
    from patchpilot.index.manage import BuildRequest, build_index

    for path in instruments:
        index = tmp_path / path.stem
        report, _ = build_index(BuildRequest(index=index, plugins=(str(path),), synths=(), size_per_synth=12))
        synth = next(iter(report.presets))
        engine = get_engine(synth)
        preset = engine.factory_presets()[0]
        audio = engine.render(preset, 60, 100, 0.8, 1.5, sample_rate=44100)
        if float(np.abs(audio).max()) < 1e-4:
            continue  # an instrument silent on its init patch has nothing to match
        clip = tmp_path / f"{path.stem}.wav"
        write_wav(clip, audio, 44100)
        result = CliRunner().invoke(app, ["match", str(clip), "--index", str(index), "--synth", synth, "--json"])
        assert result.exit_code == 0, (path, result.output)
        assert json.loads(result.stdout)["matches"][0]["synth"] == synth
