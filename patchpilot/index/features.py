"""Rendering presets into raw features, saved in chunks that a resumed build trusts.

A chunk is written under a temporary name that starts with a dot, flushed, and renamed to
``chunk-<first row>.npz``; only those final names are ever read. On resume every chunk is
read back whole: a chunk that cannot be read is deleted and its presets rendered again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpilot.audio.analysis import note_pitch
from patchpilot.audio.dsp import rms
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_VELOCITY, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS
from patchpilot.embed import Embedder
from patchpilot.embed.sketch import N_BANDS, N_WINDOWS, sketch
from patchpilot.errors import PatchPilotError, PatchPilotWarning
from patchpilot.index.layout import write_arrays_atomically
from patchpilot.synths import Preset, Voice

#: A render quieter than this (RMS) counts as silent.
SILENT_RMS = 1e-5
_PREFIX = "chunk-"


@dataclass(frozen=True)
class Analysis:
    """One preset's features at the indexed notes, or why it has none."""

    row: int
    features: np.ndarray | None  # (slots, dim); None when silent or failed
    pitch_offset: float | None
    #: Why the preset could not be rendered ("" when it rendered, silent or not).
    failure: str = ""
    #: (slots, windows, bands) uint8 sketches (``embed/sketch.py``); None with no features.
    sketches: np.ndarray | None = None


def _index_renders(voice: Voice, preset: Preset, notes: tuple[int, ...]) -> tuple[list[np.ndarray], list[bool]]:
    """The preset at every indexed note as the index hears it, and which renders are audible."""
    renders = [voice.render(preset, note, DEFAULT_VELOCITY, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS)
               for note in notes]
    return renders, [bool(np.isfinite(r).all()) and rms(r) > SILENT_RMS for r in renders]


def _borrow_for_silent(values: np.ndarray, loud: list[bool]) -> np.ndarray:
    """A slot silent at its note takes its nearest audible neighbour's values (in place)."""
    for slot, ok in enumerate(loud):
        if not ok:
            values[slot] = values[min((s for s, good in enumerate(loud) if good), key=lambda s: abs(s - slot))]
    return values


def analyse_preset(voice: Voice, job: tuple[int, Preset, tuple[int, ...]], embedder: Embedder) -> Analysis:
    """Render a preset at every indexed note and describe it. A preset the synth rejects
    (an imported file's values out of what the synth takes) is reported, not raised."""
    row, preset, notes = job
    try:
        renders, loud = _index_renders(voice, preset, notes)
    except Exception as error:  # noqa: BLE001 - one preset the synth cannot play must not stop the build
        text = str(error) if isinstance(error, PatchPilotError) else f"{type(error).__name__}: {error}"
        return Analysis(row, None, None, " ".join(text.split()) or type(error).__name__)
    if not any(loud):
        return Analysis(row, None, None)
    features = _borrow_for_silent(embedder.features(renders), loud)
    sketches = _borrow_for_silent(np.stack([sketch(r) for r in renders]), loud)
    centre = min(range(len(notes)), key=lambda s: (not loud[s], abs(notes[s] - 60)))
    pitch = note_pitch(renders[centre], ANALYSIS_SAMPLE_RATE_HZ)
    offset = None if pitch.midi is None else float(np.round(pitch.midi - notes[centre], 2))
    return Analysis(row, features, offset, sketches=sketches)


def sketch_preset(notes: tuple[int, ...], voice: Voice, preset: Preset) -> np.ndarray | None:
    """A preset's sketches at the indexed ``notes``, as a build makes them (None when the
    synth cannot play it or it is silent at every note)."""
    try:
        renders, loud = _index_renders(voice, preset, notes)
    except Exception:  # noqa: BLE001 - the build left such a preset out; nothing to sketch
        return None
    return _borrow_for_silent(np.stack([sketch(r) for r in renders]), loud) if any(loud) else None


@dataclass
class LoadedFeatures:
    """Every chunk of a build, concatenated."""

    rows: np.ndarray  # (n,)
    features: np.ndarray  # (n, slots, dim)
    offsets: np.ndarray  # (n,) NaN when unpitched
    skipped: list[int]  # silent or failed rows
    failures: dict[int, str]  # row -> why it could not be rendered
    sketches: np.ndarray  # (n, slots, windows, bands) uint8


