"""Refinement: CMA-ES moves a matched preset's parameters until it sounds like the input.

Retrieval finds the nearest preset the library holds; refinement searches the synth's
continuous parameters around it (the pitch held: the match found it). The search starts
from the re-ranked matches (restarts spread over the best few, then the most promising
start gets the rest of the budget), stays inside each parameter's musical range, and
scores every candidate with the re-ranker's perceptual distance on up to MAX_FIT_NOTES
notes of the input at once, so the patch plays right across the range. Choices and switches (waveforms, filter models, the DX7
algorithm, effects on/off) are tried between the CMA-ES phases: the best preset so far takes,
one module at a time, the choices of the other top matches (an oscillator's wavetable, a
filter's model, an effect's switch, or the whole module with its settings), then switch flips
and the options of the most influential choices, within a share of the budget; a change is
kept only where the objective improves.

Each generation renders in the synth's pool (one synth per thread, or per worker process for
a plugin). A pooled Vital
voice does not reset its effects' free-running LFOs, so the objective is slightly noisy for
presets with chorus, flanger or phaser; the final answer is therefore checked on fresh
synth instances (the renders ``--export`` writes), and the start preset wins when nothing
found sounds closer, or when what is closer by the distance is further on one of its two
views of the spectrum (``distance.SPECTRAL_TERMS``: a trade, which the user hears as a
different sound, not a closer one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from patchpilot.audio.analysis import ClipAnalysis, Note, compare_window, compared_stretch
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_REFINE_BUDGET, RENDER_LEAD_SECONDS
from patchpilot.distance import PerceptualDistance, Target, further_on_a_view, noise_around
from patchpilot.errors import PatchPilotError, UsageError
from patchpilot.fx import FxChain
from patchpilot.synths import Preset, RenderPool, RenderRequest, SynthEngine, Voice, get_engine, play_fresh_native
from patchpilot.synths.base import from_native_rate, play_request_native

#: Notes of the input one parameter vector is scored on.
MAX_FIT_NOTES = 4
#: Extra notes must be at least this far (semitones) from the notes already chosen.
MIN_FIT_INTERVAL = 1.0
#: Pitch confidence an extra note needs (the first note is always used).
MIN_FIT_CONFIDENCE = 0.6
#: Probe: each parameter moves this far (unit range) to measure how much it matters here.
PROBE_STEP = 0.04
#: Each parameter's first CMA-ES step should change the distance by about STEP_EFFECT x the
#: start distance / sqrt(dimensions): cliff-like parameters (a DX7 modulator's level, a
#: frequency ratio) get small steps, gentle ones (an envelope time) larger ones.
STEP_EFFECT = 0.3
#: The steps' range (unit range). At most a little more than the probe: a parameter the probe
#: found gentle is gentle near the start, not across a fifth of its range (with 0.2, ten
#: "gentle" parameters of a Vital answer stepping 0.2 at once made every generation further
#: than the start, and the search ended where it began).
SIGMA_RANGE = (0.005, 0.05)
#: Parameters whose probe changes the distance less than this (relative) are held.
MIN_EFFECT = 1e-3
#: Most of the budget the probes of the starts may take (the first start is always probed).
PROBE_SHARE = 0.3
#: Matches the budget is first spread over.
DEFAULT_STARTS = 3
#: Share of the budget spread evenly over the starts before the best start gets the rest.
EXPLORE_SHARE = 0.4
#: A run stops when its best distance improved less than PLATEAU_TOLERANCE (relative) over
#: the last PLATEAU_GENERATIONS generations.
PLATEAU_GENERATIONS = 15
PLATEAU_TOLERANCE = 0.005
#: Best distinct candidates of the search re-checked on fresh synth instances at the end
#: (the best may trade one view of the spectrum for the other; one after it may not).
FINAL_CHECKS = 6
#: Discrete stage: most of the budget its trials may take, the matches whose choices are
#: tried (the starts included), the least relative gain a kept change must bring (pooled
#: renders are slightly noisy), and how many improving trials are combined greedily.
DISCRETE_SHARE = 0.15
DISCRETE_DONORS = 5
DISCRETE_MIN_GAIN = 0.005
DISCRETE_COMBINE = 4
#: The matched note's hold (its note-off) is searched too, within this many octaves of the
#: re-ranker's estimate: that estimate is made for the start preset and is sometimes far off
#: (a pad held 1.2 s read as 0.3 s), and a search with the note-off fixed there bends the
#: envelopes to fit a note the input did not play. Only the matched note's hold is searched
#: (the other fit notes' come from the input's own note-offs).
HOLD_OCTAVES = 2.0
MIN_HOLD_SECONDS = 0.02
#: With ``RefineOptions.hold_check`` a refined candidate must also beat the start with the
#: matched note held these times as long (the user's note length is not the input's).
CHECK_HOLDS = (0.5, 2.0)

#: ``progress(evaluations_done, budget, best_distance)``
RefineProgress = Callable[[int, int, float], None]
#: Renders per pool worker between two looks at the cancel switch (a multiple of the workers,
#: so that every voice plays the same notes in the same order as in one batch).
CANCEL_CHECK_RENDERS = 2


class RefineCancelled(PatchPilotError):
    """The refinement was cancelled (its cancel switch was set, or its progress callback raised this)."""


@dataclass(frozen=True)
class FitNote:
    """One note of the input the refined patch must reproduce, and how to play it."""

    target: Target
    note: int
    velocity: int
    note_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class StartPoint:
    """A re-ranked match to start from: its preset and how it plays each fit note."""

    preset: Preset
    preset_id: str
    fit_notes: tuple[FitNote, ...]
    #: The effect chain the match plays through: the search hears every candidate through
    #: it, so that it starts from the match as the user hears it.
    fx: FxChain = FxChain()


@dataclass(frozen=True)
class RefineOptions:
    budget: int = DEFAULT_REFINE_BUDGET
    time_limit_seconds: float | None = None
    starts: int = DEFAULT_STARTS
    seed: int = 0
    #: Search only these parameters (default: every audible continuous one).
    only: tuple[str, ...] | None = None
    #: Try the other matches' discrete choices (and switch flips, swept options) between
    #: the CMA-ES phases.
    discrete: bool = False
    #: Search the matched note's hold time (its note-off) with the parameters.
    hold: bool = False
    #: The final check also plays the matched note held half and twice as long
    #: (CHECK_HOLDS): a candidate that does not beat the start at each is not kept.
    hold_check: bool = False
    #: Render and score at the rate of the input's full-band copy (44.1 kHz: kept by
    #: ``PatchPilot.match`` unless told not to; the rate its answers were confirmed at), so
    #: that the loss hears above 11 kHz, where MR-STFT and the user do. None (the default):
    #: wherever the input has a copy; True: the same, with a warning where it has none;
    #: False: at the analysis rate (22.05 kHz: the search then moves what it cannot hear, and
    #: on the benchmark made MR-STFT worse, docs/BENCHMARKS.md "Refinement").
    full_band: bool | None = None

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise UsageError(f"--budget must be at least 1 (got {self.budget})")
        if self.time_limit_seconds is not None and self.time_limit_seconds <= 0:
            raise UsageError(f"--time-limit must be positive (got {self.time_limit_seconds})")


@dataclass(frozen=True)
class RefineOutcome:
    """The refined preset and what it took."""

    preset: Preset
    start_preset_id: str
    distance_before: float
    distance_after: float
    evaluations: int
    seconds: float
    render_seconds: float
    loss_seconds: float
    #: Discrete parameters the discrete stage changed in the search's start (whether or not
    #: the final check kept the result).
    discrete_changes: tuple[str, ...] = ()
    #: The answer's hold time over the start match's (the note-off the search settled on).
    hold_ratio: float = 1.0

    @property
    def improved(self) -> bool:
        return self.distance_after < self.distance_before


class SearchSpace:
    """The continuous parameters CMA-ES moves, mapped to the unit cube.

    Each parameter spans its musical range, widened to include the start value so that
    the start preset is exactly representable (a designed preset may sit outside it).
    Parameters that set the pitch (``SynthEngine.sets_pitch``) stay where the start has
    them: the match found the pitch, and against the input they are cliffs (two oscillators
    a few cents apart beat; a step of 0.005 of a tune's range cost a Vital clarinet answer
    0.15-0.3 of distance where no timbre parameter cost 0.03), so that every generation was
    further than the start. A whole-module swap leaves them alone too.
    """

    def __init__(self, engine: SynthEngine, start: Preset, names: Sequence[str] | None = None,
                 hold: float | None = None) -> None:
        self.engine = engine
        self.start = start
        #: The start's hold ratio when the hold is searched (the last coordinate), else None.
        self.hold = hold
        values = engine.params.complete(start.values)
        if names is None:
            names = [n for n in engine.audible_params(start)
                     if engine.params[n].kind == "continuous" and not engine.sets_pitch(n)]
        self.names = list(names)
        bounds = []
        for name in self.names:
            low, high = engine.params[name].search_range
            bounds.append((min(low, values[name]), max(high, values[name])))
        self.low = np.array([b[0] for b in bounds], dtype=np.float64)
        self.span = np.array([b[1] - b[0] for b in bounds], dtype=np.float64)
        self._values = values

    @property
    def dim(self) -> int:
        return len(self.names) + (self.hold is not None)

    def start_vector(self) -> np.ndarray:
        raw = np.array([self._values[n] for n in self.names], dtype=np.float64)
        unit = np.where(self.span > 0, (raw - self.low) / np.where(self.span > 0, self.span, 1.0), 0.5)
        if self.hold is not None:
            unit = np.append(unit, 0.5 + np.log2(self.hold) / (2 * HOLD_OCTAVES))
        return unit

    def subset(self, keep: np.ndarray) -> SearchSpace:
        """The same space restricted to the parameters where ``keep`` is true."""
        names = [n for n, k in zip(self.names, keep) if k]
        return SearchSpace(self.engine, self.start, names, self.hold if self.hold is not None and keep[-1] else None)

    def hold_ratio(self, unit: np.ndarray) -> float:
        """The hold time a unit vector plays the notes with, over the start match's."""
        if self.hold is None:
            return 1.0
        return float(2.0 ** (HOLD_OCTAVES * (2 * np.clip(unit[-1], 0.0, 1.0) - 1)))

    def probe_steps(self) -> np.ndarray:
        """Per-parameter probe offsets (unit range): PROBE_STEP, at least one raw step of an
        integer parameter, pointing inward from the start."""
        minimum = np.array([1.0 if self.engine.params[n].is_discrete else 0.0 for n in self.names])
        span = self.span
        if self.hold is not None:
            minimum, span = np.append(minimum, 0.0), np.append(span, 1.0)
        step = np.maximum(PROBE_STEP, minimum / np.where(span > 0, span, 1.0))
        start = self.start_vector()
        return np.where(start + step <= 1.0, step, -step)

    def preset(self, unit: np.ndarray) -> Preset:
        raw = self.low + np.clip(unit[: len(self.names)], 0.0, 1.0) * self.span
        params = self.engine.params
        return self.start.with_values({n: params[n].clip(float(v)) for n, v in zip(self.names, raw)})


