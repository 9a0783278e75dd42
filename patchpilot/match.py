"""Matching: from an input note to ranked presets.

1. ``analyse_clip`` picks the cleanest note and estimates its pitch and note-off.
2. The embedder describes the note; the index returns candidates interpolated to its pitch,
   each with the note to play it at.
3. The re-ranker renders every candidate at that note for the input's length (trying a few
   velocities when the preset responds to velocity) and sorts by perceptual distance.
"""

from __future__ import annotations

import threading
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from patchpilot.audio.analysis import ClipAnalysis, Note, analyse_clip, compared_stretch
from patchpilot.audio.io import Audio
from patchpilot.constants import (
    ANALYSIS_SAMPLE_RATE_HZ,
    DEFAULT_RERANK_CANDIDATES,
    DEFAULT_TOP_K,
    DEFAULT_VELOCITY,
    RENDER_LEAD_SECONDS,
)
from patchpilot.distance import (PROXY_RESOLUTIONS, PROXY_STFT_RESOLUTIONS, NoiseProfile, PerceptualDistance, Target,
                                 attack_start, noise_around)
from patchpilot.embed import DEFAULT_EMBEDDER, Embedder, get_embedder
from patchpilot.errors import PatchPilotWarning, SynthError, UsageError
from patchpilot.fx import EFFECT_KINDS, ChainSearch, FxChain
from patchpilot.fx.chain import EffectKind
from patchpilot.index.index import TRANSFORM_NAME, Candidate, PresetIndex
from patchpilot.index.store import StoredPreset
from patchpilot.proposal import ProposalNet, proposal_nets
from patchpilot.refine import (DISCRETE_DONORS, MIN_HOLD_SECONDS, Refiner, RefineOptions, RefineOutcome,
                               RefineProgress, StartPoint, fit_notes_for)
from patchpilot.synths import Preset, RenderPool, RenderRequest, get_engine
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, from_native_rate

#: Presets read from the user's own files that join the re-ranker's candidates whether or
#: not they are among the nearest of the whole index (their nearest by vector).
USER_CANDIDATES = 6
#: Of the extra candidates of synths that render fast (``min_rerank_candidates``), those
#: that join the re-ranker after a first hearing on a cheap proxy of the distance.
SHORTLIST = 16
#: Velocities tried for presets whose sound depends on velocity, among the
#: VELOCITY_SEARCH_CANDIDATES best candidates at the default velocity.
VELOCITY_CANDIDATES = (40, 70, DEFAULT_VELOCITY, 127)
VELOCITY_SEARCH_CANDIDATES = 6
#: Steps of the local velocity search that follows the grid (velocity-sensitive presets).
VELOCITY_REFINE_STEPS = (16, 8, 4)
#: A "held" render releases this long before its end (vita needs the note-off inside).
HELD_MARGIN_SECONDS = 0.01
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
#: The best confirmed candidates whose effect chain is searched (``fx/search.py``).
FX_CANDIDATES = 2
#: Inputs compared over less than this (one-shots: kicks, zaps, short plucks) also try the
#: note-offs of EARLY_NOTE_OFFS_SECONDS: the held-render comparison (``note_off``) skips
#: the first 50 ms and needs 40 ms of divergence, so it cannot see a release before ~0.09 s.
SHORT_WINDOW_SECONDS = 0.5
#: Early note-offs tried for short inputs (seconds; about 1.4x apart: a DX7 tine released
#: at 20 instead of 30 ms is as far from itself as another preset) ...
EARLY_NOTE_OFFS_SECONDS = (0.015, 0.02, 0.03, 0.04, 0.055, 0.075, 0.1)
#: ... then the best one times these factors.
EARLY_NOTE_OFF_STEPS = (0.85, 1.15)


@dataclass(frozen=True)
class RenderSettings:
    """How a match was rendered to compare it with the input (internal: never printed)."""

    note: int
    velocity: int
    note_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class Match:
    """A preset that sounds like the input; ``refinement`` is set for a refined preset."""

    rank: int
    preset_id: str
    preset: Preset
    distance: float
    retrieval_distance: float | None
    render: RenderSettings = field(repr=False)
    refinement: RefineOutcome | None = field(default=None, repr=False)
    #: The index entry the preset came from (None for a refined preset).
    stored: StoredPreset | None = field(default=None, repr=False)
    #: Effects after the synth that are part of the answer (empty: the dry preset).
    fx: FxChain = FxChain()

    @property
    def refined(self) -> bool:
        """This preset came out of a refinement that brought it closer (a match a refinement
        started from and could not improve carries its outcome but is not refined)."""
        return self.refinement is not None and self.refinement.improved


