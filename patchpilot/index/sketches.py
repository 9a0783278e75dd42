"""The index's sketches (``embed/sketch.py``): every preset's coarse spectrogram at every
indexed note, in one file beside the vectors, scored all at once for a query.

An index without the file (built before sketches, or its file from another sketch version)
is searched by vector alone; ``build-index --describe`` adds it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpilot.embed.sketch import N_BANDS, N_WINDOWS, SKETCH_VERSION, at_keys, decode, sketch_distance
from patchpilot.errors import PatchPilotWarning
from patchpilot.index.layout import SKETCHES_NAME, write_arrays_atomically

__all__ = ["SKETCHES_NAME", "Sketches", "read_sketches", "write_sketches"]


@dataclass(frozen=True)
class Sketches:
    """Sketches by store row: ``rows`` (n,) sorted, ``data`` (n, notes, windows, bands) uint8."""

    rows: np.ndarray
    data: np.ndarray

    def distances(self, query_db: np.ndarray, rows: np.ndarray, keys: np.ndarray, notes: tuple[int, ...],
                  windows: int = N_WINDOWS) -> tuple[np.ndarray, np.ndarray]:
        """``sketch_distance`` (over the first ``windows``) of the query's sketch (dB) to
        each of ``rows`` played at its key (``keys``; NaN: at the indexed note whose sketch is
        nearest, unshifted), and the key each was scored at: (distances, keys). inf (and the
        key given) for rows without a sketch."""
        rows, keys = np.asarray(rows, dtype=np.int64), np.array(keys, dtype=np.float64)
        out = np.full(rows.size, np.inf)
        if self.rows.size == 0:
            return out, keys
        at = np.clip(np.searchsorted(self.rows, rows), 0, self.rows.size - 1)
        held = self.rows[at] == rows
        keyed = held & ~np.isnan(keys)
        if keyed.any():
            out[keyed] = sketch_distance(query_db, at_keys(self.data[at[keyed]], notes, keys[keyed]), windows)
        free = held & np.isnan(keys)
        if free.any():
            by_note = np.stack([sketch_distance(query_db, decode(self.data[at[free], slot]), windows)
                                for slot in range(self.data.shape[1])])
            out[free] = by_note.min(axis=0)
            keys[free] = np.asarray(notes, dtype=np.float64)[by_note.argmin(axis=0)]
        return out, keys


def write_sketches(path: Path, rows: np.ndarray, data: np.ndarray) -> None:
    """Write sketches (any row order) to ``path`` atomically."""
    order = np.argsort(rows, kind="stable")
    write_arrays_atomically(path, {"version": np.array(SKETCH_VERSION), "rows": np.asarray(rows, np.int64)[order],
                                   "sketches": np.asarray(data, np.uint8)[order]},
                            compressed=True, before_sync="sketches-write")


def read_sketches(folder: Path, slots: int) -> Sketches | None:
    """The index folder's sketches; None when it has none, they are of another sketch
    version or shape, or the file cannot be read (the index is then searched by vector)."""
    path = folder / SKETCHES_NAME
    if not path.exists():
        return None
    try:
        with np.load(path) as saved:
            if str(saved["version"]) != SKETCH_VERSION:
                return None
            rows, data = saved["rows"], saved["sketches"]
    except Exception as error:  # noqa: BLE001 - a damaged optional file only costs the sketch search
        warnings.warn(f"{path}: unreadable sketches ({type(error).__name__}); searching by vector alone "
                      "(`patchpilot build-index --describe` writes them again)", PatchPilotWarning, stacklevel=2)
        return None
    if data.shape[1:] != (slots, N_WINDOWS, N_BANDS) or rows.size != data.shape[0]:
        return None
    return Sketches(rows.astype(np.int64), data)
