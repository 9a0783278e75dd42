"""How far to trust a match: a label calibrated on the benchmark's distances.

The thresholds come from ``python -m scripts.bench_match --only ood --only calibrate`` (see
docs/BENCHMARKS.md, "Confidence labels"): the re-ranker's distance of recovered presets, and
of answers to real-instrument notes and held synthetic tones whose MSS against the input
was measured.

* ``close``: as close as the same preset played at another note and velocity usually is,
  and below every benchmark answer that was not close (MSS over 5 dB, or further than the
  synth's init patch): the answer is the sound, or a sibling of it.
* ``similar``: its MSS is well under a random preset's (on the benchmark's General MIDI notes
  3.8 dB on average, 0.42 of the init patch's); usually the right family, but a held tone
  the library lacks (a narrow pulse, a supersaw) can be similar and still no nearer than the
  init patch.
* ``rough``: its MSS is typically within a quarter of a random preset's; a starting point only.
"""

from __future__ import annotations

#: Largest distance labelled ``close`` and ``similar``.
CLOSE_MAX_DISTANCE = 0.55
SIMILAR_MAX_DISTANCE = 2.12

LABELS = ("close", "similar", "rough")


def confidence_label(distance: float) -> str:
    """``close``, ``similar`` or ``rough`` for a re-ranker distance."""
    if distance <= CLOSE_MAX_DISTANCE:
        return "close"
    if distance <= SIMILAR_MAX_DISTANCE:
        return "similar"
    return "rough"
