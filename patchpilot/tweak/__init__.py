"""``tweak``: a preset moved the way words ask ("brighter, shorter attack, less reverb"),
measured on renders (``measure.py``), found by a local search on the synth's own parameters
(``search.py``)."""

from patchpilot.tweak.search import TweakedResult, TweakResult, Tweaker, WordMove, as_result, word_moves

__all__ = ["TweakResult", "TweakedResult", "Tweaker", "WordMove", "as_result", "word_moves"]
