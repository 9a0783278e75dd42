"""The patches of a corpus: perturbed factory presets and uniform samples of the space that
refinement searches, each a pure function of (seed, synth, number).

Because a patch depends on nothing but its key, a corpus is the same whichever machine,
shard or resumed run makes it, and any patch can be made again from its number (its
parameters in the shard are enough for DX7; a Vital patch also needs its parent's
wavetables, which :func:`corpus_patch` rebuilds).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from patchpilot.library.bank import load_factory_bank
from patchpilot.library.sampler import make_variant
from patchpilot.synths import Preset, SynthEngine, get_engine

#: Share of the patches that perturb a factory preset; the rest sample the search space.
PERTURBED_SHARE = 0.5
#: Variant numbers of corpus patches start here, clear of the index's own variants (1, 2, ...).
VARIANT_NUMBER_BASE = 1_000_000
#: The two kinds of patch, as stored in a shard's ``kind`` column.
KINDS = ("perturbed", "uniform")


@dataclass(frozen=True)
class CorpusPatch:
    """One patch: its number, its preset, how it was made and from which factory preset."""

    number: int
    preset: Preset
    kind: str
    parent: str


class PatchMaker:
    """Makes the patches of one synth from its factory bank (read once)."""

    def __init__(self, synth: str, factory_root: Path, seed: int,
                 perturbed_share: float = PERTURBED_SHARE) -> None:
        self.synth, self.factory_root, self.seed = synth, factory_root, seed
        self.perturbed_share = perturbed_share

    @cached_property
    def engine(self) -> SynthEngine:
        return get_engine(self.synth)

    @cached_property
    def designed(self) -> list[Preset]:
        return load_factory_bank(self.synth, self.factory_root)

    @cached_property
    def _relatives(self) -> dict[str, list[Preset]]:
        by_category: dict[str, list[Preset]] = defaultdict(list)
        for preset in self.designed:
            by_category[preset.category].append(preset)
        return by_category

    def patch(self, number: int) -> CorpusPatch:
        """Patch ``number``: a perturbed factory preset (``library/sampler.py``'s moves), or a
        factory preset's structure (its switches, wavetables, routing) with every audible
        continuous parameter drawn uniformly over its musical range, as refinement may move it."""
        rng = np.random.default_rng([self.seed, zlib.crc32(self.synth.encode()), number])
        parent = self.designed[int(rng.integers(len(self.designed)))]
        name = f"corpus {self.synth} {number:08d}"
        if rng.random() < self.perturbed_share:
            relatives = [p for p in self._relatives[parent.category] if p is not parent]
            variant = make_variant(self.engine, parent, VARIANT_NUMBER_BASE + number, seed=self.seed,
                                   relatives=relatives)
            preset = variant.with_values({}, name=name)
            return CorpusPatch(number, preset, "perturbed", parent.name)
        params = self.engine.params
        continuous = [n for n in self.engine.audible_params(parent) if params[n].kind == "continuous"]
        drawn = rng.random(len(continuous))
        values = {n: float(np.float32(params[n].from_unit(float(u)))) for n, u in zip(continuous, drawn)}
        preset = parent.with_values(values, name=name, origin=f"uniform over {parent.name}")
        return CorpusPatch(number, preset, "uniform", parent.name)

    def patches(self, numbers: Sequence[int]) -> list[CorpusPatch]:
        return [self.patch(n) for n in numbers]
