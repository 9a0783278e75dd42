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
from patchpilot.index.store import PresetStore, StoredPreset
from patchpilot.synths import Preset, RenderPool, Voice, get_engine

#: Presets rendered and committed together (what an interrupt can lose at most).
CHUNK_PRESETS = 64

ProgressCallback = Callable[[str, int, int], None]


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
    synth_of = store.synth_by_row()
    for synth in sorted({synth_of[r] for r in pending}):
        rows = [r for r in pending if synth_of[r] == synth]
        with pool_for(synth) as pool:
            for start in range(0, len(rows), CHUNK_PRESETS):
                presets = store.get_rows(rows[start : start + CHUNK_PRESETS])
                chunk = [presets[r] for r in rows[start : start + CHUNK_PRESETS] if r in presets]
                values = pool.map(_describe_stored, chunk, on_crash=lambda item, why: None)
                store.set_descriptors(DESCRIPTOR_SCHEMA, ((sp.row, v) for sp, v in zip(chunk, values) if v is not None))
                done += len(chunk)
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
