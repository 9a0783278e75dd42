"""Seeded variants of designed presets, so the default index covers each synth's space.

A variant moves a few *audible* parameters of its parent (those of switched-off modules
would make silent duplicates) within their musical ranges, sometimes swaps an option (a
wavetable, a filter model, an LFO shape) or blends in another preset of the same category.
It keeps the parent's category and tags.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from patchpilot.synths import Preset, SynthEngine

#: Standard deviation of a parameter move, as a fraction of its musical range.
MOVE_SIGMA = 0.2
#: Smallest move that counts as audible for the "changed something" guarantee.
MIN_MOVE = 0.06


def _rng(*keys: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _float32(values: dict[str, float]) -> dict[str, float]:
    # Values are stored as float32 in the index; round now so renders match the store exactly.
    return {k: float(np.float32(v)) for k, v in values.items()}


def make_variant(engine: SynthEngine, parent: Preset, number: int, seed: int = 0,
                 relatives: Sequence[Preset] = ()) -> Preset:
    """Variant ``number`` of ``parent``: deterministic for a given seed."""
    rng = _rng(seed, parent.synth, parent.name, number)
    params = engine.params
    values = dict(params.complete(parent.values))
    audible = engine.audible_params(parent)

    if relatives and rng.random() < 0.2:
        # blend towards another preset of the same category
        other = params.complete(relatives[int(rng.integers(len(relatives)))].values)
        t = float(rng.uniform(0.15, 0.45))
        for name in audible:
            p = params[name]
            u = (1 - t) * p.to_unit(values[name]) + t * p.to_unit(other[name])
            values[name] = p.from_unit(u)

    moves = min(len(audible), int(rng.integers(4, 10)))
    moved_enough = False
    for name in rng.choice(audible, size=moves, replace=False) if moves else []:
        p = params[name]
        before = p.to_unit(values[name])
        after = float(np.clip(before + rng.normal(0.0, MOVE_SIGMA), 0.0, 1.0))
        values[name] = p.from_unit(after)
        moved_enough |= abs(p.to_unit(values[name]) - before) >= MIN_MOVE
    if not moved_enough and audible:
        name = str(rng.choice(audible))
        p = params[name]
        before = p.to_unit(values[name])
        values[name] = p.from_unit(before + (MIN_MOVE * 2 if before < 0.5 else -MIN_MOVE * 2))

    swappable = [n for n in engine.variant_choices if n in params]
    if swappable and rng.random() < 0.3:
        name = str(rng.choice(swappable))
        lo, hi = params[name].search_range
        values[name] = float(rng.integers(int(lo), int(hi) + 1))
    if engine.variant_switches and rng.random() < 0.15:  # the engine's effects switched on or off
        name = str(rng.choice([n for n in engine.variant_switches if n in params]))
        values[name] = 1.0 - values[name]

    return Preset(parent.synth, f"{parent.name} #{number}", _float32(values), category=parent.category,
                  tags=parent.tags, origin=f"variant of {parent.name}", base_state=parent.base_state)


def variants_per_preset(designed: int, target_total: int) -> int:
    """How many variants each designed preset needs so the bank reaches ``target_total``."""
    return max(0, math.ceil((target_total - designed) / max(designed, 1)))
