"""The synth registry is the one list of built-in synths, and what each engine declares about
itself names its own parameters."""

from __future__ import annotations

import pytest

from patchpilot.errors import SynthError
from patchpilot.synths import get_engine
from patchpilot.synths.registry import (
    BUILTIN,
    builtin_name,
    builtin_synths,
    describe_builtin,
    preset_file_suffixes,
    synth_for_file,
)


def test_every_entry_makes_the_engine_it_describes() -> None:
    assert builtin_synths() == ("vital", "dexed")
    for name, entry in BUILTIN.items():
        engine = get_engine(name)
        assert (engine.name, engine.display_name, engine.preset_suffix, engine.bank_suffixes) == (
            entry.name, entry.display_name, entry.preset_suffix, entry.bank_suffixes)
        for alias in (*entry.aliases, name.upper(), f" {name} "):
            assert get_engine(alias) is engine and builtin_name(alias) == name
        for suffix in entry.bank_suffixes:
            assert synth_for_file(suffix.upper()) == name and suffix in preset_file_suffixes()


def test_an_unknown_synth_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(SynthError, match=r"^unknown synth 'moog'; built-in synths: vital, dexed, or a VST3"):
        get_engine("moog")
    assert builtin_name("moog") is None and synth_for_file(".fxb") is None
    assert describe_builtin() == "vital or dexed (dx7)"


@pytest.mark.parametrize("name", list(BUILTIN))
def test_what_an_engine_declares_names_its_own_parameters(name: str) -> None:
    engine = get_engine(name)
    params = engine.params
    for choice, switch in engine.swept_choices:
        assert params[choice].kind == "choice" and (switch is None or params[switch].kind == "switch")
    assert all(params[n].kind == "choice" for n in engine.variant_choices)
    assert all(params[n].kind == "switch" for n in engine.variant_switches)
    modules = {engine.module_of(n) for n in params.names()}
    assert 1 < len(modules) < len(params)  # parameters group into modules


def test_modules_follow_each_synths_panel() -> None:
    assert get_engine("vital").module_of("osc_1_level") == "osc_1"
    assert get_engine("vital").module_of("filter_fx_cutoff") == "filter_fx"
    assert get_engine("dexed").module_of("op3_output_level") == "op3"
    assert get_engine("dexed").module_of("feedback") == "algorithm"  # the algorithm decides what it feeds back
