"""Matching: from an input note to ranked presets.

1. ``analyse_clip`` picks the cleanest note and estimates its pitch and note-off.
2. Retrieval (``retrieval.py``): the embedder describes the note; the index returns
   candidates interpolated to its pitch, each with the note to play it at.
3. Re-ranking (``rerank.py``) renders every candidate at that note for the input's length
   (trying a few velocities when the preset responds to velocity), sorts by perceptual
   distance and confirms the best on what the user will hear.
``matcher.py`` runs the three; ``results.py`` holds what they produce; ``text.py`` answers a
description in words instead of a sound.
"""

from patchpilot.matching.matcher import Matcher
from patchpilot.matching.results import Contender, Match, MatchResult, Ranked, RenderSettings

__all__ = ["Contender", "Match", "MatchResult", "Matcher", "Ranked", "RenderSettings"]
