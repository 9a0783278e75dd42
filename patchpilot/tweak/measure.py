"""What ``tweak`` measures on a note: the sound descriptors of ``audio/descriptors.py`` plus two
of the note's release (which the index does not store), each with the step a listener notices.

``release``  log10 seconds from the note-off until the level is 30 dB below its level there
``space``    level (dB) of the 0.1-0.6 s after the note-off against the last 0.3 s before it:
             a reverb's or a delay's tail, and a long release, raise it
A note that died before its note-off (a pluck, under DEAD_DB re its peak) has neither: both
read at their floors.
"""

from __future__ import annotations

import numpy as np

from patchpilot.audio.descriptors import DESCRIBE_NOTE_SECONDS, DESCRIPTORS, describe
from patchpilot.audio.dsp import EPS

#: Everything ``tweak`` can move, in this order.
TWEAK_DESCRIPTORS = (*DESCRIPTORS, "release", "space")
#: How a note is played to be measured: held as the index's descriptors are, then a tail.
MEASURE_NOTE_SECONDS = DESCRIBE_NOTE_SECONDS
MEASURE_TOTAL_SECONDS = DESCRIBE_NOTE_SECONDS + 1.2
#: The change of each descriptor a listener notices (its unit: see ``audio/descriptors.py``):
#: a sixth of an octave of brightness, attack and release times x1.4, 3 dB of level ratios.
STEPS = {
    "brightness": 0.15, "attack": 0.15, "sustain": 3.0, "noisiness": 0.1, "grit": 0.3, "register": 1.0,
    "movement": 0.1, "width": 3.0, "inharmonicity": 3.0, "hollowness": 3.0, "release": 0.15, "space": 3.0,
}
#: The lowest ``space`` reads (dB): no tail at all.
SPACE_FLOOR_DB = -60.0
#: The ends of what can be measured, by (descriptor, way). Down: an attack within one analysis
#: frame of the descriptors (256 samples at 22.05 kHz), a release within one 10 ms frame (log10
#: s), a mono note's width, no tail. Up: an attack or a release as long as the render shows
#: them, a sustain at the peak.
LIMITS = {("attack", -1): float(np.log10(256 / 22050)) + 0.01, ("release", -1): float(np.log10(0.01)) + 0.01,
          ("width", -1): -60.0, ("space", -1): SPACE_FLOOR_DB,
          ("attack", 1): float(np.log10(DESCRIBE_NOTE_SECONDS)) - 0.05,
          ("release", 1): float(np.log10(MEASURE_TOTAL_SECONDS - MEASURE_NOTE_SECONDS)) - 0.02,
          ("sustain", 1): -0.1}
#: Below this many dB under the held level, the release is over.
RELEASE_DROP_DB = 30.0
#: A note this far under its peak before its note-off has died: it has no release.
DEAD_DB = -60.0
_FRAME_SECONDS = 0.01


def measure(stereo: np.ndarray, sample_rate: int) -> np.ndarray:
    """TWEAK_DESCRIPTORS of one note played as MEASURE_* say (``(2, N)`` or mono); NaN when
    silent. Every level is relative to the note's peak: none depends on how loud it is."""
    audio = np.asarray(stereo, dtype=np.float32)
    described = describe(audio, sample_rate)
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    frame = max(1, int(_FRAME_SECONDS * sample_rate))
    frames = mono[: mono.size // frame * frame].reshape(-1, frame).astype(np.float64)
    power = (frames ** 2).mean(axis=1)
    if not np.isfinite(described).all() or power.size == 0 or power.max() <= EPS:
        return np.full(len(TWEAK_DESCRIPTORS), np.nan, np.float32)
    level_db = 10 * np.log10(power / power.max() + 1e-12)  # dB re the peak
    times = np.arange(power.size) * _FRAME_SECONDS
    off = MEASURE_NOTE_SECONDS
    before = power[(times >= off - 0.3) & (times < off)]
    held_db = 10 * np.log10(before.mean() / power.max() + 1e-12) if before.size else -120.0
    after = times >= off
    if held_db < DEAD_DB:  # the note died before its note-off (a pluck): nothing to release
        release, space = LIMITS[("release", -1)] - 0.01, SPACE_FLOOR_DB
    else:
        below = np.flatnonzero(after & (level_db < held_db - RELEASE_DROP_DB))
        end = times[below[0]] if below.size else times[-1] + _FRAME_SECONDS
        release = float(np.log10(max(end - off, 0.005)))
        tail = level_db[(times >= off + 0.1) & (times < off + 0.6)]
        space = float(10 * np.log10(np.mean(10 ** (tail / 10))) - held_db) if tail.size else SPACE_FLOOR_DB
    return np.append(described, [release, max(space, SPACE_FLOOR_DB)]).astype(np.float32)


def in_steps(change: np.ndarray) -> np.ndarray:
    """A change of every TWEAK_DESCRIPTOR (last axis) in noticeable steps."""
    return change / np.array([STEPS[name] for name in TWEAK_DESCRIPTORS])
