"""Presets made elsewhere import whenever their synth plays them, and come back out of an
export as they went in: every field kept, the same sound.

The fixtures carry, on a preset of ours, the shapes seen in real Vital files that an earlier
schema check refused: Vital 1.5's ``custom_warps`` (a list) and ``random_values``, a
wavetable random seed too large for our old number check, fields vita does not know (a
newer version's settings, a header field of another tool), a modulation with its own remap
curve, and a stale amount left in an empty modulation slot.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.metrics import mr_stft
from patchpilot.synths import get_engine
from patchpilot.synths.vital import OSCILLATORS

#: Most an export may differ from the file it came from (MR-STFT, both played fresh).
ROUND_TRIP_MR_STFT = 0.05

_WARP = {"name": "Warp", "num_points": 4, "points": [0.0, 1.0, 0.3, 0.2, 0.7, 0.9, 1.0, 0.0],
         "powers": [0.0, 2.0, -1.5, 0.0], "smooth": False}


def _custom_warps(settings: dict) -> None:
    settings["custom_warps"] = [copy.deepcopy(_WARP) for _ in range(3)]


def _random_values(settings: dict) -> None:
    settings["random_values"] = [{"seed": 1934689920}, {"seed": -517316607}, {"seed": 4}]


def _large_seed(settings: dict) -> None:
    settings["wavetables"][0]["groups"][0]["components"][0]["random_seed"] = 1934689920


def _newer_settings(settings: dict) -> None:
    settings.update({f"osc_{n}_spectral_morph_phase": 0.25 for n in OSCILLATORS})
    settings["a_setting_of_vital_9"] = {"curve": [1, 2, 3], "mode": "future"}


def _remap_curve(settings: dict) -> None:
    modulation = settings["modulations"][0]
    assert modulation["source"], "the fixture's first slot holds a routing"
    modulation["line_mapping"] = copy.deepcopy(_WARP)


def _stale_amount(settings: dict) -> None:
    """An amount left in an empty slot (Vital keeps it when a routing is deleted)."""
    empty = next(i for i, m in enumerate(settings["modulations"], start=1) if not m["source"])
    settings[f"modulation_{empty}_amount"] = 0.6


WILD_SHAPES: dict[str, Callable[[dict], None]] = {
    "custom warps as a list": _custom_warps,
    "random values": _random_values,
    "large integer in wavetable data": _large_seed,
    "settings from a newer Vital": _newer_settings,
    "a remap curve on a modulation": _remap_curve,
    "a stale amount in an empty slot": _stale_amount,
}


@pytest.fixture(scope="module")
def imported_doc() -> dict:
    """A file as another Vital user would have it: our preset with its routings moved to
    the front slots (as Vital writes them) and Vital 1.5's header."""
    engine = get_engine("vital")
    preset = engine.make_preset("Wild", {"osc_1_wavetable": "Vowels", "filter_1_on": True, "osc_1_unison_voices": 3,
                                         "mod_lfo_1_to_filter_1_cutoff": 0.3, "lfo_1_shape": "Sine",
                                         "mod_env_2_to_filter_1_cutoff": 0.4})
    doc = json.loads(engine.to_json(preset))
    settings = doc["settings"]
    used = [(i, m) for i, m in enumerate(settings["modulations"], start=1)
            if m["source"] and abs(settings[f"modulation_{i}_amount"]) > 0]
    amounts = [settings[f"modulation_{i}_amount"] for i, _ in used]
    settings["modulations"] = [m for _, m in used] + [{"source": "", "destination": ""}] * (64 - len(used))
    for slot in range(1, 65):
        settings[f"modulation_{slot}_amount"] = amounts[slot - 1] if slot <= len(amounts) else 0.0
    doc.update(synth_version="1.5.3", author="Someone Else", preset_name="Wild")
    return doc


def _play(data: bytes):  # a float32 array
    return get_engine("vital").play_file(data, 57, 100, 1.0, 1.6, sample_rate=EXPORT_SAMPLE_RATE_HZ)


@pytest.mark.parametrize("shape", [*sorted(WILD_SHAPES), "all at once"])
def test_a_wild_vital_file_imports_and_exports_as_it_came(shape: str, imported_doc: dict, tmp_path: Path) -> None:
    doc = copy.deepcopy(imported_doc)
    for name, add in WILD_SHAPES.items():
        if shape in (name, "all at once"):
            add(doc["settings"])
    doc["tool_that_saved_it"] = {"name": "another editor", "version": [2, 1]}
    path = tmp_path / "wild.vital"
    path.write_text(json.dumps(doc))

    engine = get_engine("vital")
    (preset,) = engine.read_presets(path)
    exported = json.loads(engine.preset_bytes(preset))

    # every field comes back, those vita ignores included
    for key, value in doc.items():
        if key != "settings":
            assert exported[key] == value, key
    for key, value in doc["settings"].items():
        if key != "modulations":
            assert exported["settings"][key] == value, key
    # the file's own routings stay in their slots with what they carry; slots the file
    # left empty stay empty while nothing uses them (a connection changes Vital's sound)
    assert exported["settings"]["modulations"] == doc["settings"]["modulations"]
    # the same sound, each file played fresh as Vital loads it
    assert mr_stft(_play(path.read_bytes()), _play(json.dumps(exported).encode())) <= ROUND_TRIP_MR_STFT


def test_a_routing_moved_on_an_imported_preset_is_wired_then(imported_doc: dict, tmp_path: Path) -> None:
    """An empty slot a routing took is written once its amount moves off 0, and the
    export then sounds different (the move reaches the file)."""
    path = tmp_path / "wild.vital"
    path.write_text(json.dumps(imported_doc))
    engine = get_engine("vital")
    (preset,) = engine.read_presets(path)
    moved = preset.with_values({"mod_lfo_2_to_voice_amplitude": -0.8, "lfo_2_frequency": 5.0})
    exported = json.loads(engine.preset_bytes(moved))
    sources = [(m["source"], m["destination"]) for m in exported["settings"]["modulations"]]
    assert ("lfo_2", "voice_amplitude") in sources
    assert mr_stft(_play(path.read_bytes()), _play(json.dumps(exported).encode())) > 0.1
