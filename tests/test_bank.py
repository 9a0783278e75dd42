"""The factory banks and the variant sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from patchpilot.audio.dsp import rms
from patchpilot.errors import PresetError
from patchpilot.library.bank import CATEGORIES, load_bank_file, load_factory_bank
from patchpilot.library.sampler import make_variant
from patchpilot.paths import factory_presets_dir
from patchpilot.synths import get_engine


@pytest.mark.parametrize("synth", ["vital", "dexed"])
def test_factory_bank_has_60_designed_presets_in_every_category(synth: str) -> None:
    presets = load_factory_bank(synth, factory_presets_dir())
    assert len(presets) >= 60
    counts = Counter(p.category for p in presets)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 5
    assert all(p.tags and all(t == t.lower() for t in p.tags) for p in presets)


@pytest.mark.slow
@pytest.mark.parametrize("synth", ["vital", "dexed"])
def test_every_factory_preset_is_audible(synth: str) -> None:
    engine = get_engine(synth)
    quiet = []
    for preset in load_factory_bank(synth, factory_presets_dir()):
        note = 40 if preset.category == "bass" else 60
        level = rms(engine.render(preset, note, 100, 0.6, 0.7))
        if level < 10 ** (-50 / 20):
            quiet.append((preset.name, level))
    assert not quiet


def test_bank_errors_name_the_file_and_preset(tmp_path) -> None:
    (tmp_path / "vital").mkdir()
    bad = tmp_path / "vital" / "bad.toml"
    bad.write_text('category = "pad"\n[[preset]]\nname = "Oops"\n[preset.params]\nfilter_1_cutoff = 99999\n')
    with pytest.raises(PresetError, match=r"bad.toml preset 1 \(Oops\).*filter_1_cutoff"):
        load_bank_file(bad)
    bad.write_text('category = "kazoo"\n[[preset]]\nname = "X"\n')
    with pytest.raises(PresetError, match="unknown category"):
        load_bank_file(bad)


def test_variants_are_deterministic_in_range_and_keep_the_category() -> None:
    engine = get_engine("dexed")
    parent = load_factory_bank("dexed", factory_presets_dir())[0]
    first = make_variant(engine, parent, 3, seed=1)
    assert first.values == make_variant(engine, parent, 3, seed=1).values
    assert first.values != make_variant(engine, parent, 4, seed=1).values
    assert first.category == parent.category and first.tags == parent.tags
    changed = [n for n in parent.values if first.values[n] != parent.values[n]]
    assert changed
    for name in changed:
        param = engine.params[name]
        assert param.low <= first.values[name] <= param.high


def test_variants_change_what_can_be_heard() -> None:
    engine = get_engine("vital")
    parent = load_factory_bank("vital", factory_presets_dir())[0]
    variant = make_variant(engine, parent, 1)
    a = engine.render(parent, 60, 100, 0.5, 0.6)
    b = engine.render(variant, 60, 100, 0.5, 0.6)
    assert np.abs(a - b).max() > 1e-3
