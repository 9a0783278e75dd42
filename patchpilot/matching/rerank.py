"""Re-ranking: every contender rendered like the input note and sorted by the perceptual
distance (a note-off read per preset, a velocity search where the preset responds to it), then
the best confirmed as the user will hear them: their preset file played on a fresh synth,
through the effect chain that brings them closest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_VELOCITY, RENDER_LEAD_SECONDS
from patchpilot.distance import PerceptualDistance, Target, attack_start
from patchpilot.fx import ChainSearch, FxChain
from patchpilot.matching.results import Contender, Ranked, RenderSettings
from patchpilot.matching.renders import HELD_MARGIN_SECONDS, QueryRenders
from patchpilot.synths import Preset, RenderRequest, get_engine
from patchpilot.synths.base import from_native_rate

#: Velocities tried for presets whose sound depends on velocity, among the
#: VELOCITY_SEARCH_CANDIDATES best candidates at the default velocity.
VELOCITY_CANDIDATES = (40, 70, DEFAULT_VELOCITY, 127)
VELOCITY_SEARCH_CANDIDATES = 6
#: Steps of the local velocity search that follows the grid (velocity-sensitive presets).
VELOCITY_REFINE_STEPS = (16, 8, 4)
#: Candidates re-rendered with the input's release in stage 2.
RELEASE_CANDIDATES = 10
#: Stage 1 ranks the finalists on the stretch up to each one's note-off, but on this
#: much at least: a candidate that parts from the input within a few tens of ms would
#: otherwise be judged on its attack alone and crowd the right preset out of the finalists.
PARTIAL_MIN_SECONDS = 0.3
#: A note-off this close to the end of the window is treated as none.
RELEASE_MIN_GAP_SECONDS = 0.03
#: The best re-ranked candidates scored again on what the user will hear (their preset
#: file loaded in a fresh synth): the distances reported are these.
CONFIRM_CANDIDATES = 6
#: The best confirmed candidates whose effect chain is searched (``fx/search.py``): a chain
#: can take the third or fourth best dry preset past the first (docs/BENCHMARKS.md, "The
#: yardstick"). The confidence labels are calibrated with this many.
FX_CANDIDATES = 4
#: The input's own note-off is tried unless the finalist's read note-off lies this close to
#: it (a fraction of it).
OWN_NOTE_OFF_TOLERANCE = 0.05
#: Inputs compared over less than this (one-shots: kicks, zaps, short plucks) also try the
#: note-offs of EARLY_NOTE_OFFS_SECONDS: the held-render comparison (``note_off``) skips
#: the first 50 ms and needs 40 ms of divergence, so it cannot see a release before ~0.09 s.
SHORT_WINDOW_SECONDS = 0.5
#: Early note-offs tried for short inputs (seconds; about 1.4x apart: a DX7 tine released
#: at 20 instead of 30 ms is as far from itself as another preset) ...
EARLY_NOTE_OFFS_SECONDS = (0.015, 0.02, 0.03, 0.04, 0.055, 0.075, 0.1)
#: ... then the best one times these factors.
EARLY_NOTE_OFF_STEPS = (0.85, 1.15)


class HeldRender(NamedTuple):
    """A candidate's best held render in stage 1: its distance up to its note-off
    (``partial``) and over the whole window (``full``), the note and velocity played, the
    input's note-off read against it and where its attack starts (seconds after note-on)."""

    partial: float
    note: int
    velocity: int
    note_off: float
    full: float
    attack: float


