"""Text queries: ``match --text "gritty bass"`` gives presets and their parameters.

Two paths, one result type (the same table, JSON and export as an audio match):
* the built-in path (any index with descriptors, no model): the words are parsed into
  categories and descriptor directions and presets are scored (``describe/query.py``);
* CLAP (an index built with ``--embedder clap``): the text is embedded in CLAP's
  audio-text space and the index returns the presets nearest to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from patchpilot.constants import DEFAULT_TOP_K, DEFAULT_VELOCITY
from patchpilot.describe.query import DescriptorTable, Evidence, TextQuery, one_per_family, parse_query
from patchpilot.embed.clap import ClapEmbedder
from patchpilot.errors import UsageError
from patchpilot.export import EXPORT_NOTE_SECONDS, EXPORT_RENDER_SECONDS
from patchpilot.index.index import PresetIndex
from patchpilot.library.bank import slug
from patchpilot.matching.results import Match, MatchResult, RenderSettings

#: Nearest presets fetched from a CLAP index per wanted match (room for one per family).
CLAP_CANDIDATES_PER_MATCH = 6


@dataclass(frozen=True)
class TextMatchResult(MatchResult):
    #: How the built-in path read the text (None on the CLAP path, which reads it whole).
    query: TextQuery | None = None
    #: What each answer (by rank) matched on: the asked descriptors' values and percentiles.
    evidence: dict[int, tuple[Evidence, ...]] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return slug(self.input_name)[:48] or "text"


def _settings(note: int) -> RenderSettings:
    """How a text match is auditioned and exported: one note, the export's length."""
    return RenderSettings(note, DEFAULT_VELOCITY, EXPORT_NOTE_SECONDS, EXPORT_RENDER_SECONDS)


class TextMatcher:
    """Serves text queries against one index; the descriptor table loads on first use."""

    def __init__(self, index: PresetIndex, *, clap: ClapEmbedder | None = None) -> None:
        self.index = index
        self.clap = clap

    @cached_property
    def descriptors(self) -> DescriptorTable:
        return DescriptorTable.load(self.index.store, self.index.path)

    def match_text(self, text: str, *, top_k: int = DEFAULT_TOP_K, synth: str | None = None) -> TextMatchResult:
        if not text.strip():
            raise UsageError("--text is empty; describe a sound, e.g. --text \"dark evolving pad\"")
        if synth is not None and synth not in self.index.manifest.synths:
            raise UsageError(f"the index at {self.index.path} holds no {synth} presets")
        if self.clap is not None:
            return self._match_clap(text, top_k, synth)
        return self._match_descriptors(text, top_k, synth)

    def _match_descriptors(self, text: str, top_k: int, synth: str | None) -> TextMatchResult:
        query = parse_query(text)
        hits = self.descriptors.search(query, top_k=top_k, synth=synth)
        stored = self.index.presets([h.row for h in hits])
        matches = tuple(
            Match(rank, hit.preset_id, stored[hit.row].preset, hit.distance, hit.distance,
                  _settings(self.descriptors.audition_note(hit.row, stored[hit.row].preset.category)),
                  stored=stored[hit.row])
            for rank, hit in enumerate(hits, start=1)
        )
        return TextMatchResult(text, matches, query=query,
                               evidence={rank: hit.evidence for rank, hit in enumerate(hits, start=1)})

    def _match_clap(self, text: str, top_k: int, synth: str | None) -> TextMatchResult:
        vector = self.index.transform.apply(self.clap.embed_text([text]))[0]
        found = self.index.search(vector, None, synth=synth, k=top_k * CLAP_CANDIDATES_PER_MATCH)
        ids = self.index.store.preset_ids([c.row for c in found])
        picked = [found[i] for i in one_per_family([ids[c.row] for c in found], top_k)]
        stored = self.index.presets([c.row for c in picked])
        matches = tuple(
            Match(rank, ids[c.row], stored[c.row].preset, c.distance, c.distance, _settings(c.notes[0]),
                  stored=stored[c.row])
            for rank, c in enumerate(picked, start=1)
        )
        return TextMatchResult(text, matches)
