"""The synth layer: rendering, determinism, the thread pool, native preset files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patchpilot.audio.dsp import rms
from patchpilot.errors import PresetError, SynthError
from patchpilot.synths import RenderPool, RenderRequest, get_engine


@pytest.mark.parametrize("synth", ["vital", "dexed"])
def test_render_is_mono_float32_of_the_requested_length(synth: str) -> None:
    engine = get_engine(synth)
    audio = engine.render(engine.init_preset(), 60, 100, 0.5, 0.8)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size == int(0.8 * 22050)
    assert rms(audio) > 0.01


@pytest.mark.parametrize("synth", ["vital", "dexed"])
def test_reference_render_is_deterministic(synth: str) -> None:
    engine = get_engine(synth)
    preset = engine.init_preset()
    assert np.array_equal(engine.render(preset, 57, 90, 0.4, 0.6), engine.render(preset, 57, 90, 0.4, 0.6))


def test_a_reused_vital_voice_forgets_the_previous_render() -> None:
    engine = get_engine("vital")
    plain = engine.make_preset("plain", {"osc_1_wavetable": "Square", "filter_1_on": True, "filter_1_cutoff": 1500})
    long_tail = engine.make_preset("tail", {"env_1_release": 4.0, "reverb_on": True, "reverb_dry_wet": 50,
                                            "delay_on": True})
    reference = engine.new_voice().render(plain, 60, 100, 0.5, 0.7)
    voice = engine.new_voice()
    voice.render(long_tail, 48, 127, 0.5, 0.6)  # leaves a long release and FX tails behind
    again = voice.render(plain, 60, 100, 0.5, 0.7)
    assert np.abs(again - reference).max() < 0.03


def test_pool_renders_in_order_with_a_synth_per_thread() -> None:
    engine = get_engine("dexed")
    preset = engine.init_preset()
    requests = [RenderRequest(preset, note, 100, 0.2, 0.3) for note in (48, 60, 72, 84)]
    with RenderPool(engine, workers=2) as pool:
        pooled = pool.render(requests)
    for request, audio in zip(requests, pooled):
        assert np.array_equal(audio, engine.render(preset, request.note, 100, 0.2, 0.3))


def test_a_reset_pool_plays_as_a_new_pool_whatever_it_played_before() -> None:
    engine = get_engine("vital")
    wobbly = engine.make_preset("wobbly", {"chorus_on": True, "flanger_on": True, "phaser_on": True})
    other = engine.make_preset("other", {"reverb_on": True, "delay_on": True, "env_1_release": 3.0})
    requests = [RenderRequest(wobbly, note, 100, 0.3, 0.5) for note in (48, 55, 60, 67, 72)]
    with RenderPool(engine, workers=2) as new:
        expected = new.render(requests)
    with RenderPool(engine, workers=2) as used:
        used.render([RenderRequest(other, note, 127, 0.4, 0.5) for note in (40, 52, 64)])
        used.reset()
        again = used.render(requests)
    assert all(np.array_equal(a, b) for a, b in zip(again, expected))


def test_bad_render_arguments_raise_synth_errors() -> None:
    engine = get_engine("dexed")
    with pytest.raises(SynthError):
        engine.render(engine.init_preset(), 200, 100, 0.5, 1.0)
    with pytest.raises(SynthError):
        engine.render(engine.init_preset(), 60, 100, 2.0, 1.0)


def test_vital_preset_file_loads_in_vita_and_round_trips(tmp_path: Path) -> None:
    import vita

    engine = get_engine("vital")
    preset = engine.make_preset("Round Trip", {"osc_1_wavetable": "Vowels", "osc_1_wave_frame": 100,
                                               "filter_1_on": True, "filter_1_cutoff": 1200,
                                               "mod_lfo_1_to_filter_1_cutoff": 0.3, "lfo_1_shape": "Sine"},
                                 category="pad", tags=["soft"])
    path = tmp_path / "x.vital"
    engine.write_preset(preset, path)
    assert vita.Synth().load_preset(str(path))
    (loaded,) = engine.read_presets(path)
    assert loaded.name == "Round Trip"
    assert np.array_equal(engine.render(loaded, 60, 100, 0.5, 0.7), engine.render(preset, 60, 100, 0.5, 0.7))


def test_an_imported_vital_file_keeps_values_the_space_cannot_express(tmp_path: Path) -> None:
    import json

    import vita

    # oscillator 1 routed to REVERB alone (silent in vita), oscillator 2 audible: the space
    # only offers destinations up to DIRECT OUT, and clipping to it would make osc 1 sound
    doc = json.loads(vita.Synth().to_json())
    doc["settings"].update({"osc_1_destination": 13.0, "osc_2_on": 1.0, "osc_2_transpose": 7.0,
                            **{f"osc_{n}_random_phase": 0.0 for n in (1, 2, 3)}})
    path = tmp_path / "routed.vital"
    path.write_text(json.dumps(doc))
    engine = get_engine("vital")
    (loaded,) = engine.read_presets(path)
    assert json.loads(engine.to_json(loaded))["settings"]["osc_1_destination"] == 13.0
    plain = vita.Synth()
    assert plain.load_json(path.read_text())
    expected = np.asarray(plain.render(60, 100 / 127, 0.2, 0.3)).mean(axis=0)
    assert np.allclose(engine.render(loaded, 60, 100, 0.2, 0.3, sample_rate=44100), expected, atol=1e-6)
    moved = loaded.with_values({"osc_1_destination": 0.0})  # a search that moves it writes its own value
    assert json.loads(engine.to_json(moved))["settings"]["osc_1_destination"] == 0.0


def test_a_users_vital_file_plays_as_its_first_note_after_loading_on_a_reused_voice(tmp_path: Path) -> None:
    import json

    import vita

    # chorus, flanger and an LFO on the filter: a reused voice would start them where the
    # last note left them; the user hears them from a freshly loaded file
    doc = json.loads(vita.Synth().to_json())
    doc["settings"].update({"chorus_on": 1.0, "flanger_on": 1.0, "filter_1_on": 1.0, "filter_1_cutoff": 70.0,
                            **{f"osc_{n}_random_phase": 0.0 for n in (1, 2, 3)}})
    synth = vita.Synth()
    assert synth.load_json(json.dumps(doc))
    assert synth.connect_modulation("lfo_1", "filter_1_cutoff")
    path = tmp_path / "mine.vital"
    path.write_text(synth.to_json())
    engine = get_engine("vital")
    (mine,) = engine.read_presets(path)
    plain = vita.Synth()
    assert plain.load_json(path.read_text())
    first_note = np.asarray(plain.render(57, 90 / 127, 0.4, 0.6)).mean(axis=0)
    voice = engine.new_voice(44100)
    voice.render(engine.make_preset("other", {"reverb_on": True, "delay_on": True}), 48, 127, 0.5, 0.6)
    for _ in range(2):  # after another preset, and after itself
        assert np.allclose(voice.render(mine, 57, 90, 0.4, 0.6), first_note, atol=1e-6)


def test_vital_rejects_a_broken_preset_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.vital"
    path.write_text("{not json")
    with pytest.raises(PresetError):
        get_engine("vital").read_presets(path)


def test_dexed_single_voice_sysex_is_framed_and_loads_in_dexed_py(tmp_path: Path) -> None:
    import dexed

    engine = get_engine("dexed")
    preset = engine.make_preset("EPIANO 1", {"algorithm": "5", "op2_output_level": 70, "op2_coarse": 14})
    path = tmp_path / "ep.syx"
    engine.write_preset(preset, path)
    data = path.read_bytes()
    assert len(data) == 163 and data[:6] == bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B]) and data[-1] == 0xF7
    assert (sum(data[6:161]) + data[161]) & 0x7F == 0  # checksum
    patch = dexed.Patch.from_sysex(data[6:161])
    synth = dexed.DexedSynth(44100)
    synth.load_patch(patch)
    direct = synth.render(60, 100, 0.5, 0.7)
    assert np.array_equal(direct, engine.render(preset, 60, 100, 0.5, 0.7, sample_rate=44100))
    (loaded,) = engine.read_presets(path)
    assert loaded.values == preset.values


def test_dexed_reads_a_32_voice_bank(tmp_path: Path) -> None:
    import dexed

    patches = []
    for i in range(32):
        patch = dexed.Patch(f"VOICE {i:02d}")
        patch.algorithm = i
        patches.append(patch)
    dexed.Patch.save_to_bank(str(tmp_path / "bank.syx"), patches)
    presets = get_engine("dexed").read_presets(tmp_path / "bank.syx")
    assert len(presets) == 32
    assert [p.values["algorithm"] for p in presets] == [float(i) for i in range(32)]
    assert presets[5].name == "VOICE 05"


def test_dexed_rejects_files_that_are_not_sysex(tmp_path: Path) -> None:
    path = tmp_path / "notes.syx"
    path.write_bytes(b"hello")
    with pytest.raises(PresetError, match="not a DX7 sysex"):
        get_engine("dexed").read_presets(path)


def test_velocity_sensitivity_flags() -> None:
    dexed_engine = get_engine("dexed")
    assert not dexed_engine.velocity_sensitive(dexed_engine.init_preset())
    sensitive = dexed_engine.make_preset("v", {"op1_velocity_sens": 5})
    assert dexed_engine.velocity_sensitive(sensitive)
    vital_engine = get_engine("vital")
    # velocity_track only changes loudness, which matching normalises away
    assert not vital_engine.velocity_sensitive(vital_engine.make_preset("v", {"velocity_track": 80}))
    assert vital_engine.velocity_sensitive(vital_engine.make_preset("v", {"filter_1_on": True,
                                                                          "mod_velocity_to_filter_1_cutoff": 0.4}))


def test_audible_params_skip_switched_off_modules() -> None:
    engine = get_engine("vital")
    audible = engine.audible_params(engine.init_preset())
    assert "filter_1_cutoff" not in audible and "reverb_size" not in audible
    assert "env_1_release" in audible
    filtered = engine.make_preset("f", {"filter_1_on": True, "reverb_on": True})
    assert {"filter_1_cutoff", "reverb_size"} <= set(engine.audible_params(filtered))
    dx = get_engine("dexed")
    assert all(not name.startswith("op2_") for name in dx.audible_params(dx.init_preset()))