class Reranker:
    """Scores contenders against one prepared target; renders through ``renders`` (each
    synth's own pool; a preset that crashes its synth is heard as silence)."""

    def __init__(self, distance: PerceptualDistance, renders: QueryRenders) -> None:
        self.distance = distance
        self.renders = renders

    def rerank(self, target: Target, candidates: Sequence[Contender],
               input_note_off: float | None = None) -> tuple[list[Ranked], dict[str, RenderSettings]]:
        """Render each candidate like the input note and sort by perceptual distance.

        Stage 1 renders every candidate with the note held through the whole window, at each
        note and velocity worth trying; where the input falls away from that render is the
        input's note-off *for that preset*. Stage 2 renders the best setting again, released
        there and, where the analysis read one (``input_note_off``: seconds after the
        input's attack), at the input's own note-off: a decaying input parts from a held
        sustained sound at once, long before the note-off a player would give it. It scores
        the whole window. Returns the ranking and, by preset id, the released settings that
        lost to the held note (dry: a room's tail after an early note-off sounds like a
        longer note; ``confirm`` tries them with a tail effect).
        """
        sr = ANALYSIS_SAMPLE_RATE_HZ
        window = target.length / sr
        # Renders start at note-on; the input may start later (a slow attack hidden in noise),
        # so they run a little longer than the input to cover it after alignment.
        total = window + RENDER_LEAD_SECONDS
        held_seconds = total - HELD_MARGIN_SECONDS

        def preset_of(position: int) -> Preset:
            return candidates[position].stored.preset

        # Stage 1: held renders at the default velocity, at each note worth trying.
        held: dict[int, HeldRender] = {}

        def render_held(jobs: dict[str, list[tuple[int, int, int]]]) -> None:
            for synth, synth_jobs in jobs.items():
                renders = self.renders.render([RenderRequest(preset_of(p), n, v, held_seconds, total)
                                               for p, n, v in synth_jobs])
                features = self.distance.prepare(target, renders)
                offs = self.distance.note_off(target, features)
                partial = self.distance.total(target, features, until=np.maximum(offs, PARTIAL_MIN_SECONDS))
                full = self.distance.total(target, features)
                for i, (position, play_note, velocity) in enumerate(synth_jobs):
                    shift = attack_start(renders[i], sr) / sr
                    entry = HeldRender(float(partial[i]), play_note, velocity, float(offs[i]) + shift, float(full[i]),
                                       shift)
                    if position not in held or entry.partial < held[position].partial:
                        held[position] = entry

        first: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for position, contender in enumerate(candidates):
            first[contender.stored.preset.synth] += [(position, n, DEFAULT_VELOCITY) for n in contender.notes]
        render_held(first)

        # Velocity-sensitive presets among the most promising: a velocity grid, then a local
        # search around the best grid point.
        promising = sorted(held, key=lambda pos: held[pos].partial)[:VELOCITY_SEARCH_CANDIDATES]
        sensitive = [pos for pos in promising if get_engine(preset_of(pos).synth).velocity_sensitive(preset_of(pos))]
        steps: list[tuple[int, ...] | int] = [VELOCITY_CANDIDATES, *VELOCITY_REFINE_STEPS]
        for step in steps:
            jobs: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
            for pos in sensitive:
                play_note, velocity = held[pos].note, held[pos].velocity
                tries = set(step) if isinstance(step, tuple) else {min(127, velocity + step), max(1, velocity - step)}
                jobs[preset_of(pos).synth] += [(pos, play_note, v) for v in sorted(tries - {velocity})]
            render_held(jobs)

        # Stage 2: release where the input did, for the candidates that explain the input
        # best up to their note-off (the others keep their held-note distance).
        final: dict[int, tuple[float, RenderSettings]] = {}
        releases: dict[str, list[tuple[int, RenderSettings]]] = defaultdict(list)
        finalists = set(sorted(held, key=lambda pos: held[pos].partial)[:RELEASE_CANDIDATES])
        first_release: dict[int, RenderSettings] = {}  # each finalist's release at its note-off
        held_settings: dict[int, RenderSettings] = {}

        def released_at(entry: HeldRender, note_off: float) -> RenderSettings:
            return RenderSettings(entry.note, entry.velocity, max(0.02, min(note_off, held_seconds)), total)

        own_note_off = input_note_off if input_note_off is not None and \
            input_note_off < window - RELEASE_MIN_GAP_SECONDS else None
        for position, entry in held.items():
            settings = RenderSettings(entry.note, entry.velocity, held_seconds, total)
            final[position] = (entry.full, settings)
            held_settings[position] = settings
            if position not in finalists:
                continue
            if entry.note_off < window - RELEASE_MIN_GAP_SECONDS:
                first_release[position] = released_at(entry, entry.note_off)
                releases[preset_of(position).synth].append((position, first_release[position]))
            if own_note_off is not None:
                own = released_at(entry, own_note_off + entry.attack)
                tried = first_release.get(position)
                if tried is None or abs(own.note_seconds - tried.note_seconds) > OWN_NOTE_OFF_TOLERANCE * own.note_seconds:
                    releases[preset_of(position).synth].append((position, own))

        def render_released(jobs: dict[str, list[tuple[int, RenderSettings]]]) -> None:
            for synth, synth_jobs in jobs.items():
                renders = self.renders.render([RenderRequest(preset_of(p), s.note, s.velocity, s.note_seconds,
                                                             s.total_seconds) for p, s in synth_jobs])
                for (position, settings), score in zip(synth_jobs, self.distance.score(target, renders)):
                    if score < final[position][0]:
                        final[position] = (float(score), settings)

        early = [off for off in EARLY_NOTE_OFFS_SECONDS if off < window]
        if window < SHORT_WINDOW_SECONDS and early:
            # A one-shot may be released before the held comparison can see it (its attack
            # is skipped): try early note-offs on a grid, then either side of the best.
            for position in finalists:
                releases[preset_of(position).synth] += [
                    (position, RenderSettings(held[position].note, held[position].velocity, off, total))
                    for off in early]
            render_released(releases)
            releases = defaultdict(list)
            for position in finalists:
                best = final[position][1]
                if best.note_seconds in early:
                    releases[preset_of(position).synth] += [
                        (position, replace(best, note_seconds=best.note_seconds * factor))
                        for factor in EARLY_NOTE_OFF_STEPS]
        render_released(releases)
        ranked = sorted(final, key=lambda pos: final[pos][0])
        lost = {candidates[pos].stored.preset_id: settings for pos, settings in first_release.items()
                if final[pos][1] == held_settings[pos]}
        return [Ranked(candidates[pos].stored, final[pos][0], candidates[pos].retrieval, final[pos][1])
                for pos in ranked], lost

    def confirm(self, target: Target, scored: Sequence[Ranked], count: int, chains: ChainSearch | None = None,
                released: dict[str, RenderSettings] | None = None,
                distance: PerceptualDistance | None = None) -> list[Ranked]:
        """Score the ``count`` best candidates again as their exported files play on a fresh
        synth instance, and rank them by that. The pooled renders of the re-ranker reuse
        synth instances whose effect LFOs run on and whose controls glide from the previous
        preset; the user's first note after loading a preset does neither. With ``chains``,
        the FX_CANDIDATES best get the effect chain that brings them closest (the distance
        is then that of the preset through its chain); one held where the re-ranker also
        tried a release (``released``) is tried released too, with a tail effect (a note
        released early in a room), and keeps what comes closer. ``distance``: the one
        ``target`` and ``chains`` were prepared for, when not the re-ranker's (the input's
        full-band rate: ``Matcher.heard_rate``)."""
        head = list(scored[:count])
        rest = [replace(item, fx=FxChain()) for item in scored[count:]]
        if not head:
            return rest
        distance = distance or self.distance
        sr = distance.sample_rate

        def fresh(item: Ranked, settings: RenderSettings) -> RenderRequest:
            return RenderRequest(item.stored.preset, settings.note, settings.velocity, settings.note_seconds,
                                 settings.total_seconds)

        # every render fresh, at the native rate, which the effect chain runs at
        renders = self.renders.render([fresh(item, item.settings) for item in head], fresh=True)
        distances = distance.score(target, [from_native_rate(r, sr, item.settings.total_seconds)
                                            for r, item in zip(renders, head)])
        order = np.argsort(distances, kind="stable")
        confirmed = []
        for rank, i in enumerate(order):
            item = replace(head[i], distance=float(distances[i]), fx=FxChain())
            if chains is not None and rank < FX_CANDIDATES:
                chain, with_chain = chains.search(target, renders[i], item.distance)
                item = replace(item, distance=with_chain, fx=chain)
                early = (released or {}).get(item.stored.preset_id)
                if early is not None:
                    [render] = self.renders.render([fresh(item, early)], fresh=True)
                    dry = float(distance.score(target, [from_native_rate(render, sr, early.total_seconds)])[0])
                    tail, with_tail = chains.search(target, render, dry, tails_only=True)
                    if with_tail < item.distance:
                        item = replace(item, settings=early, fx=tail, distance=with_tail)
            confirmed.append(item)
        confirmed.sort(key=lambda item: item.distance)
        return confirmed + rest

