"""What matching produces, as named records: the presets heard, how each was scored and
played, and the answers (``Match``, ``MatchResult``) every verb, export and the page read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from patchpilot.audio.analysis import ClipAnalysis
from patchpilot.fx import FxChain
from patchpilot.index.store import StoredPreset
from patchpilot.synths import Preset

if TYPE_CHECKING:  # refinement sits above matching: its outcome is only named here
    from patchpilot.refine import RefineOutcome


@dataclass(frozen=True)
class RenderSettings:
    """How a match was rendered to compare it with the input (internal: never printed)."""

    note: int
    velocity: int
    note_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class Contender:
    """A preset the re-ranker hears: its index entry, the notes worth playing it at, and its
    retrieval distance (None for a proposal network's preset)."""

    stored: StoredPreset
    notes: Sequence[int]
    retrieval: float | None


@dataclass(frozen=True)
class Ranked:
    """A contender as the re-ranker scored it: its distance, how it was played for that, and
    the effect chain confirmation found for it (empty: the dry preset)."""

    stored: StoredPreset
    distance: float
    retrieval: float | None
    settings: RenderSettings
    fx: FxChain = FxChain()


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

    @classmethod
    def of(cls, rank: int, ranked: Ranked) -> Match:
        """The answer at ``rank`` made of a confirmed re-ranking."""
        return cls(rank, ranked.stored.preset_id, ranked.stored.preset, ranked.distance, ranked.retrieval,
                   ranked.settings, stored=ranked.stored, fx=ranked.fx)


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
