"""Refining a match result: the search (``search.py``) started from its best matches on
one synth, and the refined preset made an answer only where, played as every answer is
played, it sounds closer than the first match, and no further on either view of the spectrum."""

from __future__ import annotations

import threading
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

from patchpilot.audio.analysis import ClipAnalysis
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.distance import PerceptualDistance, further_on_a_view
from patchpilot.errors import PatchPilotWarning, UsageError
from patchpilot.index.store import StoredPreset
from patchpilot.matching.results import Match, MatchResult, Ranked
from patchpilot.refine.search import (DISCRETE_DONORS, MIN_HOLD_SECONDS, RefineOptions, RefineOutcome,
                                      RefineProgress, Refiner, StartPoint, fit_notes_for)
from patchpilot.synths import RenderRequest

if TYPE_CHECKING:
    from patchpilot.matching import Matcher


def refiner_for(matcher: Matcher, analysis: ClipAnalysis, full_band: bool = False) -> Refiner:
    """The refinement for an input on a matcher's pools: at the analysis rate, or with
    ``full_band`` at the rate of the input's full-band copy where it has one (the loss then
    hears the top octave the analysis rate leaves out; ``RefineOptions.full_band``)."""
    rate = analysis.full_band.sample_rate if full_band and analysis.full_band else ANALYSIS_SAMPLE_RATE_HZ
    return Refiner(lambda synth: matcher.pool(synth, rate), PerceptualDistance(rate))


def refine_result(matcher: Matcher, result: MatchResult, options: RefineOptions = RefineOptions(),
                  progress: RefineProgress | None = None, cancel: threading.Event | None = None) -> MatchResult:
    """The result with a refined preset ranked first where it sounds closer than the first
    match: CMA-ES started from the best matches, scored on up to four notes of the input.
    The other matches follow."""
    if not result.matches:
        return result
    if result.analysis is None:
        raise UsageError("refinement needs an audio input to optimise against (not --text)")
    matcher.fresh_voices()
    if options.full_band is True and result.analysis.full_band is None:
        warnings.warn("no full-band copy of the input (match it with full_band=True; songs, stems and "
                      "inputs without sound above 11 kHz have none): refining at the analysis rate",
                      PatchPilotWarning, stacklevel=2)
    refiner = refiner_for(matcher, result.analysis, options.full_band is not False)
    # The refined preset is for the synth that matched best: its starts are on that synth.
    best_synth = result.matches[0].preset.synth
    same_synth = [m for m in result.matches if m.preset.synth == best_synth]
    starts = [
        StartPoint(m.preset, m.preset_id,
                   fit_notes_for(result.analysis, m.render.note, m.render.velocity, m.render.note_seconds,
                                 refiner.distance), m.fx)
        # the matches after the starts lend their discrete choices (RefineOptions.discrete)
        for m in same_synth[: max(options.starts, DISCRETE_DONORS if options.discrete else 0)]
    ]
    outcome = refiner.refine(starts, options, progress, cancel)
    origin = next(m for m in result.matches if m.preset_id == outcome.start_preset_id)
    if outcome.improved:
        # it becomes the answer: played fresh on the input's best note it must sound
        # closer than the first match, not only than the start it came from
        refined = _final_check(matcher, result.analysis, origin, outcome, result.matches[0])
        if refined is not None:
            others = tuple(replace(m, rank=rank) for rank, m in enumerate(result.matches, start=2))
            return replace(result, matches=(refined, *others))
        # closer by the refinement's loss, not on the final check: the start stays the answer
        outcome = replace(outcome, preset=origin.preset, distance_after=outcome.distance_before)
    # Nothing sounded closer than the first match: the matches keep their ranks, and the
    # one the search started from carries its outcome.
    return replace(result, matches=tuple(replace(m, refinement=outcome) if m is origin else m
                                         for m in result.matches))


def _final_check(matcher: Matcher, analysis: ClipAnalysis, origin: Match, outcome: RefineOutcome,
                 to_beat: Match) -> Match | None:
    """The refined preset as a match, scored like every match (its file played fresh on the
    input's best note, through the effect chain found for it), or None when it is not closer
    than ``to_beat`` (the first match), or closer only by trading one view of the spectrum
    for the other (``distance.further_on_a_view``)."""
    preset = outcome.preset.with_values({}, name=f"{origin.preset.name} (refined)",
                                        origin=f"refined from {origin.preset_id}")
    # played as the search settled: the same key and velocity, the hold it found
    held = min(max(origin.render.note_seconds * outcome.hold_ratio, MIN_HOLD_SECONDS),
               origin.render.total_seconds - 0.01)
    settings = replace(origin.render, note_seconds=held)
    judge = matcher.judge(analysis, analysis.best)  # as the matches were confirmed
    stored = StoredPreset(-1, f"{origin.preset_id}+refined", preset, None)
    [confirmed] = matcher.reranker.confirm(judge.target, [Ranked(stored, 0.0, origin.retrieval_distance, settings)],
                                           1, judge.chains, None, judge.distance)
    if confirmed.distance >= to_beat.distance:
        return None
    heard = [(to_beat.preset, to_beat.render, to_beat.fx), (preset, confirmed.settings, confirmed.fx)]
    requests = [RenderRequest(p, s.note, s.velocity, s.note_seconds, s.total_seconds) for p, s, _ in heard]
    rate = judge.distance.sample_rate
    renders = [fx.heard_at(native, rate, s.total_seconds)
               for native, (_, s, fx) in zip(matcher.reranker.renders.render(requests, fresh=True), heard)]
    _, terms = judge.distance.score_terms(judge.target, renders)
    if further_on_a_view(terms)[0]:
        return None
    return replace(Match.of(1, confirmed), refinement=outcome, stored=None)
