"""Retrieval: the presets the re-ranker hears for a note. The index's nearest by the note's
vector, the nearest of the user's own presets, a shortlist of more candidates of synths
cheap to render (heard first on a proxy of the distance), and the proposal networks' presets."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from patchpilot.audio.analysis import Note
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_VELOCITY, RENDER_LEAD_SECONDS
from patchpilot.distance import PROXY_RESOLUTIONS, PROXY_STFT_RESOLUTIONS, NoiseProfile, PerceptualDistance
from patchpilot.embed import Embedder
from patchpilot.embed.sketch import sketch_db, windows_held
from patchpilot.errors import PatchPilotWarning, SynthError
from patchpilot.index.index import TRANSFORM_NAME, Candidate, PresetIndex
from patchpilot.index.store import StoredPreset
from patchpilot.matching.renders import HELD_MARGIN_SECONDS, QueryRenders
from patchpilot.matching.results import Contender
from patchpilot.proposal import ProposalNet, proposal_nets
from patchpilot.synths import RenderRequest, get_engine

#: Presets read from the user's own files that join the re-ranker's candidates whether or
#: not they are among the nearest of the whole index (their nearest by vector).
USER_CANDIDATES = 6
#: Of the extra candidates of synths that render fast (``min_rerank_candidates``), those
#: that join the re-ranker after a first hearing on a cheap proxy of the distance.
SHORTLIST = 16
#: Presets of each synth whose stored sketch is nearest the note's (``index/sketches.py``,
#: every preset scored) that join the re-ranker besides the nearest by vector (8: as good
#: as 16 on the General MIDI notes, at half the extra renders; docs/BENCHMARKS.md).
SKETCH_CANDIDATES = 8

class Retrieval:
    """Finds the contenders of a note in one index; renders through ``renders``."""

    def __init__(self, index: PresetIndex, embedder: Embedder, renders: QueryRenders, *,
                 proposals: bool = False) -> None:
        self.index = index
        self.embedder = embedder
        self.renders = renders
        self.use_proposals = proposals
        self._proxy = PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ, resolutions=PROXY_RESOLUTIONS,
                                         stft_resolutions=PROXY_STFT_RESOLUTIONS)

    def vector(self, note: Note) -> np.ndarray:
        """The note in the index's space."""
        return self.index.transform.apply(self.embedder.features([note.samples]))[0]

    def contenders(self, note: Note, synth: str | None, count: int, signal: np.ndarray,
                   noise: NoiseProfile) -> list[Contender]:
        """Everything the re-ranker hears for ``note`` (compared stretch ``signal``): the
        nearest by vector and by sketch, the user's nearest, the shortlist, the proposals."""
        vector = self.vector(note)
        found, more = self.candidates(vector, note, synth, count)
        stored = self.index.presets([c.row for c in found + more])

        def contender(c: Candidate) -> Contender:
            return Contender(stored[c.row], c.notes, c.distance)

        heard = [contender(c) for c in found if c.row in stored]
        heard += self.shortlist(signal, noise, [contender(c) for c in more if c.row in stored])
        return heard + self.proposals(vector, note, synth)

    def candidates(self, vector: np.ndarray, note: Note, synth: str | None, count: int
                   ) -> tuple[list[Candidate], list[Candidate]]:
        """The presets the re-ranker hears, and more for its shortlist. The first are the
        ``count`` nearest the note's vector, the USER_CANDIDATES nearest of the presets read
        from the user's files on each synth (a user's own presets always get a hearing) and
        each synth's SKETCH_CANDIDATES nearest by sketch (every preset scored); the others,
        for synths cheap to render, the next ``min_rerank_candidates`` nearest by sketch and
        as many nearest by vector, none already found."""
        found = self.index.search(vector, note.pitch.midi, synth=synth, k=count)
        rows = {c.row for c in found}

        def new(candidates: list[Candidate]) -> list[Candidate]:
            fresh = [c for c in candidates if c.row not in rows]
            rows.update(c.row for c in fresh)
            return fresh

        for name in self.index.user_synths:
            if synth in (None, name):
                found += new(self.index.search(vector, note.pitch.midi, synth=name, k=USER_CANDIDATES, user=True))
        query = sketch_db(note.samples, note.sample_rate) if self.index.sketches is not None else None
        more: list[Candidate] = []
        for name in self.index.manifest.synths:
            if synth not in (None, name):
                continue
            try:
                least = get_engine(name).min_rerank_candidates
            except SynthError:  # a plugin no longer installed: its presets are not rendered here
                continue
            if query is not None:
                nearest = self.index.search_sketches(vector, query, note.pitch.midi, synth=name,
                                                     k=SKETCH_CANDIDATES + least, exclude=rows,
                                                     windows=windows_held(note.release_at))
                found += new(nearest[:SKETCH_CANDIDATES])
                more += new(nearest[SKETCH_CANDIDATES:])
            if least:
                more += new(self.index.search(vector, note.pitch.midi, synth=name, k=least))
        return found, more

    def shortlist(self, signal: np.ndarray, noise: NoiseProfile, candidates: Sequence[Contender]) -> list[Contender]:
        """The SHORTLIST candidates whose note, held through the input's window at the
        default velocity, comes closest to ``signal`` (the compared stretch) on a
        one-resolution proxy of the distance: a cheap first hearing for the extra candidates
        of synths that render fast."""
        if not candidates:
            return []
        target = self._proxy.prepare_target(signal, noise=noise)
        total = target.length / ANALYSIS_SAMPLE_RATE_HZ + RENDER_LEAD_SECONDS
        renders = self.renders.render([RenderRequest(c.stored.preset, c.notes[0], DEFAULT_VELOCITY,
                                                     total - HELD_MARGIN_SECONDS, total) for c in candidates])
        scores = self._proxy.score(target, renders)
        return [candidates[i] for i in np.argsort(scores, kind="stable")[:SHORTLIST]]

    def proposals(self, vector: np.ndarray, note: Note, synth: str | None) -> list[Contender]:
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
        out: list[Contender] = []
        for name, net in self._proposal_nets.items():
            if synth is not None and name != synth:
                continue
            for number, preset in enumerate(net.propose(vector, key), start=1):
                out.append(Contender(StoredPreset(-number, f"{name}:proposed-{number}", preset, 0.0), (key,), None))
        return out

    @cached_property
    def _proposal_nets(self) -> dict[str, ProposalNet]:
        return proposal_nets(self.index.files / TRANSFORM_NAME, tuple(self.index.manifest.synths))