def discrete_trials(engine: SynthEngine, base: Preset, donors: Sequence[Preset]) -> list[dict[str, float]]:
    """Changes of ``base``'s discrete choices worth one evaluation each, most promising first:
    each module's choices as each donor has them (an oscillator's wavetable and routing, a
    filter's model and style, an effect's switch), each switch flipped, each donor's whole
    module (its choices with its settings, the pitch left alone), each differing choice of a
    module alone, then every option of the engine's swept choices where their module
    sounds. Changes that leave ``base`` as it is, and repeats, are dropped."""
    params = engine.params
    values = params.complete(base.values)
    discrete = set(params.names("choice")) | set(params.names("switch"))
    modules: dict[str, list[str]] = {}
    for name in params.names():
        modules.setdefault(engine.module_of(name), []).append(name)
    switchable = [m for m in modules if any(n in discrete for n in modules[m])]
    tiers: list[list[dict[str, float]]] = [[], [], [], []]
    seen: set[tuple] = set()

    def add(tier: int, changes: dict[str, float]) -> None:
        changes = {n: float(v) for n, v in changes.items() if abs(float(v) - values[n]) > 1e-9}
        key = tuple(sorted((n, round(v, 6)) for n, v in changes.items()))
        if changes and key not in seen:
            seen.add(key)
            tiers[tier].append(changes)

    others = [params.complete(d.values) for d in donors if d.synth == base.synth]
    for other in others:
        for module in switchable:
            choices = [n for n in modules[module] if n in discrete]
            add(0, {n: other[n] for n in choices})
    for name in params.names("switch"):
        add(1, {name: params[name].low + params[name].high - values[name]})
    for other in others:
        for module in switchable:
            choices = [n for n in modules[module] if n in discrete]
            add(2, {n: other[n] for n in modules[module] if not engine.sets_pitch(n)})
            for name in choices:
                add(2, {name: other[name]})
    for choice, switch in engine.swept_choices:
        if switch is None or values[switch] >= 0.5:
            param = params[choice]
            for k in range(len(param.options)):
                add(3, {choice: param.low + k})
    return [t for tier in tiers for t in tier]


