"""Moving a preset the way words ask: a local search on the synth's own parameters.

Each understood word names a descriptor and a way (``describe/vocabulary.py``: "brighter" is
more brightness, "less reverb" less space). For each in turn, from the preset as the last word
left it: every audible continuous parameter is nudged once and the note measured
(``measure.py``); the nudges that move the asked descriptor the asked way, and the others
least, are combined into one direction, and a line search along it stops at the first step
that moves the descriptor ``amount`` x TARGET_STEPS noticeable steps. Up to ROUNDS rounds
when a round falls short, then an effect switched on or off and the settings again. The answer
is measured again on a fresh synth, as its file plays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from dataclasses import dataclass, field

import numpy as np

from patchpilot.describe.query import parse_query
from patchpilot.describe.vocabulary import ADJECTIVES
from patchpilot.distance import PerceptualDistance
from patchpilot.errors import PresetError, UsageError
from patchpilot.export import EXPORT_NOTE_SECONDS, EXPORT_RENDER_SECONDS
from patchpilot.fx import FxChain
from patchpilot.matching.results import Match, MatchResult, RenderSettings
from patchpilot.refine import SearchSpace
from patchpilot.synths import Preset, RenderPool, RenderRequest, SynthEngine, Voice, get_engine
from patchpilot.tweak.measure import (LIMITS, MEASURE_NOTE_SECONDS, MEASURE_TOTAL_SECONDS, STEPS,
                                      TWEAK_DESCRIPTORS, in_steps, measure)

#: A word asks for this many noticeable steps of its descriptor (times ``amount``).
TARGET_STEPS = 2.0
#: A nudge's gain on the asked descriptor is divided by 1 + SIDE_WEIGHT x how far it moves the
#: others (their steps' Euclidean norm): purer moves first, but a move the synth couples with
#: others (darker FM is also less gritty) is still taken.
SIDE_WEIGHT = 0.3
#: Along the line, other descriptors may move this many steps each before a point pays for it.
SIDE_FREE_STEPS = 1.0
#: A tweak keeps the note's pitch: parameters that tune (transpose, coarse and fine ratios,
#: detune but a unison's spread, pitch envelopes) are not moved unless the register is asked for. By name: the
#: measured register is too unsteady a guard (a brighter pad reads an octave up).
PITCH_PARAM = re.compile(r"transpose|(?<!unison_de)tune|coarse|fine|pitch")
#: How far (unit range of a parameter's musical range) a parameter is nudged to measure it.
PROBE = 0.12
#: ... and how far when that moved nothing noticeable.
LARGE_PROBE = 0.4
#: Nudges combined into one direction, and the multiples of it tried along the line.
COMBINED = 4
LINE_STEPS = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0)
ROUNDS = 3


@dataclass(frozen=True)
class WordMove:
    """One word's move: the descriptor it asks for, the way (+1 more, -1 less), the steps
    asked, and the steps the answer moved it (measured on a fresh synth, from the start)."""

    word: str
    descriptor: str
    way: int
    asked_steps: float
    moved_steps: float = 0.0
    #: The descriptor was already at the end of what can be measured the asked way (an
    #: attack or a release as short as 5 ms): nothing can move it further.
    at_limit: bool = False

    @property
    def reached(self) -> bool:
        """Moved the asked way by at least one noticeable step."""
        return self.way * self.moved_steps >= 1.0


@dataclass(frozen=True)
class TweakResult:
    """A preset moved as ``words`` ask: the new preset, each word's move, every descriptor
    before and after, how far the sound moved (the distance ``match`` uses), and the
    parameters changed (panel values before and after)."""

    start: Preset
    preset: Preset
    words: str
    note: int
    velocity: int
    moves: tuple[WordMove, ...]
    before: dict[str, float]
    after: dict[str, float]
    distance: float
    changed: dict[str, tuple[object, object]] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    renders: int = 0


@dataclass(frozen=True)
class TweakedResult(MatchResult):
    """A tweak as a result with one answer (the tweaked preset, played as it was measured),
    so that what shows, plays and exports a match does the same for it."""

    tweak: TweakResult | None = None


def as_result(tweak: TweakResult, preset_id: str, fx: FxChain = FxChain()) -> TweakedResult:
    """The tweak of the preset ``preset_id`` as a result, its answer played at the key and
    velocity it was measured at for the export's length; ``fx``: the effect chain the preset
    was answered with (kept: the tweak moves the synth's settings)."""
    played = RenderSettings(tweak.note, tweak.velocity, EXPORT_NOTE_SECONDS, EXPORT_RENDER_SECONDS)
    answer = Match(1, f"{preset_id}+tweak", tweak.preset, tweak.distance, None, played, fx=fx)
    return TweakedResult(f"{tweak.start.name}: {tweak.words}", (answer,), tweak=tweak)


def word_moves(words: str, amount: float = 1.0) -> tuple[list[WordMove], tuple[str, ...]]:
    """The moves ``words`` ask for, and the words that ask for nothing ``tweak`` can move."""
    query = parse_query(words)
    moves, ignored = [], list(query.ignored)
    for wish in query.wishes:
        descriptors = ADJECTIVES[wish.headword].descriptors
        if not descriptors:
            ignored.append(wish.word)
            continue
        name, weight = max(descriptors.items(), key=lambda item: abs(item[1]))
        moves.append(WordMove(wish.word, name, wish.sign * (1 if weight > 0 else -1),
                              TARGET_STEPS * amount * wish.weight))
    ignored += [f"{c} (a category)" for c in query.categories]
    return moves, tuple(ignored)


def at_limit(move: WordMove, value: float) -> bool:
    """Whether ``value`` of the move's descriptor is already as far the asked way as it can be
    measured (``measure.LIMITS``)."""
    limit = LIMITS.get((move.descriptor, move.way))
    return limit is not None and move.way * (value - limit) >= -1e-6


def _measured(fx: FxChain, fresh: bool, voice: Voice, request: RenderRequest) -> tuple[np.ndarray, np.ndarray]:
    """The tweak descriptors of a request, and its mono audio at the voice's rate, rendered
    on a pool's voice or with ``fresh`` on a fresh instance of the synth (as the preset's file
    plays: a pooled Vital voice keeps its effects' LFO phases and glides from the last
    preset), through ``fx`` (a pool's function, module level: pools of processes pickle it)."""
    if fresh:
        voice = get_engine(request.preset.synth).new_voice(voice.sample_rate)
    stereo = voice.render_stereo(request.preset, request.note, request.velocity, request.note_seconds,
                                 request.total_seconds)
    if fx:
        stereo = fx.apply(stereo, voice.sample_rate)
    return measure(stereo, voice.sample_rate).astype(np.float64), stereo.mean(axis=0)


class Tweaker:
    """Tweaks presets of any synth, rendering through ``pool_for(synth)``."""

    def __init__(self, pool_for: Callable[[str], RenderPool], distance: PerceptualDistance) -> None:
        self.pool_for = pool_for
        self.distance = distance
        self.renders = 0
        self._fx = FxChain()

    def tweak(self, preset: Preset, words: str, *, amount: float = 1.0, note: int = 60, velocity: int = 100,
              fx: FxChain = FxChain()) -> TweakResult:
        """``preset`` moved as ``words`` ask, measured at ``note`` and ``velocity`` through
        ``fx`` (the effect chain it is heard through; a pool of processes measures it dry)."""
        moves, ignored = word_moves(words, amount)
        if not moves:
            raise UsageError(f"nothing in {words!r} says how to move a sound (try: brighter, darker, shorter "
                             "attack, longer release, more movement, wider, grittier, less reverb)")
        self.renders = 0
        engine = get_engine(preset.synth)
        pool = self.pool_for(preset.synth)  # at the analysis rate, the distance's
        pool.reset()  # the same tweak whatever the pool played before
        self._fx = fx if pool.in_process else FxChain()
        [(fresh_before, audio_before)] = self._measure([preset], note, velocity, fresh=True, audio=True)
        if not np.isfinite(fresh_before).all():
            raise PresetError(f"{preset.name} plays nothing to measure at note {note}, velocity {velocity} "
                              "(try another --note or --velocity)")
        current = preset
        for move in moves:
            current = self._move(engine, current, move, note, velocity)
        tweaked = current.with_values({}, name=f"{preset.name} ({words.strip()})"[:96],
                                      origin=f"tweaked: {words.strip()}")
        [(fresh_after, audio_after)] = self._measure([tweaked], note, velocity, fresh=True, audio=True)
        steps = in_steps(fresh_after - fresh_before)
        index = {name: i for i, name in enumerate(TWEAK_DESCRIPTORS)}
        done = tuple(WordMove(m.word, m.descriptor, m.way, m.asked_steps, float(np.nan_to_num(steps[index[m.descriptor]])),
                              at_limit(m, float(fresh_before[index[m.descriptor]])))
                     for m in moves)
        target = self.distance.prepare_target(audio_before)
        moved = float(self.distance.score(target, [audio_after])[0])
        native_before, native_after = engine.native_values(preset), engine.native_values(tweaked)
        raw_before, raw_after = engine.params.complete(preset.values), engine.params.complete(tweaked.values)
        changed = {name: (native_before[name], native_after[name]) for name in engine.params.names()
                   if not np.isclose(raw_before[name], raw_after[name], rtol=1e-9, atol=1e-12)}
        return TweakResult(preset, tweaked, words.strip(), note, velocity, done,
                           dict(zip(TWEAK_DESCRIPTORS, map(float, fresh_before))),
                           dict(zip(TWEAK_DESCRIPTORS, map(float, fresh_after))), moved, changed, ignored,
                           self.renders)

    def _measure(self, presets: Sequence[Preset], note: int, velocity: int, fresh: bool = False,
                 audio: bool = False) -> np.ndarray | list[tuple[np.ndarray, np.ndarray]]:
        """Tweak descriptors of each preset, on the pool's voices or with ``fresh`` on fresh
        instances (the points a move is judged at: what the file will play); with ``audio``,
        (descriptors, mono audio) pairs."""
        requests = [RenderRequest(p, note, velocity, MEASURE_NOTE_SECONDS, MEASURE_TOTAL_SECONDS) for p in presets]
        self.renders += len(requests)
        measured = list(self.pool_for(presets[0].synth).map(partial(_measured, self._fx, fresh), requests))
        return measured if audio else np.array([m[0] for m in measured], dtype=np.float64)

    def _nudge(self, space: SearchSpace, point: np.ndarray, moves: np.ndarray, here: np.ndarray, note: int,
               velocity: int, only: np.ndarray | None = None) -> np.ndarray:
        """How far (noticeable steps, every descriptor) nudging each parameter ``j`` of
        ``only`` (default: all) by ``moves[j]`` moves the note measured as ``here``."""
        only = np.arange(space.dim) if only is None else only
        nudged = [np.clip(point + np.eye(space.dim)[j] * moves[j], 0.0, 1.0) for j in only]
        return in_steps(self._measure([space.preset(u) for u in nudged], note, velocity) - here)

    def _move(self, engine: SynthEngine, preset: Preset, move: WordMove, note: int, velocity: int) -> Preset:
        """``preset`` moved toward ``move`` (unchanged when no setting moves it that way): its
        continuous settings first; short of the target, an effect switched on or off (more
        reverb on a preset whose reverb is off), then its settings again."""
        origin = self._measure([preset], note, velocity, fresh=True)[0]
        moved, gain = self._continuous(engine, preset, move, note, velocity, origin, 0.0)
        if gain < move.asked_steps and engine.variant_switches:
            switched, switched_gain = self._switch(engine, moved, move, note, velocity, origin)
            if switched is not None and switched_gain > gain:
                moved, gain = self._continuous(engine, switched, move, note, velocity, origin, switched_gain)
        return moved if gain > 0 else preset

    def _switch(self, engine: SynthEngine, preset: Preset, move: WordMove, note: int, velocity: int,
                origin: np.ndarray) -> tuple[Preset | None, float]:
        """The effect switch (``variant_switches``) whose flip moves ``move``'s descriptor
        furthest the asked way, the others least, and its gain over ``origin`` (steps)."""
        k = TWEAK_DESCRIPTORS.index(move.descriptor)
        values = engine.params.complete(preset.values)
        flipped = []
        for name in engine.variant_switches:
            param = engine.params[name]
            on = param.clip(values[name]) > param.low
            flipped.append(preset.with_values({name: param.low if on else param.high}))
        steps = in_steps(self._measure(flipped, note, velocity, fresh=True) - origin)
        gain = move.way * steps[:, k]
        side = np.linalg.norm(np.delete(steps, k, axis=1), axis=1)
        score = np.where(np.isfinite(gain) & np.isfinite(side) & (gain > 0), gain / (1 + SIDE_WEIGHT * side), -np.inf)
        best = int(np.argmax(score))
        return (flipped[best], float(gain[best])) if np.isfinite(score[best]) else (None, 0.0)

    def _continuous(self, engine: SynthEngine, preset: Preset, move: WordMove, note: int, velocity: int,
                    origin: np.ndarray, start_gain: float) -> tuple[Preset, float]:
        """``preset`` moved along its continuous settings toward ``move``, and the gain over
        ``origin`` it reached (``start_gain`` where it found nothing better)."""
        names = [n for n in engine.audible_params(preset) if engine.params[n].kind == "continuous"
                 and (move.descriptor == "register" or not PITCH_PARAM.search(n))]
        space = SearchSpace(engine, preset, names)
        if space.dim == 0:
            return preset, start_gain
        k = TWEAK_DESCRIPTORS.index(move.descriptor)
        start = space.start_vector()
        point, best_gain = start.copy(), start_gain
        here = self._measure([preset], note, velocity)[0]  # the nudges' baseline, on the same voices
        for _ in range(ROUNDS):
            # one nudge per parameter, toward the middle of its range (room to move)
            signs = np.where(point < 0.5, 1.0, -1.0)
            sizes = np.full(space.dim, PROBE)
            effect = self._nudge(space, point, signs * sizes, here, note, velocity)
            # a parameter whose nudge did not move the asked descriptor gets a larger one (a
            # DX7 release rate near its top: a few units of 99 are milliseconds)
            quiet = np.flatnonzero(np.nan_to_num(np.abs(effect[:, k]), nan=1.0) < 0.1)
            if quiet.size:
                sizes[quiet] = LARGE_PROBE
                effect[quiet] = self._nudge(space, point, signs * sizes, here, note, velocity, only=quiet)
            gain = move.way * effect[:, k]
            # a nudge that moved the wrong way is taken the other way where there is room
            room = (point >= sizes) & (point <= 1.0 - sizes)
            ways = np.where(gain > 0, signs, np.where(room, -signs, 0.0))
            side = np.linalg.norm(np.delete(effect, k, axis=1), axis=1)
            usable = np.isfinite(gain) & np.isfinite(side) & (ways != 0) & (np.abs(gain) > 0.05)
            score = np.where(usable, np.abs(gain) / (1 + SIDE_WEIGHT * side), -np.inf)
            chosen = [j for j in np.argsort(-score)[:COMBINED] if np.isfinite(score[j])]
            if not chosen:
                break
            direction = np.zeros(space.dim)
            for j in chosen:
                direction[j] = ways[j] * sizes[j] * score[j] / score[chosen[0]]
            # scaled so that, were it linear, a step of 1 moves the descriptor half the target
            predicted = float(sum(abs(gain[j]) * abs(direction[j]) / sizes[j] for j in chosen))
            direction *= 0.5 * move.asked_steps / max(predicted, 1e-9)
            # ... and the multiple that moves the best parameter as far as its nudge did (a
            # parameter that acts past a threshold is not linear: its nudge is known to work)
            whole = sizes[chosen[0]] / max(abs(direction[chosen[0]]), 1e-9)
            line = [np.clip(point + a * direction, 0.0, 1.0) for a in sorted({*LINE_STEPS, round(whole, 3)})]
            measured = self._measure([space.preset(u) for u in line], note, velocity, fresh=True)
            steps = in_steps(measured - origin)
            gains = move.way * steps[:, k]
            sides = np.maximum(np.abs(np.delete(steps, k, axis=1)) - SIDE_FREE_STEPS, 0.0).sum(axis=1)
            values = np.where(np.isfinite(gains) & np.isfinite(sides), gains - 0.25 * sides, -np.inf)
            reached = [i for i in range(len(line)) if np.isfinite(values[i]) and gains[i] >= move.asked_steps]
            pick = reached[0] if reached else int(np.argmax(values))
            if not np.isfinite(values[pick]) or gains[pick] <= best_gain:
                break
            point, best_gain = line[pick], float(gains[pick])
            here = self._measure([space.preset(point)], note, velocity)[0]
            if reached:
                break
        if np.array_equal(point, start):
            return preset, best_gain
        values = space.preset(point).values  # only what moved: the others keep their exact values
        return preset.with_values({space.names[j]: values[space.names[j]] for j in np.flatnonzero(point != start)}), \
            best_gain


__all__ = ["STEPS", "TweakResult", "TweakedResult", "Tweaker", "WordMove", "as_result", "word_moves"]
