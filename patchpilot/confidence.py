"""How far to trust a match: a label calibrated on the benchmark's distances.

The thresholds come from ``scripts/bench_match.py --only calibrate`` (see
docs/BENCHMARKS.md, "Confidence labels"): the re-ranker's distance of matches whose
independent MR-STFT distance to the input was measured.

* ``close``: as close as the same preset played at another note and velocity usually is;
  the answer is the sound, or a sibling of it.
* ``similar``: clearly nearer the input than the synth's init patch; the right family.
* ``rough``: not much nearer than a preset drawn at random; a starting point only.
"""

from __future__ import annotations

#: Largest distance labelled ``close`` and ``similar``.
CLOSE_MAX_DISTANCE = 0.45
SIMILAR_MAX_DISTANCE = 1.5

LABELS = ("close", "similar", "rough")


def confidence_label(distance: float) -> str:
    """``close``, ``similar`` or ``rough`` for a re-ranker distance."""
    if distance <= CLOSE_MAX_DISTANCE:
        return "close"
    if distance <= SIMILAR_MAX_DISTANCE:
        return "similar"
    return "rough"