def fit_notes_for(analysis: ClipAnalysis, note: int, velocity: int, note_seconds: float,
                  distance: PerceptualDistance, max_notes: int = MAX_FIT_NOTES) -> tuple[FitNote, ...]:
    """The input's notes a refined patch is scored on: the matched note (played as the
    match played it) plus up to ``max_notes - 1`` others at different pitches, played the
    same interval away."""
    best = analysis.best
    chosen: list[Note] = [best]
    for candidate in analysis.notes[1:]:
        if len(chosen) >= max_notes:
            break
        if candidate.pitch.midi is None or best.pitch.midi is None or candidate.pitch.confidence < MIN_FIT_CONFIDENCE:
            continue
        if all(abs(candidate.pitch.midi - c.pitch.midi) >= MIN_FIT_INTERVAL for c in chosen):  # type: ignore[operator]
            chosen.append(candidate)
    fits = []
    for item in chosen:
        window_note, _ = compare_window(item)
        if item is best:
            played, held = note, note_seconds
        else:
            played = int(np.clip(note + round(item.pitch.midi - best.pitch.midi), 0, 127))  # type: ignore[operator]
            held = window_note
        noise = noise_around(analysis, item, distance.sample_rate)
        target = distance.prepare_target(compared_stretch(analysis, item, distance.sample_rate), noise=noise)
        total = target.length / distance.sample_rate + RENDER_LEAD_SECONDS
        fits.append(FitNote(target, played, velocity, min(held, total - 0.01), total))
    return tuple(fits)


