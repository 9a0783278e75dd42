"""The matcher: one index, one embedder and the synths' render pools, serving many queries.
A query is analysed, its contenders retrieved (``retrieval.py``) and re-ranked
(``rerank.py``); refinement of a result is ``refine.refine_result``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from patchpilot.audio.analysis import ClipAnalysis, Note, analyse_clip, compare_window, compared_stretch
from patchpilot.audio.io import Audio
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_RERANK_CANDIDATES, DEFAULT_TOP_K
from patchpilot.distance import NoiseProfile, PerceptualDistance, Target, attack_start, noise_around
from patchpilot.embed import DEFAULT_EMBEDDER, Embedder, get_embedder
from patchpilot.errors import PatchPilotWarning, UsageError
from patchpilot.fx import EFFECT_KINDS, ChainSearch
from patchpilot.fx.chain import EffectKind
from patchpilot.fx.search import SearchedAt
from patchpilot.index.index import PresetIndex
from patchpilot.matching.renders import QueryRenders
from patchpilot.matching.rerank import CONFIRM_CANDIDATES, Reranker
from patchpilot.matching.results import Match, MatchResult
from patchpilot.matching.retrieval import Retrieval
from patchpilot.synths import RenderPool, get_engine


@dataclass(frozen=True)
class Judge:
    """What the best answers are confirmed by: the distance at the input's heard rate, the
    input prepared for it, and the effect-chain search (None when effects are off)."""

    distance: PerceptualDistance
    target: Target
    chains: ChainSearch | None


class Matcher:
    """Loads the embedder and synth pools once; serves many queries against one index."""

    def __init__(self, index: PresetIndex, *, embedder: str | Embedder = DEFAULT_EMBEDDER, workers: int = 2,
                 proposals: bool = False, fx: bool = True, fx_plugins: Sequence[EffectKind] = ()) -> None:
        """``proposals``: add the neural proposals (``proposal.py``) to the re-ranker's
        candidates. ``fx``: search an effect chain for the best answers (``fx/``);
        ``fx_plugins``: the user's VST3 effects it may use besides the built-in ones
        (``fx/plugin.py``)."""
        self.index = index
        self.use_fx = fx
        self.fx_kinds = (*EFFECT_KINDS, *fx_plugins)
        self.embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder
        index.check_embedder(self.embedder.identity)
        self.workers = workers
        self._pools: dict[tuple[str, int], RenderPool] = {}
        self.distance = PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ)
        self._distances = {ANALYSIS_SAMPLE_RATE_HZ: self.distance}
        self.renders = QueryRenders(self.pool)
        self.retrieval = Retrieval(index, self.embedder, self.renders, proposals=proposals)
        self.reranker = Reranker(self.distance, self.renders)

    def pool(self, synth: str, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> RenderPool:
        """The synth's own render pool at a rate, created on first use: threads with a voice
        each for the built-in synths, worker processes for a plugin (one that crashes costs
        the preset it played, not the process)."""
        key = (synth, sample_rate)
        if key not in self._pools:
            self._pools[key] = get_engine(synth).render_pool(self.workers, sample_rate)
        return self._pools[key]

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
        signal, noise, target = self.target_for(analysis, note)
        self.renders.clear()
        heard = self.retrieval.contenders(note, synth, max(candidates, top_k), signal, noise)
        scored, released = self.reranker.rerank(target, heard, self.note_off(signal, note))
        scored = [r for r in scored if not self.renders.crashed_preset(r.stored.preset)]
        judge = self.judge(analysis, note, (signal, noise, target))
        confirmed = self.reranker.confirm(judge.target, scored, max(top_k, CONFIRM_CANDIDATES), judge.chains,
                                          released, judge.distance)
        # a preset that crashed only when played fresh: confirmation scored it as silence
        confirmed = [r for r in confirmed if not self.renders.crashed_preset(r.stored.preset)]
        for name, presets in self.renders.crashed.items():
            if presets:
                warnings.warn(f"{name} crashed while playing {len(presets)} preset(s), left out of the answers: "
                              f"{', '.join(sorted(set(presets.values())))}", PatchPilotWarning, stacklevel=2)
        matches = tuple(Match.of(rank, ranked) for rank, ranked in enumerate(confirmed[:top_k], start=1))
        return MatchResult(audio.name, matches, analysis, from_track, tuple(c.stored.preset_id for c in heard))

    @staticmethod
    def heard_rate(analysis: ClipAnalysis) -> int:
        """The rate the answers are confirmed, labelled and refined at: that of the input's
        full-band copy where it has one (the top octave the analysis rate leaves out is part
        of what the user hears, and of what MR-STFT scores), else the analysis rate."""
        return analysis.full_band.sample_rate if analysis.full_band is not None else ANALYSIS_SAMPLE_RATE_HZ

    def distance_at(self, sample_rate: int) -> PerceptualDistance:
        """The perceptual distance at a rate (one per rate, made on first use)."""
        if sample_rate not in self._distances:
            self._distances[sample_rate] = PerceptualDistance(sample_rate)
        return self._distances[sample_rate]

    def target_for(self, analysis: ClipAnalysis, note: Note, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ
                   ) -> tuple[np.ndarray, NoiseProfile, Target]:
        """The compared stretch of ``note``, the recording's noise around it, and the two
        prepared as the target every candidate is scored against, at ``sample_rate``."""
        signal, noise = self.compared(analysis, note, sample_rate), self.noise_of(analysis, note, sample_rate)
        return signal, noise, self.distance_at(sample_rate).prepare_target(signal, noise=noise)

    @staticmethod
    def note_off(signal: np.ndarray, note: Note) -> float:
        """The input's note-off as the analysis read it, seconds after the attack of the
        compared stretch (where the distance lines candidates up)."""
        held, _ = compare_window(note)
        return max(0.02, held - attack_start(signal, ANALYSIS_SAMPLE_RATE_HZ) / ANALYSIS_SAMPLE_RATE_HZ)

    @staticmethod
    def compared(analysis: ClipAnalysis, note: Note, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> np.ndarray:
        """The stretch of the input every candidate is compared with: the note's compare
        window and the quiet after it (``analysis.compared_stretch``), at ``sample_rate``."""
        return compared_stretch(analysis, note, sample_rate)

    def judge(self, analysis: ClipAnalysis, note: Note,
              at_analysis_rate: tuple[np.ndarray, NoiseProfile, Target] | None = None) -> Judge:
        """How the best answers to ``note`` are confirmed: at ``heard_rate``, with the effect
        chains searched at the analysis rate (``at_analysis_rate``: ``target_for`` made
        there, when the caller has it) and judged at the heard one."""
        signal, noise, target = at_analysis_rate or self.target_for(analysis, note)
        rate = self.heard_rate(analysis)
        if rate == ANALYSIS_SAMPLE_RATE_HZ:
            return Judge(self.distance, target, self.chain_search(signal, target, noise))
        searched_at = SearchedAt(signal, ANALYSIS_SAMPLE_RATE_HZ, target.length, noise)
        signal, noise, target = self.target_for(analysis, note, rate)
        return Judge(self.distance_at(rate), target, self.chain_search(signal, target, noise, rate, searched_at))

    def chain_search(self, signal: np.ndarray, target: Target, noise: NoiseProfile,
                     sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, searched_at: SearchedAt | None = None
                     ) -> ChainSearch | None:
        """The effect-chain search against the compared stretch (None when effects are off);
        ``sample_rate``: the rate the three were made at (``target_for``); ``searched_at``:
        the input its settings are tried against, where not the same."""
        if not self.use_fx:
            return None
        return ChainSearch(self.distance_at(sample_rate), signal, target.length, self.fx_kinds, noise, searched_at)

    @staticmethod
    def noise_of(analysis: ClipAnalysis, note: Note, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> NoiseProfile:
        """The recording's noise around the input note (``distance.noise_around``)."""
        return noise_around(analysis, note, sample_rate)
