"""Parameter spaces: native/raw conversions, clipping, validation."""

from __future__ import annotations

import math

import pytest

from patchpilot.errors import PresetError
from patchpilot.synths import get_engine
from patchpilot.synths.params import Param, ParamSpace


def test_native_and_parse_are_inverse_for_every_continuous_param() -> None:
    for synth in ("vital", "dexed"):
        params = get_engine(synth).params
        for name, param in params.items():
            if param.kind != "continuous":
                continue
            for unit in (0.0, 0.37, 1.0):
                raw = param.from_unit(unit)
                native = param.native(raw)
                back = param.parse(native)
                tolerance = 1e-2 * max(1.0, abs(param.high - param.low))
                assert abs(back - raw) <= tolerance, (synth, name, raw, native, back)


def test_vital_units_are_the_panel_units() -> None:
    params = get_engine("vital").params
    assert params["filter_1_cutoff"].unit == "Hz"
    assert params["filter_1_cutoff"].native(69.0) == pytest.approx(440.0)
    assert params["env_1_attack"].native(1.0) == pytest.approx(1.0)  # seconds = raw ** 4
    assert params["env_1_attack"].parse(0.0625) == pytest.approx(0.5)
    assert params["lfo_1_frequency"].native(2.0) == pytest.approx(4.0)  # Hz = 2 ** raw
    assert params["reverb_decay_time"].native(1.0) == pytest.approx(2.0)  # seconds = 2 ** raw
    assert params["filter_1_model"].native(2.0) == "Ladder"


def test_dexed_units_are_dx7_panel_units() -> None:
    params = get_engine("dexed").params
    assert params["algorithm"].native(4.0) == "5"
    assert params["op2_coarse"].native(0.0) == 0.5
    assert params["op2_detune"].native(7.0) == 0
    assert params["transpose"].native(24.0) == 0
    assert params["op1_left_curve"].parse("+EXP") == 2.0


def test_clip_clamps_and_rounds_discrete_values() -> None:
    param = Param("voices", "continuous", "oscillator", 1, 16, 1, integer=True)
    assert param.clip(3.7) == 4.0
    assert param.clip(40) == 16.0
    assert param.clip(-3) == 1.0


def test_parse_rejects_values_out_of_range_and_unknown_labels() -> None:
    params = get_engine("vital").params
    with pytest.raises(PresetError, match="outside its range"):
        params["filter_1_cutoff"].parse(50000.0)
    with pytest.raises(PresetError, match="unknown option"):
        params["filter_1_model"].parse("Moog")
    with pytest.raises(PresetError, match="expected a number"):
        params["filter_1_cutoff"].parse("bright")


def test_param_space_complete_rejects_unknown_names() -> None:
    space = ParamSpace([Param("a", "continuous", "filter", 0, 1, 0.5)])
    assert space.complete({"a": 2.0}) == {"a": 1.0}
    with pytest.raises(PresetError, match="unknown parameter"):
        space.complete({"b": 1.0})
    assert "a" in space and "b" not in space


def test_unit_mapping_stays_in_the_musical_range() -> None:
    param = get_engine("vital").params["osc_1_unison_detune"]
    low, high = param.search_range
    assert param.from_unit(-1.0) == pytest.approx(low)
    assert param.from_unit(2.0) == pytest.approx(high)
    assert math.isclose(param.to_unit(param.from_unit(0.5)), 0.5, abs_tol=1e-6)


def test_vital_routing_choices_exclude_silent_destinations() -> None:
    params = get_engine("vital").params
    assert params["osc_1_destination"].options == ("FILTER 1", "FILTER 2", "FILTER 1+2", "EFFECTS", "DIRECT OUT")
    assert params["filter_1_style"].high == 4