def held_seconds(fit: FitNote, ratio: float) -> float:
    """How long a fit note is held when the hold is ``ratio`` times the fit note's."""
    return float(np.clip(fit.note_seconds * ratio, MIN_HOLD_SECONDS, fit.total_seconds - 0.01))


class Objective:
    """Mean perceptual distance of parameter vectors over the fit notes, rendered in a pool."""

    def __init__(self, pool: RenderPool, distance: PerceptualDistance, space: SearchSpace,
                 fit_notes: Sequence[FitNote], fx: FxChain = FxChain(), cancel: threading.Event | None = None) -> None:
        self.pool = pool
        self.cancel = cancel
        self.distance = distance
        self.space = space
        self.fit_notes = tuple(fit_notes)
        self.fx = fx
        self.evaluations = 0
        self.render_seconds = 0.0
        self.loss_seconds = 0.0

    def __call__(self, units: np.ndarray) -> np.ndarray:
        """Mean distance of each unit vector (rows of ``units``)."""
        return self.presets([self.space.preset(u) for u in units], [self.space.hold_ratio(u) for u in units])

    def presets(self, presets: Sequence[Preset], holds: Sequence[float] | None = None) -> np.ndarray:
        """Mean distance of each preset over the fit notes, the matched note held ``holds``
        times as long as its fit note says (default 1)."""
        holds = [1.0] * len(presets) if holds is None else holds
        jobs = [(p, f, h if i == 0 else 1.0) for p, h in zip(presets, holds) for i, f in enumerate(self.fit_notes)]
        # Each thread renders and scores its own notes: the distance's FFTs and matrix
        # products release the GIL, so scoring runs in parallel with the other renders.
        results = []
        step = CANCEL_CHECK_RENDERS * max(1, self.pool.workers) if self.cancel is not None else max(1, len(jobs))
        for first in range(0, len(jobs), step):
            if self.cancel is not None and self.cancel.is_set():
                raise RefineCancelled("the refinement was cancelled")
            results += self._render_and_score(jobs[first:first + step])
        scores = np.array([r[0] for r in results]).reshape(len(presets), len(self.fit_notes))
        self.render_seconds += sum(r[1] for r in results)
        self.loss_seconds += sum(r[2] for r in results)
        self.evaluations += len(presets)
        return scores.mean(axis=1)

    def _render_and_score(self, jobs: Sequence[tuple[Preset, FitNote, float]]) -> list[tuple[float, float, float]]:
        """Each job rendered and scored: (distance, render seconds, scoring seconds). On a pool
        of threads each thread scores its own renders (the distance's FFTs release the GIL);
        a pool of processes only renders (the fit notes' targets and a plugin effect stay
        here), and the scores are made here."""
        if self.pool.in_process:
            return list(self.pool.map(partial(_render_and_score, self.distance, self.fx), jobs))
        started = time.perf_counter()
        requests = [RenderRequest(preset, fit.note, fit.velocity, held_seconds(fit, hold), fit.total_seconds)
                    for preset, fit, hold in jobs]
        natives = list(self.pool.map(play_request_native, requests))
        rendered = time.perf_counter()
        rate = self.pool.sample_rate
        out = []
        for native, (_, fit, _) in zip(natives, jobs):
            audio = self.fx.heard_at(native, rate, fit.total_seconds) if self.fx else \
                from_native_rate(native, rate, fit.total_seconds)
            out.append(float(self.distance.score(fit.target, [audio])[0]))
        each = (rendered - started) / max(1, len(jobs)), (time.perf_counter() - rendered) / max(1, len(jobs))
        return [(score, *each) for score in out]


