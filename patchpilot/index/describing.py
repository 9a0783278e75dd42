"""Sound descriptors (what text queries search) for the presets of a store: each preset
rendered and measured by ``audio/descriptors.py``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from patchpilot.audio.descriptors import (
    DESCRIBE_NOTE,
    DESCRIBE_NOTE_SECONDS,
    DESCRIBE_RENDER_SECONDS,
    DESCRIBE_VELOCITY,
    DESCRIPTOR_SCHEMA,
    describe,
)
from patchpilot.index.batches import ProgressCallback, chunks_by_synth
from patchpilot.index.store import PresetStore, StoredPreset
from patchpilot.synths import Preset, RenderPool, Voice, get_engine


def describe_missing(store: PresetStore, *, workers: int = 2, progress: ProgressCallback | None = None,
                     pool_for: Callable[[str], RenderPool] | None = None, stage: str = "describe") -> int:
    """Render and describe (``describe/descriptors.py``) every preset of ``store`` that has no
    descriptors yet, committing each chunk (an interrupted run resumes). Returns how many.
    ``pool_for(synth)`` gives the pool to render on (default: a local one of ``workers``);
    ``stage`` names the progress stage."""
    progress = progress or (lambda stage, done, total: None)
    pool_for = pool_for or (lambda synth: get_engine(synth).render_pool(workers))
    pending = store.rows_without_descriptors(DESCRIPTOR_SCHEMA)
    total = store.count()
    done = total - len(pending)
    progress(stage, done, total)
    for pool, rows, chunk in chunks_by_synth(store, pending, pool_for):
        values = pool.map(_describe_stored, chunk, on_crash=lambda item, why: None)
        store.set_descriptors(DESCRIPTOR_SCHEMA, ((sp.row, v) for sp, v in zip(chunk, values) if v is not None))
        done += len(rows)
        progress(stage, done, total)
    return len(pending)


def _describe_stored(voice: Voice, stored: StoredPreset) -> np.ndarray | None:
    """Descriptors, or None for a preset the synth cannot play (the build leaves it out)."""
    try:
        return describe_preset(voice, stored.preset)
    except Exception:  # noqa: BLE001 - a bad imported preset must not stop the build
        return None


def describe_preset(voice: Voice, preset: Preset) -> np.ndarray:
    """Render ``preset`` on ``voice`` (one thread's synth) as the descriptors are measured
    (``audio/descriptors.py``), and describe it."""
    audio = voice.render_stereo(preset, DESCRIBE_NOTE, DESCRIBE_VELOCITY, DESCRIBE_NOTE_SECONDS,
                                DESCRIBE_RENDER_SECONDS)
    return describe(audio, voice.sample_rate)