@dataclass(frozen=True)
class MatchResult:
    input_name: str
    matches: tuple[Match, ...]
    analysis: ClipAnalysis | None = field(default=None, repr=False)  # None for text queries
    #: The notes matched were picked from a song: what key they were is the song's melody.
    from_track: bool = False
    #: Ids of every preset the re-ranker heard (retrieval's recall is measured on these).
    considered: tuple[str, ...] = field(default=(), repr=False)

    @property
    def stem(self) -> str:
        """Base name of exported files."""
        return Path(self.input_name).stem or "input"


class Matcher:
    """Loads the embedder and synth pools once; serves many queries against one index."""

    def __init__(self, index: PresetIndex, *, embedder: str | Embedder = DEFAULT_EMBEDDER, workers: int = 2,
                 proposals: bool = False, fx: bool = True, fx_plugins: Sequence[EffectKind] = ()) -> None:
        """``proposals``: add the neural proposals (``proposal.py``) to the re-ranker's
        candidates. ``fx``: search an effect chain for the best answers (``fx/``);
        ``fx_plugins``: the user's VST3 effects it may use besides the built-in ones
        (``fx/plugin.py``)."""
        self.index = index
        self.use_proposals = proposals
        self.use_fx = fx
        self.fx_kinds = (*EFFECT_KINDS, *fx_plugins)
        self.embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder
        index.check_embedder(self.embedder.identity)
        self.workers = workers
        self._pools: dict[tuple[str, int], RenderPool] = {}
        self.distance = PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ)
        self._proxy = PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ, resolutions=PROXY_RESOLUTIONS,
                                         stft_resolutions=PROXY_STFT_RESOLUTIONS)

    def pool(self, synth: str, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> RenderPool:
        """The render pool of a synth at a rate (created on first use, one voice per thread)."""
        key = (synth, sample_rate)
        if key not in self._pools:
            self._pools[key] = RenderPool(get_engine(synth), self.workers, sample_rate)
        return self._pools[key]

    def refiner_for(self, analysis: ClipAnalysis, full_band: bool = False) -> Refiner:
        """The refinement for an input: at the analysis rate, or with ``full_band`` at the rate
        of the input's full-band copy where it has one (the loss then hears the top octave the
        analysis rate leaves out; ``RefineOptions.full_band``)."""
        rate = analysis.full_band.sample_rate if full_band and analysis.full_band else ANALYSIS_SAMPLE_RATE_HZ
        return Refiner(lambda synth: self.pool(synth, rate), PerceptualDistance(rate))

    def fresh_voices(self) -> None:
        """Renders of this query on voices that have played nothing yet: the same input gets
        the same answer whatever the process matched before (a pooled Vital voice keeps some
        state from one preset to the next)."""
        for pool in self._pools.values():
            pool.reset()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def __enter__(self) -> Matcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the pipeline -----------------------------------------------------------------
    def match_audio(self, audio: Audio, *, top_k: int = DEFAULT_TOP_K, synth: str | None = None,
                    candidates: int = DEFAULT_RERANK_CANDIDATES, analysis: ClipAnalysis | None = None,
                    full_band: Audio | None = None) -> MatchResult:
        """Match a clip; ``analysis`` gives its notes when they were chosen otherwise (a track).
        ``full_band``: the same clip at a higher rate (``io.load_clip``), kept in the analysis
        made here for ``RefineOptions.full_band`` (not with ``analysis``: a track's notes come
        from a mix or a stem)."""
        if synth is not None and synth not in self.index.manifest.synths:
            raise UsageError(f"the index at {self.index.path} holds no {synth} presets "
                             f"(it has: {', '.join(self.index.manifest.synths) or 'none'})")
        from_track = analysis is not None
        self.fresh_voices()
        if analysis is None:
            analysis = replace(analyse_clip(audio), full_band=full_band)
        note = analysis.best
        raw = self.embedder.features([note.samples])
        vector = self.index.transform.apply(raw)[0]
        found, more = self.candidates(vector, note, synth, max(candidates, top_k))
        stored = self.index.presets([c.row for c in found + more])
        signal, noise, target = self.target_for(analysis, note)
        pool: list[tuple[StoredPreset, Sequence[int], float | None]] = [
            (stored[c.row], c.notes, c.distance) for c in found if c.row in stored]
        pool += self.shortlist(signal, noise, [(stored[c.row], c.notes, c.distance) for c in more if c.row in stored])
        pool += self.proposals(vector, note, synth)
        scored, released = self.rerank(target, pool)
        confirmed = self.confirm(target, scored, max(top_k, CONFIRM_CANDIDATES),
                                 self.chain_search(signal, target, noise), released)
        matches = tuple(
            Match(rank, sp.preset_id, sp.preset, distance, retrieval, settings, stored=sp, fx=fx)
            for rank, (sp, distance, retrieval, settings, fx) in enumerate(confirmed[:top_k], start=1)
        )
        return MatchResult(audio.name, matches, analysis, from_track, tuple(sp.preset_id for sp, _, _ in pool))

    def candidates(self, vector: np.ndarray, note: Note, synth: str | None, count: int
                   ) -> tuple[list[Candidate], list[Candidate]]:
        """The presets the re-ranker hears, and more for its shortlist. The first are the
        ``count`` nearest the note's vector and the USER_CANDIDATES nearest of the presets
        read from the user's files on each synth (a user's own presets always get a
        hearing); the others, each synth's own nearest up to its ``min_rerank_candidates``
        (synths cheap to render) that are not among them."""
        found = self.index.search(vector, note.pitch.midi, synth=synth, k=count)
        rows = {c.row for c in found}

        def new(candidates: list[Candidate]) -> list[Candidate]:
            fresh = [c for c in candidates if c.row not in rows]
            rows.update(c.row for c in fresh)
            return fresh

        for name in self.index.user_synths:
            if synth in (None, name):
                found += new(self.index.search(vector, note.pitch.midi, synth=name, k=USER_CANDIDATES, user=True))
        more: list[Candidate] = []
        for name in self.index.manifest.synths:
            if synth not in (None, name):
                continue
            try:
                least = get_engine(name).min_rerank_candidates
            except SynthError:  # a plugin no longer installed: its presets are not rendered here
                continue
            if least:
                more += new(self.index.search(vector, note.pitch.midi, synth=name, k=least))
        return found, more

    def shortlist(self, signal: np.ndarray, noise: NoiseProfile,
                  candidates: Sequence[tuple[StoredPreset, Sequence[int], float | None]]
                  ) -> list[tuple[StoredPreset, Sequence[int], float | None]]:
        """The SHORTLIST candidates whose note, held through the input's window at the
        default velocity, comes closest to ``signal`` (the compared stretch) on a
        one-resolution proxy of the distance: a cheap first hearing for the extra candidates
        of synths that render fast."""
        if not candidates:
            return []
        target = self._proxy.prepare_target(signal, noise=noise)
        total = target.length / ANALYSIS_SAMPLE_RATE_HZ + RENDER_LEAD_SECONDS
        by_synth: dict[str, list[int]] = defaultdict(list)
        for position, (stored, _, _) in enumerate(candidates):
            by_synth[stored.preset.synth].append(position)
        scores = np.full(len(candidates), np.inf)
        for synth, positions in by_synth.items():
            renders = self.pool(synth).render([RenderRequest(candidates[p][0].preset, candidates[p][1][0],
                                                             DEFAULT_VELOCITY, total - HELD_MARGIN_SECONDS, total)
                                               for p in positions])
            scores[positions] = self._proxy.score(target, renders)
        return [candidates[i] for i in np.argsort(scores, kind="stable")[:SHORTLIST]]

    def proposals(self, vector: np.ndarray, note: Note, synth: str | None
                  ) -> list[tuple[StoredPreset, Sequence[int], float | None]]:
        """The proposal networks' presets for this note, as re-ranking candidates (played at
        the note's key; no retrieval distance)."""
        if not self.use_proposals:
            return []
        if not self._proposal_nets:
            warnings.warn(f"no proposal network fits the index at {self.index.path} (they are trained on the "
                          "shipped index; scripts/train_proposals.py trains them for another): matching without",
                          PatchPilotWarning, stacklevel=2)
            self.use_proposals = False
            return []
        key = int(np.clip(round(note.pitch.midi), 0, 127)) if note.pitch.midi is not None else 60
        out: list[tuple[StoredPreset, Sequence[int], float | None]] = []
        for name, net in self._proposal_nets.items():
            if synth is not None and name != synth:
                continue
            for number, preset in enumerate(net.propose(vector, key), start=1):
                out.append((StoredPreset(-number, f"{name}:proposed-{number}", preset, 0.0), (key,), None))
        return out

    @cached_property
    def _proposal_nets(self) -> dict[str, ProposalNet]:
        return proposal_nets(self.index.files / TRANSFORM_NAME, tuple(self.index.manifest.synths))

    def refine(self, result: MatchResult, options: RefineOptions = RefineOptions(),
               progress: RefineProgress | None = None, cancel: threading.Event | None = None) -> MatchResult:
        """The result with a refined preset ranked first where it sounds closer than the
        first match: CMA-ES started from the best matches, scored on up to four notes of
        the input. The other matches follow."""
        if not result.matches:
            return result
        if result.analysis is None:
            raise UsageError("refinement needs an audio input to optimise against (not --text)")
        self.fresh_voices()
        if options.full_band is True and result.analysis.full_band is None:
            warnings.warn("no full-band copy of the input (match it with full_band=True; songs, stems and "
                          "inputs without sound above 11 kHz have none): refining at the analysis rate",
                          PatchPilotWarning, stacklevel=2)
        refiner = self.refiner_for(result.analysis, options.full_band is not False)
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
            refined = self._final_check(result.analysis, origin, outcome, result.matches[0].distance)
            if refined is not None:
                others = tuple(replace(m, rank=rank) for rank, m in enumerate(result.matches, start=2))
                return replace(result, matches=(refined, *others))
            # closer by the refinement's loss, not on the final check: the start stays the answer
            outcome = replace(outcome, preset=origin.preset, distance_after=outcome.distance_before)
        # Nothing sounded closer than the first match: the matches keep their ranks, and the
        # one the search started from carries its outcome.
        return replace(result, matches=tuple(replace(m, refinement=outcome) if m is origin else m
                                             for m in result.matches))

    def _final_check(self, analysis: ClipAnalysis, origin: Match, outcome: RefineOutcome,
                     to_beat: float) -> Match | None:
        """The refined preset as a match, scored like every match (its file played fresh on
        the input's best note, through the effect chain found for it), or None when that
        distance is not below ``to_beat``."""
        preset = outcome.preset.with_values({}, name=f"{origin.preset.name} (refined)",
                                            origin=f"refined from {origin.preset_id}")
        # played as the search settled: the same key and velocity, the hold it found
        held = min(max(origin.render.note_seconds * outcome.hold_ratio, MIN_HOLD_SECONDS),
                   origin.render.total_seconds - 0.01)
        settings = replace(origin.render, note_seconds=held)
        note = analysis.best
        signal, noise, target = self.target_for(analysis, note)
        stored = StoredPreset(-1, f"{origin.preset_id}+refined", preset, None)
        [(_, distance, _, _, fx)] = self.confirm(target, [(stored, 0.0, origin.retrieval_distance, settings)], 1,
                                                 self.chain_search(signal, target, noise))
        if distance >= to_beat:
            return None
        return Match(1, stored.preset_id, preset, distance, origin.retrieval_distance, settings, outcome, fx=fx)

    def target_for(self, analysis: ClipAnalysis, note: Note) -> tuple[np.ndarray, NoiseProfile, Target]:
        """The compared stretch of ``note``, the recording's noise around it, and the two
        prepared as the target every candidate is scored against."""
        signal, noise = self.compared(analysis, note), self.noise_of(analysis, note)
        return signal, noise, self.distance.prepare_target(signal, noise=noise)

    @staticmethod
    def compared(analysis: ClipAnalysis, note: Note) -> np.ndarray:
        """The stretch of the input every candidate is compared with: the note's compare
        window and the quiet after it (``analysis.compared_stretch``), at the analysis rate."""
        return compared_stretch(analysis, note, ANALYSIS_SAMPLE_RATE_HZ)

    def chain_search(self, signal: np.ndarray, target: Target, noise: NoiseProfile) -> ChainSearch | None:
        """The effect-chain search against the compared stretch (None when effects are off)."""
        if not self.use_fx:
            return None
        return ChainSearch(self.distance, signal, target.length, self.fx_kinds, noise)

    @staticmethod
    def noise_of(analysis: ClipAnalysis, note: Note) -> NoiseProfile:
        """The recording's noise around the input note (``distance.noise_around``)."""
        return noise_around(analysis, note)

    def rerank(self, target: Target, candidates: Sequence[tuple[StoredPreset, Sequence[int], float | None]]
               ) -> tuple[list[tuple[StoredPreset, float, float | None, RenderSettings]], dict[str, RenderSettings]]:
        """Render each candidate like the input note and sort by perceptual distance.

        Stage 1 renders every candidate with the note held through the whole window, at each
        note and velocity worth trying; where the input falls away from that render is the
        input's note-off *for that preset*. Stage 2 renders the best setting again, released
        there, and scores the whole window. Returns the ranking and, by preset id, the
        released settings that lost to the held note (dry: a room's tail after an early
        note-off sounds like a longer note; ``confirm`` tries them with a tail effect).
        """
        sr = ANALYSIS_SAMPLE_RATE_HZ
        window = target.length / sr
        # Renders start at note-on; the input may start later (a slow attack hidden in noise),
        # so they run a little longer than the input to cover it after alignment.
        total = window + RENDER_LEAD_SECONDS
        held_seconds = total - HELD_MARGIN_SECONDS

        # Stage 1: held renders at the default velocity, at each note worth trying.
        held: dict[int, tuple[float, int, int, float, float]] = {}  # pos -> (partial, note, vel, off, full)

        def render_held(jobs: dict[str, list[tuple[int, int, int]]]) -> None:
            for synth, synth_jobs in jobs.items():
                renders = self.pool(synth).render(
                    [RenderRequest(candidates[p][0].preset, n, v, held_seconds, total) for p, n, v in synth_jobs])
                features = self.distance.prepare(target, renders)
                offs = self.distance.note_off(target, features)
                partial = self.distance.total(target, features, until=np.maximum(offs, PARTIAL_MIN_SECONDS))
                full = self.distance.total(target, features)
                for i, (position, play_note, velocity) in enumerate(synth_jobs):
                    shift = attack_start(renders[i], sr) / sr
                    entry = (float(partial[i]), play_note, velocity, float(offs[i]) + shift, float(full[i]))
                    if position not in held or entry[0] < held[position][0]:
                        held[position] = entry

        first: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for position, (stored, play_notes, _) in enumerate(candidates):
            first[stored.preset.synth] += [(position, n, DEFAULT_VELOCITY) for n in play_notes]
        render_held(first)

        # Velocity-sensitive presets among the most promising: a velocity grid, then a local
        # search around the best grid point.
        promising = sorted(held, key=lambda pos: held[pos][0])[:VELOCITY_SEARCH_CANDIDATES]
        sensitive = [pos for pos in promising
                     if get_engine(candidates[pos][0].preset.synth).velocity_sensitive(candidates[pos][0].preset)]
        steps: list[tuple[int, ...] | int] = [VELOCITY_CANDIDATES, *VELOCITY_REFINE_STEPS]
        for step in steps:
            jobs: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
            for pos in sensitive:
                _, play_note, velocity, _, _ = held[pos]
                tries = set(step) if isinstance(step, tuple) else {min(127, velocity + step), max(1, velocity - step)}
                jobs[candidates[pos][0].preset.synth] += [(pos, play_note, v) for v in sorted(tries - {velocity})]
            render_held(jobs)

        # Stage 2: release where the input did, for the candidates that explain the input
        # best up to their note-off (the others keep their held-note distance).
        final: dict[int, tuple[float, RenderSettings]] = {}
        releases: dict[str, list[tuple[int, RenderSettings]]] = defaultdict(list)
        finalists = set(sorted(held, key=lambda pos: held[pos][0])[:RELEASE_CANDIDATES])
        first_release: dict[int, RenderSettings] = {}  # each finalist's release at its note-off
        held_settings: dict[int, RenderSettings] = {}
        for position, (_, play_note, velocity, note_off, full) in held.items():
            settings = RenderSettings(play_note, velocity, held_seconds, total)
            final[position] = (full, settings)
            held_settings[position] = settings
            if position in finalists and note_off < window - RELEASE_MIN_GAP_SECONDS:
                released = RenderSettings(play_note, velocity, max(0.02, min(note_off, held_seconds)), total)
                releases[candidates[position][0].preset.synth].append((position, released))
                first_release[position] = released

        def render_released(jobs: dict[str, list[tuple[int, RenderSettings]]]) -> None:
            for synth, synth_jobs in jobs.items():
                renders = self.pool(synth).render(
                    [RenderRequest(candidates[p][0].preset, s.note, s.velocity, s.note_seconds, s.total_seconds)
                     for p, s in synth_jobs])
                for (position, settings), score in zip(synth_jobs, self.distance.score(target, renders)):
                    if score < final[position][0]:
                        final[position] = (float(score), settings)

        early = [off for off in EARLY_NOTE_OFFS_SECONDS if off < window]
        if window < SHORT_WINDOW_SECONDS and early:
            # A one-shot may be released before the held comparison can see it (its attack
            # is skipped): try early note-offs on a grid, then either side of the best.
            for position in finalists:
                _, play_note, velocity, _, _ = held[position]
                releases[candidates[position][0].preset.synth] += [
                    (position, RenderSettings(play_note, velocity, off, total)) for off in early]
            render_released(releases)
            releases = defaultdict(list)
            for position in finalists:
                best = final[position][1]
                if best.note_seconds in early:
                    releases[candidates[position][0].preset.synth] += [
                        (position, replace(best, note_seconds=best.note_seconds * factor))
                        for factor in EARLY_NOTE_OFF_STEPS]
        render_released(releases)
        ranked = sorted(final, key=lambda pos: final[pos][0])
        lost = {candidates[pos][0].preset_id: settings for pos, settings in first_release.items()
                if final[pos][1] == held_settings[pos]}
        return [(candidates[pos][0], final[pos][0], candidates[pos][2], final[pos][1]) for pos in ranked], lost

    def confirm(self, target: Target, scored: Sequence[tuple[StoredPreset, float, float | None, RenderSettings]],
                count: int, chains: ChainSearch | None = None, released: dict[str, RenderSettings] | None = None
                ) -> list[tuple[StoredPreset, float, float | None, RenderSettings, FxChain]]:
        """Score the ``count`` best candidates again as their exported files play on a fresh
        synth instance, and rank them by that. The pooled renders of the re-ranker reuse
        synth instances whose effect LFOs run on and whose controls glide from the previous
        preset; the user's first note after loading a preset does neither. With ``chains``,
        the FX_CANDIDATES best get the effect chain that brings them closest (the distance
        is then that of the preset through its chain); one held where the re-ranker also
        tried a release (``released``) is tried released too, with a tail effect (a note
        released early in a room), and keeps what comes closer."""
        head = list(scored[:count])
        rest = [(*item, FxChain()) for item in scored[count:]]
        if not head:
            return rest
        sr = ANALYSIS_SAMPLE_RATE_HZ

        def play(_voice: object, item: tuple[StoredPreset, float, float | None, RenderSettings]) -> np.ndarray:
            stored, _, _, settings = item
            return get_engine(stored.preset.synth).render(stored.preset, settings.note, settings.velocity,
                                                          settings.note_seconds, settings.total_seconds,
                                                          NATIVE_SAMPLE_RATE_HZ)

        # the pool's threads (one synth per thread is not needed: every render is fresh);
        # at the native rate, which the effect chain runs at
        renders = list(self.pool(head[0][0].preset.synth).map(play, head))
        distances = self.distance.score(target, [from_native_rate(r, sr, s.total_seconds)
                                                 for r, (_, _, _, s) in zip(renders, head)])
        order = np.argsort(distances, kind="stable")
        confirmed = []
        for rank, i in enumerate(order):
            stored, _, retrieval, settings = head[i]
            distance, chain = float(distances[i]), FxChain()
            if chains is not None and rank < FX_CANDIDATES:
                chain, distance = chains.search(target, renders[i], distance)
                early = (released or {}).get(stored.preset_id)
                if early is not None:
                    [render] = self.pool(stored.preset.synth).map(play, [(stored, 0.0, retrieval, early)])
                    dry = float(self.distance.score(target, [from_native_rate(render, sr, early.total_seconds)])[0])
                    tail, with_tail = chains.search(target, render, dry, tails_only=True)
                    if with_tail < distance:
                        settings, chain, distance = early, tail, with_tail
            confirmed.append((stored, distance, retrieval, settings, chain))
        confirmed.sort(key=lambda item: item[1])
        return confirmed + rest