def _render_and_score(distance: PerceptualDistance, fx: FxChain, voice: Voice, job: tuple[Preset, FitNote, float]
                      ) -> tuple[float, float, float]:
    """One fit note of one preset rendered on a pool's voice and scored: the distance, the
    seconds rendering and the seconds scoring (module level: a pool in worker processes
    pickles it)."""
    preset, fit, hold = job
    started = time.perf_counter()
    if fx:  # effects run at the rate the user hears, then the distance's rate
        native = voice.render_native(preset, fit.note, fit.velocity, held_seconds(fit, hold), fit.total_seconds)
        audio = fx.heard_at(native, voice.sample_rate, fit.total_seconds)
    else:
        audio = voice.render(preset, fit.note, fit.velocity, held_seconds(fit, hold), fit.total_seconds)
    rendered = time.perf_counter()
    score = float(distance.score(fit.target, [audio])[0])
    return score, rendered - started, time.perf_counter() - rendered


@dataclass
class _Run:
    """One CMA-ES run from one start point."""

    start: StartPoint
    objective: Objective
    optimizer: object
    best_value: float
    best_unit: np.ndarray
    history: list[float] = field(default_factory=list)
    archive: list[tuple[float, np.ndarray]] = field(default_factory=list)
    plateaued: bool = False
    #: Per-parameter starting steps (unit range), kept for restarts.
    sigmas: np.ndarray | None = None
    #: Parameters the discrete stage changed in this run's search space (a whole-module
    #: swap may change continuous ones too), and the discrete ones among them.
    moved: tuple[str, ...] = ()
    discrete_changes: tuple[str, ...] = ()

    def restart(self, seed: int) -> None:
        """A fresh CMA-ES around the best point so far, with the starting steps."""
        self.optimizer = _cma(self.best_unit, self.sigmas, seed)  # type: ignore[arg-type]
        self.history = [self.best_value]
        self.plateaued = False

    def step(self) -> None:
        optimizer = self.optimizer
        units = np.array([optimizer.ask() for _ in range(optimizer.population_size)])  # type: ignore[attr-defined]
        values = self.objective(units)
        optimizer.tell(list(zip(units, values)))  # type: ignore[attr-defined]
        order = np.argsort(values)
        self.archive.extend((float(values[i]), units[i]) for i in order[:2])
        if values[order[0]] < self.best_value:
            self.best_value, self.best_unit = float(values[order[0]]), units[order[0]].copy()
        self.history.append(self.best_value)
        if len(self.history) > PLATEAU_GENERATIONS:
            before = self.history[-PLATEAU_GENERATIONS - 1]
            self.plateaued = before - self.best_value < PLATEAU_TOLERANCE * before


