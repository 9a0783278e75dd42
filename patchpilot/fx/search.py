"""Finding the effect chain that brings a dry render closest to the input.

Effects run on the render the re-ranker already has, so a setting costs an effect pass (a
millisecond) and a distance, not a synth render. The distance used while searching is a
one-resolution proxy of the re-ranker's (a third of the cost); the chain found is then
checked with the full distance and kept only where that agrees.

The search is forward selection, deterministic: each round tries every effect kind not yet
in the chain at a small spread of settings and adds the one that lowers the distance most,
if it lowers it by the round's gain (more for each further effect, so small chance gains do
not pile up junk); then each kept control is nudged either way with a halving step. An
effect that does not pay stays off, so a dry input keeps a dry answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from patchpilot.distance import PROXY_RESOLUTIONS, PROXY_STFT_RESOLUTIONS, NoiseProfile, PerceptualDistance, Target
from patchpilot.fx.chain import EFFECT_KINDS, Effect, EffectKind, FxChain
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ

#: Settings tried per effect kind and round (a fixed low-discrepancy spread over its
#: controls): a base count plus more for each control.
TRIES_BASE = 4
TRIES_PER_CONTROL = 3
#: Effects a chain may hold, and the relative drop of the distance the n-th one must bring.
MAX_EFFECTS = 3
ROUND_GAINS = (0.06, 0.08, 0.1)
#: Effect kinds a later round tries: those that lowered the distance most in the round before.
LATER_ROUND_KINDS = 3
#: Nudges of each kept control, in unit range, either way, and the gain a nudge must bring.
NUDGE_STEPS = (0.1, 0.05)
NUDGE_GAIN = 0.003
#: Moves (in unit range) of each control from an effect's neutral setting, one at a time.
SWEEP_OFFSETS = (-0.3, -0.12, 0.12, 0.3)
#: Each control is also moved together with this many controls after it in the plugin's list.
SWEEP_NEIGHBOURS = 2
#: The built-in effects that add a tail after the note: what a note released earlier needs
#: to sound like a longer one in a room (``Reranker.confirm`` tries them on such a release).
TAIL_KINDS = ("Delay", "Reverb")
#: One prime base per control of the Halton spread (a plugin effect may have a dozen).
HALTON_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def _spread(kind: EffectKind, count: int) -> list[tuple[tuple[str, float], ...]]:
    """``count`` settings of an effect spread over its controls' ranges (a Halton sequence,
    so every run tries the same ones; one setting for an effect without controls). An
    effect with a neutral setting (a plugin's defaults: a flat EQ, a compressor at 0 dB
    threshold) is also moved from there, each control alone and with each of the next
    SWEEP_NEIGHBOURS in the plugin's list: with a dozen controls, settings that move all
    of them at once rarely land near a sound that differs from the neutral one in one or
    two (a band's gain and its frequency)."""
    if not kind.controls:
        return [()]
    out = []
    for i in range(1, count + 1):
        positions = [_halton(i, HALTON_BASES[d % len(HALTON_BASES)]) for d in range(len(kind.controls))]
        out.append(tuple((c.name, c.value(u)) for c, u in zip(kind.controls, positions)))
    neutral = kind.neutral()
    if not neutral:
        return out
    moves = {c.name: sorted({min(max(c.position(neutral[c.name]) + offset, 0.0), 1.0) for offset in SWEEP_OFFSETS}
                            - {c.position(neutral[c.name])}) for c in kind.controls}
    for i, first in enumerate(kind.controls):
        out.extend(_moved(kind, neutral, {first.name: u}) for u in moves[first.name])
        # a control next to it in the plugin's list may only matter with it (a band's gain
        # and its frequency): those two are moved together too
        for second in kind.controls[i + 1 : i + 1 + SWEEP_NEIGHBOURS]:
            out.extend(_moved(kind, neutral, {first.name: u, second.name: v})
                       for u in moves[first.name] for v in moves[second.name])
    return out


def _moved(kind: EffectKind, neutral: dict[str, float], positions: dict[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple((c.name, c.value(positions[c.name]) if c.name in positions else neutral[c.name])
                 for c in kind.controls)


def _halton(index: int, base: int) -> float:
    result, fraction = 0.0, 1.0
    while index > 0:
        fraction /= base
        result += fraction * (index % base)
        index //= base
    return result


@dataclass(frozen=True)
class SearchedAt:
    """The input at the rate the search tries settings at, where the chains it finds are
    judged at a higher one (the input's full-band rate: half the cost a try): the compared
    stretch, its length in samples and the recording's noise, at ``sample_rate``."""

    signal: np.ndarray
    sample_rate: int
    length: int
    noise: NoiseProfile | None = None


class ChainSearch:
    """Searches effect chains against one prepared target (make one per input)."""

    def __init__(self, distance: PerceptualDistance, signal: np.ndarray, length: int,
                 kinds: Sequence[EffectKind] = EFFECT_KINDS, noise: NoiseProfile | None = None,
                 searched_at: SearchedAt | None = None) -> None:
        """``signal``/``length``/``noise``: the target as the full distance was given it;
        ``searched_at``: the input the proxy tries settings against (default: the same)."""
        self.distance = distance
        at = searched_at or SearchedAt(signal, distance.sample_rate, length, noise)
        self.proxy = PerceptualDistance(at.sample_rate, distance.weights, PROXY_RESOLUTIONS, PROXY_STFT_RESOLUTIONS)
        self.proxy_target = self.proxy.prepare_target(at.signal, at.length, at.noise)
        self.kinds = tuple(kinds)

    def search(self, target: Target, dry: np.ndarray, dry_distance: float, tails_only: bool = False
               ) -> tuple[FxChain, float]:
        """The chain (maybe empty) that brings ``dry`` closest to ``target`` by the full
        distance, and that distance (``dry_distance`` when no chain pays). ``dry`` is at
        NATIVE_SAMPLE_RATE_HZ: effects run at the rate the exported WAV has (a reverb at
        22.05 kHz sounds different), then the result is resampled for the distance.
        ``tails_only``: only the effects that add a tail (TAIL_KINDS; a quick look)."""
        seconds = dry.size / NATIVE_SAMPLE_RATE_HZ

        def wet(chain: FxChain, sample_rate: int) -> np.ndarray:
            return chain.heard_at(dry, sample_rate, seconds)

        def proxy(chains: list[FxChain]) -> np.ndarray:
            return self.proxy.score(self.proxy_target, [wet(c, self.proxy.sample_rate) for c in chains])

        chain = FxChain()
        best = float(proxy([chain])[0])
        kinds = [k for k in self.kinds if not tails_only or k.name in TAIL_KINDS]
        for gain in ROUND_GAINS[:MAX_EFFECTS]:
            tried = [(kind, chain.with_effect(Effect(kind, settings))) for kind in kinds
                     for settings in _spread(kind, TRIES_BASE + TRIES_PER_CONTROL * len(kind.controls))]
            if not tried:
                break
            scores = proxy([c for _, c in tried])
            i = int(np.argmin(scores))
            if scores[i] >= best * (1 - gain):
                break
            # later rounds try only the kinds that helped most in this one
            by_kind: dict[EffectKind, float] = {}  # kinds hash by identity: a plugin may share a name
            for (kind, _), score in zip(tried, scores):
                by_kind[kind] = min(by_kind.get(kind, np.inf), float(score))
            chosen = tried[i][0]
            kinds = sorted((k for k in kinds if k is not chosen and by_kind[k] < best),
                           key=lambda k: by_kind[k])[:LATER_ROUND_KINDS]
            chain, best = tried[i][1], float(scores[i])
        if not chain:
            return chain, dry_distance
        chain, best = self._nudge(chain, best, proxy, NUDGE_STEPS)
        # an effect taken early can be made redundant by one taken later: drop it if the
        # chain does as well without it, and settle the rest again
        for kind in [e.spec for e in chain.effects]:
            without = FxChain(tuple(e for e in chain.effects if e.spec is not kind))
            score = float(proxy([without])[0])
            if without and score <= best * (1 + NUDGE_GAIN):
                chain, best = without, score
                chain, best = self._nudge(chain, best, proxy, NUDGE_STEPS[-1:])
        full = float(self.distance.score(target, [wet(chain, self.distance.sample_rate)])[0])
        if full < dry_distance * (1 - ROUND_GAINS[0] / 2):
            return chain, full
        return FxChain(), dry_distance

    @staticmethod
    def _nudge(chain: FxChain, best: float, proxy: Callable[[list[FxChain]], np.ndarray],
               steps: Sequence[float]) -> tuple[FxChain, float]:
        """Move each control of the chain either way by each step while the distance drops."""
        for step in steps:
            for effect in chain.effects:
                kind = effect.spec
                for control in kind.controls:
                    current = next(e for e in chain.effects if e.spec is kind)
                    value = dict(current.settings)[control.name]
                    nudged = []
                    for sign in (-1, 1):
                        position = control.position(value) + sign * step
                        if 0.0 <= position <= 1.0:
                            settings = tuple((n, control.value(position) if n == control.name else v)
                                             for n, v in current.settings)
                            nudged.append(chain.with_effect(Effect(kind, settings)))
                    if nudged:
                        scores = proxy(nudged)
                        i = int(np.argmin(scores))
                        if scores[i] < best * (1 - NUDGE_GAIN):
                            chain, best = nudged[i], float(scores[i])
        return chain, best
