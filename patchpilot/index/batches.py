"""How the build's stages walk a store's presets: one synth after another on that synth's
render pool (local threads or Ray actors), a chunk at a time, so that each chunk can be
committed (an interrupt loses at most one) and reported."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from patchpilot.index.store import PresetStore, StoredPreset
from patchpilot.synths import RenderPool

#: Presets rendered and committed together (what an interrupt can lose at most).
CHUNK_PRESETS = 64

#: ``progress(stage, done, total)``, called as work is done.
ProgressCallback = Callable[[str, int, int], None]


def chunks_by_synth(store: PresetStore, rows: list[int], pool_for: Callable[[str], RenderPool],
                    size: int = CHUNK_PRESETS) -> Iterator[tuple[RenderPool, list[int], list[StoredPreset]]]:
    """``(pool, chunk_rows, presets)`` for ``rows`` of ``store``, ``size`` rows at a time,
    grouped by synth (in name order, each keeping the order given); ``pool`` is
    ``pool_for(synth)``, open while that synth's chunks are handed out. ``presets`` are the
    chunk's rows the store holds, in order (progress counts ``chunk_rows``)."""
    synth_of = store.synth_by_row()
    for synth in sorted({synth_of[r] for r in rows if r in synth_of}):
        mine = [r for r in rows if synth_of.get(r) == synth]
        with pool_for(synth) as pool:
            for start in range(0, len(mine), size):
                chunk = mine[start : start + size]
                found = store.get_rows(chunk)
                yield pool, chunk, [found[r] for r in chunk if r in found]