def _cma(mean: np.ndarray, sigmas: np.ndarray, seed: int):  # noqa: ANN202 - a cmaes.CMA
    """CMA-ES in the unit cube with a per-parameter starting step."""
    from cmaes import CMA

    sigma = float(np.median(sigmas))
    return CMA(mean=np.clip(mean, 1e-6, 1 - 1e-6), sigma=sigma, cov=np.diag((sigmas / sigma) ** 2),
               bounds=np.tile([0.0, 1.0], (mean.size, 1)), seed=seed)


class Refiner:
    """Runs CMA-ES from re-ranked matches; renders in the caller's pools."""

    def __init__(self, pool_for: Callable[[str], RenderPool],
                 distance: PerceptualDistance | None = None) -> None:
        self.pool_for = pool_for
        #: The loss: the re-ranker's perceptual distance, the one every answer is ranked by.
        self.distance = distance or PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ)
        #: The cancel switch of the refinement running (``refine``'s ``cancel``).
        self.cancel: threading.Event | None = None

    def refine(self, starts: Sequence[StartPoint], options: RefineOptions = RefineOptions(),
               progress: RefineProgress | None = None, cancel: threading.Event | None = None) -> RefineOutcome:
        """The best preset CMA-ES finds from ``starts`` within the budget. Setting ``cancel``
        stops it within a few renders (:class:`RefineCancelled`)."""
        self.cancel = cancel
        if not starts:
            raise UsageError("refinement needs at least one match to start from")
        began = time.perf_counter()
        deadline = began + options.time_limit_seconds if options.time_limit_seconds else None
        runs: list[_Run] = []

        def evaluations() -> int:
            return sum(r.objective.evaluations for r in runs)

        def out_of_time() -> bool:
            return deadline is not None and time.perf_counter() >= deadline

        def report() -> None:
            if progress is not None:
                progress(min(evaluations(), options.budget), options.budget, min(r.best_value for r in runs))

        def advance(run: _Run) -> None:
            """Step ``run`` until it plateaus, the budget is spent or time is up."""
            while not run.plateaued and evaluations() < options.budget and not out_of_time():
                run.step()
                report()

        for number, start in enumerate(starts[: max(1, options.starts)]):
            # Each start costs a probe of every parameter: more starts only while the probes
            # leave most of the budget to the search.
            if runs and evaluations() * (number + 1) / number > PROBE_SHARE * options.budget:
                break
            runs.append(self._start_run(start, options.seed + number, options.only, options.hold))

        # Explore: generations in turn on every start until EXPLORE_SHARE of the budget.
        explore_until = int(EXPLORE_SHARE * options.budget) if len(runs) > 1 else 0
        while evaluations() < explore_until and not out_of_time():
            active = [r for r in runs if not r.plateaued]
            if not active:
                break
            for run in active:
                run.step()
            report()
        # Discrete choices: the best point so far tries the other matches' choices.
        if options.discrete and not out_of_time():
            best = min(runs, key=lambda r: r.best_value)
            donors = [s.preset for s in starts[:DISCRETE_DONORS] if s is not best.start]
            allowance = min(int(DISCRETE_SHARE * options.budget), options.budget - evaluations())
            self._discrete_stage(best, donors, allowance, options.seed + 500)
            report()
        # Exploit: the best start continues; when it plateaus, the next best one.
        for run in sorted(runs, key=lambda r: r.best_value):
            advance(run)
        # Budget left: restart around the best point found (a fresh covariance can leave a
        # valley the old one had collapsed into); stop once a restart finds nothing better.
        restarts = 0
        while evaluations() < options.budget and not out_of_time():
            best = min((r for r in runs if r.sigmas is not None), key=lambda r: r.best_value, default=None)
            if best is None:
                break
            before = best.best_value
            restarts += 1
            best.restart(options.seed + 1000 * restarts)
            advance(best)
            if before - best.best_value < PLATEAU_TOLERANCE * before:
                break
        spent = evaluations()
        report()
        return self._finish(runs, spent, time.perf_counter() - began, options.hold_check)

    def _start_run(self, start: StartPoint, seed: int, only: Sequence[str] | None = None, hold: bool = False) -> _Run:
        """Score the start, probe every parameter once, and set CMA-ES up on the ones that
        change the sound, with a step size per parameter from its probe."""
        engine = get_engine(start.preset.synth)
        space = SearchSpace(engine, start.preset, hold=1.0 if hold else None)
        if only is not None:
            space = space.subset(np.array([n in only for n in space.names] + [True]))
        objective = Objective(self.pool_for(engine.name), self.distance, space, start.fit_notes, start.fx,
                              self.cancel)
        x0 = space.start_vector()
        initial = float(objective(x0[None, :])[0])
        if space.dim == 0:
            return _Run(start, objective, None, initial, x0, plateaued=True)
        steps = space.probe_steps()
        probes = x0 + np.diag(steps)
        effect = np.abs(objective(probes) - initial)
        keep = effect > MIN_EFFECT * max(initial, 1e-3)
        if not keep.any():
            return _Run(start, objective, None, initial, x0, plateaued=True)
        objective.space = space.subset(keep)
        x0 = x0[keep]
        slope = effect[keep] / np.abs(steps[keep])
        wanted = STEP_EFFECT * initial / np.sqrt(keep.sum())
        sigmas = np.clip(wanted / slope, *SIGMA_RANGE)
        return _Run(start, objective, _cma(x0, sigmas, seed), initial, x0, sigmas=sigmas)

    def _discrete_stage(self, run: _Run, donors: Sequence[Preset], allowance: int, seed: int) -> None:
        """Try discrete changes (``discrete_trials``) on the run's best point within
        ``allowance`` evaluations; the best improving one, then the next ones on top of it
        while each still improves, become the run's new start (CMA-ES restarts there)."""
        space = run.objective.space
        base, hold = space.preset(run.best_unit), space.hold_ratio(run.best_unit)
        trials = discrete_trials(space.engine, base, donors)[: max(0, allowance - 1 - DISCRETE_COMBINE)]
        if not trials:
            return
        # the base is scored again beside its trials: pooled renders are slightly noisy
        scores = run.objective.presets([base, *(base.with_values(t) for t in trials)], [hold] * (len(trials) + 1))
        value = float(scores[0])
        better = [int(i) for i in np.argsort(scores[1:]) if scores[1 + i] < value * (1 - DISCRETE_MIN_GAIN)]
        if not better:
            return
        changes, value = dict(trials[better[0]]), float(scores[1 + better[0]])
        for i in better[1 : 1 + DISCRETE_COMBINE]:
            if any(n in changes and changes[n] != v for n, v in trials[i].items()):
                continue
            merged = {**changes, **trials[i]}
            tried = float(run.objective.presets([base.with_values(merged)], [hold])[0])
            if tried < value * (1 - DISCRETE_MIN_GAIN):
                changes, value = merged, tried
        start = base.with_values(changes)
        discrete = {*space.engine.params.names("choice"), *space.engine.params.names("switch")}
        run.objective.space = SearchSpace(space.engine, start, space.names, hold if space.hold is not None else None)
        run.best_unit = run.objective.space.start_vector()
        run.best_value = value
        run.archive = []
        run.moved = tuple(sorted(changes))
        run.discrete_changes = tuple(n for n in run.moved if n in discrete)
        if run.sigmas is not None:
            run.restart(seed)

    def _finish(self, runs: Sequence[_Run], spent: int, seconds: float, hold_check: bool = False) -> RefineOutcome:
        """Check the best candidates of the search on fresh synth instances; keep the start
        preset when none sounds closer."""
        best_run = min(runs, key=lambda r: r.best_value)
        start = best_run.start
        space = best_run.objective.space
        # The start itself is checked anyway: a candidate at the start point is not (unless
        # the discrete stage changed the search's start: then that point is a candidate).
        exclude = [] if best_run.moved else [space.start_vector()]
        candidates: list[np.ndarray] = []
        for unit in [best_run.best_unit, *(u for _, u in sorted(best_run.archive, key=lambda item: item[0]))]:
            if len(candidates) >= FINAL_CHECKS:
                break
            if all(np.abs(unit - c).max(initial=0.0) > 1e-3 for c in [*exclude, *candidates]):
                candidates.append(unit)
        presets = [space.preset(u) for u in candidates]
        holds = [1.0, *(space.hold_ratio(u) for u in candidates)]
        fresh, terms = self.fresh_scores([start.preset, *presets], start.fit_notes, holds, start.fx)
        before = float(fresh[0])
        eligible = fresh.copy()
        # closer by the sum but further on a view of the spectrum: a trade, not a gain
        eligible[1:][further_on_a_view(terms)] = np.inf
        if hold_check and presets:
            for factor in CHECK_HOLDS:
                other = self.fresh_distance([start.preset, *presets], start.fit_notes, [h * factor for h in holds],
                                            start.fx)
                eligible[1:][other[1:] >= other[0]] = np.inf
        choice = int(np.argmin(eligible))
        chosen = start.preset if choice == 0 else presets[choice - 1]
        return RefineOutcome(
            preset=chosen, start_preset_id=start.preset_id, distance_before=before, distance_after=float(fresh[choice]),
            evaluations=spent, seconds=seconds, render_seconds=sum(r.objective.render_seconds for r in runs),
            loss_seconds=sum(r.objective.loss_seconds for r in runs),
            discrete_changes=best_run.discrete_changes if choice else (), hold_ratio=holds[choice],
        )

    def fresh_distance(self, presets: Sequence[Preset], fit_notes: Sequence[FitNote],
                       holds: Sequence[float] | None = None, fx: FxChain = FxChain()) -> np.ndarray:
        """Mean distance over the fit notes of each preset rendered on a fresh synth instance
        (``fresh_scores``)."""
        return self.fresh_scores(presets, fit_notes, holds, fx)[0]

    def fresh_scores(self, presets: Sequence[Preset], fit_notes: Sequence[FitNote],
                     holds: Sequence[float] | None = None, fx: FxChain = FxChain()
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Mean distance and mean terms over the fit notes of each preset rendered on a fresh
        synth instance (reproducible: what an exported preset plays) through ``fx``, the
        matched note held ``holds`` times as long as its fit note says (default 1). Played on
        the synth's pool, so that a plugin that crashes costs an error, not the process."""
        holds = [1.0] * len(presets) if holds is None else holds
        scores = np.zeros(len(presets))
        terms: dict[str, np.ndarray] = {}
        pool = self.pool_for(presets[0].synth)
        for number, fit in enumerate(fit_notes):
            requests = [RenderRequest(preset, fit.note, fit.velocity, held_seconds(fit, hold if number == 0 else 1.0),
                                      fit.total_seconds) for preset, hold in zip(presets, holds)]
            renders = [fx.heard_at(native, self.distance.sample_rate, fit.total_seconds)
                       for native in pool.map(play_fresh_native, requests)]
            total, parts = self.distance.score_terms(fit.target, renders)
            scores += total
            for name, values in parts.items():
                terms[name] = terms.get(name, 0.0) + values / len(fit_notes)
        return scores / len(fit_notes), terms
