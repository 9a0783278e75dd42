"""How far to trust a match: a label calibrated on the benchmark's distances.

The thresholds come from ``scripts/bench_match.py --only ood --only calibrate`` (see
docs/BENCHMARKS.md, "Confidence labels"): the re-ranker's distance of recovered presets, and
of answers to real-instrument notes whose MSS against the note was measured.

* ``close``: as close as the same preset played at another note and velocity usually is;
  the answer is the sound, or a sibling of it.
* ``similar``: clearly nearer the input than the synth's init patch; the right family.
* ``rough``: its MSS is typically within a quarter of a random preset's; a starting point only.
"""

from __future__ import annotations

#: Largest distance labelled ``close`` and ``similar``.
CLOSE_MAX_DISTANCE = 0.89
SIMILAR_MAX_DISTANCE = 2.82

LABELS = ("close", "similar", "rough")


def confidence_label(distance: float) -> str:
    """``close``, ``similar`` or ``rough`` for a re-ranker distance."""
    if distance <= CLOSE_MAX_DISTANCE:
        return "close"
    if distance <= SIMILAR_MAX_DISTANCE:
        return "similar"
    return "rough"
