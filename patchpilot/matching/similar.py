"""Presets like a given one: the preset played at a note and velocity, and that sound matched
as any input is (retrieval, re-ranking by the same distance, confirmation as exported), the
preset itself left out."""

from __future__ import annotations

from dataclasses import dataclass, replace

from patchpilot.audio.io import Audio, full_band_copy
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_RERANK_CANDIDATES, DEFAULT_TOP_K
from patchpilot.errors import InputAudioError, PresetError
from patchpilot.matching.matcher import Matcher
from patchpilot.matching.results import MatchResult, RenderSettings
from patchpilot.synths import Preset, RenderRequest, play_fresh_native
from patchpilot.synths.base import NATIVE_SAMPLE_RATE_HZ, from_native_rate

#: How the reference is played unless the user says otherwise: held this long, in a window
#: this long (room for its release).
SIMILAR_NOTE_SECONDS = 1.5
SIMILAR_TOTAL_SECONDS = 3.0


@dataclass(frozen=True)
class SimilarResult(MatchResult):
    """Presets like ``reference`` (``reference_id``: its index id, None for a file), each
    ranked by how far it sounds from the reference played as ``played`` says."""

    reference: Preset | None = None
    reference_id: str | None = None
    played: RenderSettings | None = None


def similar_presets(matcher: Matcher, preset: Preset, *, reference_id: str | None = None, note: int = 60,
                    velocity: int = 100, note_seconds: float = SIMILAR_NOTE_SECONDS,
                    total_seconds: float = SIMILAR_TOTAL_SECONDS, top_k: int = DEFAULT_TOP_K,
                    synth: str | None = None, candidates: int = DEFAULT_RERANK_CANDIDATES) -> SimilarResult:
    """The ``top_k`` presets of the matcher's index that sound closest to ``preset`` played at
    ``note`` and ``velocity`` (the way its exported file plays, on a fresh synth); the preset
    itself (its index id, or the same values) is not among them."""
    played = RenderSettings(note, velocity, note_seconds, total_seconds)
    request = RenderRequest(preset, note, velocity, note_seconds, total_seconds)
    [native] = matcher.pool(preset.synth).map(play_fresh_native, [request])
    samples = from_native_rate(native, ANALYSIS_SAMPLE_RATE_HZ, total_seconds)
    audio = Audio(samples, ANALYSIS_SAMPLE_RATE_HZ, preset.name)
    try:  # with its full-band copy, as the same sound from a file is matched
        result = matcher.match_audio(audio, top_k=top_k + 1, synth=synth, candidates=max(candidates, top_k + 1),
                                     full_band=full_band_copy(native, NATIVE_SAMPLE_RATE_HZ, preset.name))
    except InputAudioError:
        raise PresetError(f"{preset.name} plays nothing to compare at note {note}, velocity {velocity} "
                          "(try another --note or --velocity)") from None
    itself = preset.fingerprint()
    others = [m for m in result.matches
              if m.preset_id != reference_id and m.preset.fingerprint() != itself][:top_k]
    matches = tuple(replace(m, rank=rank) for rank, m in enumerate(others, start=1))
    return SimilarResult(preset.name, matches, result.analysis, considered=result.considered, reference=preset,
                         reference_id=reference_id, played=played)