class FeatureChunks:
    """The ``features/`` folder of a build."""

    def __init__(self, folder: Path, slots: int) -> None:
        self.folder = folder
        self.slots = slots
        folder.mkdir(parents=True, exist_ok=True)
        #: What :meth:`load` read, until a chunk is saved or dropped (the training queries
        #: and the assembly both need every chunk).
        self._loaded: LoadedFeatures | None = None

    def _final(self) -> list[Path]:
        return sorted(self.folder.glob(f"{_PREFIX}*.npz"))

    def save(self, results: list[Analysis]) -> None:
        good = [r for r in results if r.features is not None]
        rows = np.array([r.row for r in good], dtype=np.int64)
        features = (np.stack([r.features for r in good]) if good
                    else np.zeros((0, self.slots, 1), np.float32))
        offsets = np.array([np.nan if r.pitch_offset is None else r.pitch_offset for r in good], dtype=np.float64)
        sketches = (np.stack([r.sketches for r in good]) if good
                    else np.zeros((0, self.slots, N_WINDOWS, N_BANDS), np.uint8))
        bad = [r for r in results if r.features is None]
        self._loaded = None
        write_arrays_atomically(self.folder / f"{_PREFIX}{results[0].row:09d}.npz",
                                {"rows": rows, "features": features, "offsets": offsets, "sketches": sketches,
                                 "skipped": np.array([r.row for r in bad], dtype=np.int64),
                                 "failures": np.array([r.failure for r in bad], dtype=str)},
                                before_sync="chunk-write")

    def _read(self, path: Path) -> dict[str, np.ndarray] | None:
        try:
            with np.load(path) as data:
                chunk = {key: data[key] for key in ("rows", "features", "offsets", "skipped", "sketches")}
                chunk["failures"] = data["failures"] if "failures" in data else np.zeros(0, dtype=str)
        except Exception:  # noqa: BLE001 - any damage (truncation, bad zip, bad header) means "redo it"
            return None
        if chunk["features"].ndim != 3 or not len(chunk["rows"]) == len(chunk["features"]) == len(chunk["offsets"]):
            return None
        if chunk["sketches"].shape[1:] != (self.slots, N_WINDOWS, N_BANDS) or len(chunk["sketches"]) != len(chunk["rows"]):
            return None  # an older build's chunk, without sketches: rendered again
        return chunk

    def validate(self) -> set[int]:
        """Drop temporary files and damaged chunks (a note on stderr for each damaged one);
        returns the rows the remaining chunks cover."""
        self._loaded = None
        for leftover in self.folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        done: set[int] = set()
        for path in self._final():
            chunk = self._read(path)
            if chunk is None:
                warnings.warn(f"{path.name} of the interrupted build is damaged; rendering its presets again",
                              PatchPilotWarning, stacklevel=2)
                path.unlink(missing_ok=True)
                continue
            done.update(int(r) for r in chunk["rows"])
            done.update(int(r) for r in chunk["skipped"])
        return done

    def load(self) -> LoadedFeatures:
        """Every chunk, concatenated (read once while no chunk changes)."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> LoadedFeatures:
        rows, features, offsets, sketches, skipped = [], [], [], [], []
        failures: dict[int, str] = {}
        for path in self._final():
            chunk = self._read(path)
            if chunk is None:
                raise PatchPilotError(f"{path}: damaged feature chunk; run the build again to redo it")
            if chunk["rows"].size:
                rows.append(chunk["rows"])
                features.append(chunk["features"])
                offsets.append(chunk["offsets"])
                sketches.append(chunk["sketches"])
            skipped += [int(r) for r in chunk["skipped"]]
            failures.update((int(r), str(f)) for r, f in zip(chunk["skipped"], chunk["failures"]) if str(f))
        if not rows:
            return LoadedFeatures(np.zeros(0, np.int64), np.zeros((0, self.slots, 0)), np.zeros(0), skipped, failures,
                                  np.zeros((0, self.slots, N_WINDOWS, N_BANDS), np.uint8))
        joined = np.nan_to_num(np.concatenate(features), nan=0.0, posinf=0.0, neginf=0.0)
        return LoadedFeatures(np.concatenate(rows), joined, np.concatenate(offsets), skipped, failures,
                              np.concatenate(sketches))
