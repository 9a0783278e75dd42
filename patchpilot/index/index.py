"""A built index: manifest, preset store, FAISS vectors and the feature transform.

Every preset has one vector per indexed note (``manifest.notes``). A query at pitch *m* is
compared with each candidate preset's vectors interpolated to *m* (the vectors change
smoothly with pitch), trying octave and fifth alternatives because pitch estimates of FM or
detuned sounds jump by those intervals. FAISS finds the candidates; numpy interpolates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from patchpilot.embed.sketch import N_WINDOWS
from patchpilot.embed.transform import FeatureTransform
from patchpilot.errors import EmbedderMismatchError, IndexLoadError
from patchpilot.index.layout import (
    INDEX_FILES,
    STORE_NAME,
    TRANSFORM_NAME,
    VECTORS_NAME,
    VersionLease,
    open_version,
)
from patchpilot.index.sketches import Sketches, read_sketches
from patchpilot.index.store import PresetStore, StoredPreset
from patchpilot.index.vectors import COARSE_ENTRIES, SLOT_STRIDE, VectorKind, import_faiss, read_vectors, search_parameters
from patchpilot.paths import MANIFEST_NAME

FORMAT_VERSION = 1

#: Query pitch alternatives (semitones) tried against every candidate, and their cost.
PITCH_HYPOTHESES = (0, 12, -12, 24, -24, 7, -7, 19, -19)
HYPOTHESIS_PENALTY = 0.01
#: Cost of the pitch-agnostic scan for presets with a pitch, and the largest believable
#: pitch offset of a preset (semitones).
SCAN_PENALTY = 0.03
MAX_PITCH_OFFSET = 24.0
#: From this many entries on, a search for one synth's presets asks FAISS for
#: OVERFETCH_MARGIN x COARSE_ENTRIES / share entries of all synths and keeps that synth's
#: (when its share is at least OVERFETCH_MIN_SHARE).
OVERFETCH_FROM = 100_000
OVERFETCH_MARGIN = 2.0
OVERFETCH_MIN_SHARE = 0.125


@dataclass(frozen=True)
class Manifest:
    embedder: str
    dim: int
    notes: tuple[int, ...]
    note_seconds: float
    render_seconds: float
    velocity: int
    sample_rate: int
    synths: dict[str, int]
    created: str
    patchpilot_version: str
    format: int = FORMAT_VERSION
    #: How the vectors are searched (``index/vectors.py``): "exact", or "ivf" visiting ``nprobe`` cells.
    vectors: str = "exact"
    nprobe: int = 0

    @property
    def vector_kind(self) -> VectorKind:
        return VectorKind(self.vectors, self.nprobe)

    def to_json(self) -> str:
        data = dict(self.__dict__)
        data["notes"] = list(self.notes)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["notes"] = tuple(data["notes"])
        return cls(**data)


@dataclass(frozen=True)
class Candidate:
    """A preset found for a query, before re-ranking."""

    row: int
    distance: float
    #: Notes to play the preset at so it sounds at the query's pitch: the one the pitch
    #: estimate gives first, then the octave/fifth alternative that fitted better, if any.
    notes: tuple[int, ...]


def read_manifest(path: Path) -> Manifest:
    manifest_path = path / MANIFEST_NAME
    if not path.exists():
        raise IndexLoadError(f"no index at {path}; build one with `patchpilot build-index --index {path}`")
    if not path.is_dir():
        raise IndexLoadError(f"{path} is not an index folder")
    missing = [name for name in INDEX_FILES if not (path / name).exists()]
    if missing:
        raise IndexLoadError(f"{path}: incomplete index (missing {', '.join(missing)}); rebuild it with `patchpilot build-index`")
    try:
        manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise IndexLoadError(f"{path}: unreadable index manifest ({exc})") from None
    if manifest.format != FORMAT_VERSION:
        raise IndexLoadError(f"{path}: index format {manifest.format} is not supported (expected {FORMAT_VERSION}); rebuild it")
    return manifest


def _check_embedder_name(path: Path, manifest: Manifest, embedder: str | None) -> None:
    """``embedder`` ("name" or "name/version") must be the one that built the index."""
    if embedder is None:
        return
    wanted_name = embedder.split("/")[0]
    built_name = manifest.embedder.split("/")[0]
    if wanted_name != built_name or ("/" in embedder and embedder != manifest.embedder):
        raise EmbedderMismatchError(
            f"{path} was built with the {manifest.embedder!r} embedder, not {embedder!r}; "
            f"use --embedder {built_name} or rebuild the index with --embedder {wanted_name}"
        )


class PresetIndex:
    """An opened index: one version of it for the object's whole life (a build publishing a
    new version meanwhile changes nothing here). Cheap to open; vectors load on the first
    search. ``path`` is the index folder as given, ``files`` the version folder read."""

    def __init__(self, path: Path, manifest: Manifest, files: Path | None = None,
                 lease: VersionLease | None = None) -> None:
        self.path = path
        self.files = files if files is not None else path
        self.manifest = manifest
        self._lease = lease
        self.store = PresetStore(self.files / STORE_NAME, readonly=True)

    @classmethod
    def open(cls, path: Path, embedder: str | None = None) -> PresetIndex:
        """Open an index; ``embedder`` ("name" or "name/version") must match the one that built it."""
        files, lease = open_version(path)
        try:
            manifest = read_manifest(files)
            _check_embedder_name(path, manifest, embedder)
            return cls(Path(path), manifest, files, lease)
        except BaseException:
            lease.release()
            raise

    def check_embedder(self, identity: str) -> None:
        """Raise unless the index was built by this embedder (name and version)."""
        if identity != self.manifest.embedder:
            raise EmbedderMismatchError(
                f"{self.path} was built with the {self.manifest.embedder!r} embedder but this search embeds with "
                f"{identity!r}; rebuild the index with `patchpilot build-index --index {self.path}`"
            )

    @cached_property
    def transform(self) -> FeatureTransform:
        try:
            return FeatureTransform.load(self.files / TRANSFORM_NAME)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexLoadError(f"{self.path}: unreadable feature transform ({exc})") from None

    @cached_property
    def _vectors(self) -> dict[str, Any]:
        try:
            index, rows, vectors = read_vectors(self.files / VECTORS_NAME, len(self.manifest.notes))
        except (RuntimeError, ValueError) as exc:
            raise IndexLoadError(f"{self.path}: unreadable vector file ({' '.join(str(exc).split())[:160]})") from None
        position = dict(zip(rows.tolist(), range(rows.size)))
        synths, offsets, user = self.store.search_columns(rows)
        # an "offset" beyond two octaves is a misread pitch (noise, inharmonic partials)
        offsets[np.abs(offsets) > MAX_PITCH_OFFSET] = np.nan
        return {"faiss": index, "rows": rows, "position": position, "vectors": vectors, "offsets": offsets,
                "synths": synths, "user": user, "selectors": {}}

    @property
    def user_synths(self) -> list[str]:
        """The synths that presets read from a user's files are for."""
        data = self._vectors
        return sorted(set(data["synths"][data["user"]].tolist()))

    def __len__(self) -> int:
        return int(sum(self.manifest.synths.values()))

    def search(self, vector: np.ndarray, query_midi: float | None, *, synth: str | None = None,
               k: int = 24, user: bool = False) -> list[Candidate]:
        """Presets nearest a query vector (from :attr:`transform`) heard at ``query_midi``;
        with ``user``, only those read from a user's files."""
        data = self._vectors
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        coarse = min(COARSE_ENTRIES, data["faiss"].ntotal)
        filtered = synth is not None or user
        entries = self._filtered_by_overfetch(query, coarse, synth, user) if filtered else None
        if entries is None:
            selector = self._selector(synth, user) if filtered else None
            if filtered and selector is None:
                return []
            _, ids = data["faiss"].search(query, coarse, params=search_parameters(self.manifest.vector_kind, selector))
            entries = ids[0]
        rows = np.unique(entries[entries >= 0] // SLOT_STRIDE)
        if rows.size == 0:
            return []
        positions = np.array([data["position"][int(r)] for r in rows])
        distance, direct, best = self._interpolated_distance(query[0], positions, query_midi)
        order = np.argsort(distance)[:k]
        return [
            Candidate(int(rows[i]), float(distance[i]),
                      (int(direct[i]),) if direct[i] == best[i] else (int(direct[i]), int(best[i])))
            for i in order
        ]

    @cached_property
    def sketches(self) -> Sketches | None:
        """The presets' sketches (``index/sketches.py``); None for an index without them."""
        return read_sketches(self.files, len(self.manifest.notes))

    def search_sketches(self, vector: np.ndarray, query_db: np.ndarray, query_midi: float | None, *,
                        synth: str | None = None, k: int = 24, exclude: set[int] | frozenset[int] = frozenset(),
                        windows: int = N_WINDOWS) -> list[Candidate]:
        """The ``k`` presets (not in ``exclude``) whose sketch at the query's pitch is nearest
        the query's sketch (``query_db``, ``embed/sketch.py``; its first ``windows``
        windows), every preset of ``synth`` scored. A preset is played at the key its pitch
        offset gives (an unpitched preset, or any for an unpitched query, at the indexed
        note its sketch fits best). Their distances are the vector's (``vector``), as for
        :meth:`search`; empty without sketches."""
        sketches = self.sketches
        if sketches is None or k <= 0:
            return []
        data = self._vectors
        allowed = self._allowed(synth, False) & ~np.isin(data["rows"], np.fromiter(exclude, np.int64, len(exclude)))
        positions = np.flatnonzero(allowed)
        if positions.size == 0:
            return []
        offsets = data["offsets"][positions]
        keys = (np.full(positions.size, np.nan) if query_midi is None
                else np.clip(np.round(query_midi - offsets), 0, 127))
        distance, keys = sketches.distances(query_db, data["rows"][positions], keys, tuple(self.manifest.notes),
                                            windows)
        order = np.argsort(distance, kind="stable")[:k]
        order = order[np.isfinite(distance[order])]
        chosen = positions[order]
        vector_distance, _, _ = self._interpolated_distance(np.asarray(vector, np.float32), chosen, query_midi)
        return [Candidate(int(data["rows"][p]), float(d), (int(n),))
                for p, d, n in zip(chosen, vector_distance, keys[order], strict=True)]

    def _filtered_by_overfetch(self, query: np.ndarray, coarse: int, synth: str | None, user: bool
                               ) -> np.ndarray | None:
        """On a large approximate index, one synth's nearest ``coarse`` entries taken from an
        unfiltered search for more (FAISS' id selectors cost several times a plain search in
        an inverted file): the entries a filtered search returns. None where that does not
        pay (an exact index, whose cost grows with the entries asked for; a small one; presets
        too few among the rest) or the search found too few; then filter."""
        data = self._vectors
        total = data["faiss"].ntotal
        allowed = self._allowed(synth, user)
        share = float(allowed.mean()) if allowed.size else 0.0
        if self.manifest.vectors != "ivf" or total < OVERFETCH_FROM or share < OVERFETCH_MIN_SHARE:
            return None
        fetch = min(total, int(np.ceil(OVERFETCH_MARGIN * coarse / share)))
        for _ in range(2):  # once more, for four times as many, when the synth's presets were fewer
            _, ids = data["faiss"].search(query, fetch, params=search_parameters(self.manifest.vector_kind, None))
            found = ids[0][ids[0] >= 0]
            kept = found[allowed[np.searchsorted(data["rows"], found // SLOT_STRIDE)]]
            if kept.size >= coarse:
                return kept[:coarse]
            fetch = min(total, 4 * fetch)
        return None

    def _allowed(self, synth: str | None, user: bool) -> np.ndarray:
        """Per position of :attr:`_vectors`' rows: whether a search for ``synth``/``user`` may return it."""
        data = self._vectors
        key = ("allowed", synth, user)
        if key not in data["selectors"]:
            mask = np.ones(data["rows"].size, dtype=bool) if synth is None else data["synths"] == synth
            data["selectors"][key] = mask & data["user"] if user else mask
        return data["selectors"][key]

    def _selector(self, synth: str | None, user: bool) -> Any | None:
        """The FAISS ids of one synth's presets (or the user's), made once per index; None
        when there are none."""
        data = self._vectors
        key = (synth, user)
        if key not in data["selectors"]:
            mask = self._allowed(synth, user)
            entry_ids = (data["rows"][mask][:, None] * SLOT_STRIDE + np.arange(len(self.manifest.notes))).ravel()
            data["selectors"][key] = import_faiss().IDSelectorBatch(entry_ids.astype(np.int64)) if mask.any() else None
        return data["selectors"][key]

    def _interpolated_distance(self, query: np.ndarray, positions: np.ndarray,
                               query_midi: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distance per candidate, the note the pitch estimate implies, and the note of the
        best-fitting pitch hypothesis."""
        data = self._vectors
        grid = np.array(self.manifest.notes, dtype=np.float64)
        vectors = np.asarray(data["vectors"][positions], dtype=np.float32)  # (R, S, d)
        dots = vectors @ query  # (R, S)
        count = positions.size
        if grid.size == 1:
            return 1.0 - dots[:, 0], np.full(count, int(grid[0])), np.full(count, int(grid[0]))
        adjacent = np.einsum("rsd,rsd->rs", vectors[:, :-1], vectors[:, 1:])  # neighbouring notes' similarity
        offsets = data["offsets"][positions]
        spacing = float(np.diff(grid).mean())
        rows = np.arange(count)

        def similarity_at(played: np.ndarray) -> np.ndarray:
            u = np.clip((played - grid[0]) / spacing, 0.0, grid.size - 1 - 1e-9)
            lower = np.floor(u).astype(int)
            upper = np.minimum(lower + 1, grid.size - 1)
            w = u - lower
            norm = np.sqrt(np.maximum((1 - w) ** 2 + w**2 + 2 * w * (1 - w) * adjacent[rows, np.minimum(lower, grid.size - 2)], 1e-12))
            return ((1 - w) * dots[rows, lower] + w * dots[rows, upper]) / norm

        # Scan every semitone of the indexed range: the answer for unpitched presets and
        # queries, and a (penalised) fallback for pitched ones whose pitch reading is off.
        best = np.full(count, np.inf)
        best_note = np.zeros(count, dtype=int)
        scan = np.isnan(offsets) if query_midi is not None else np.ones(count, dtype=bool)
        penalty = np.where(scan, 0.0, SCAN_PENALTY)
        for played in np.arange(grid[0], grid[-1] + 1):
            distance = 1.0 - similarity_at(np.full(count, played)) + penalty
            better = distance < best
            best = np.where(better, distance, best)
            best_note = np.where(better, int(played), best_note)
        if query_midi is None:
            return best, best_note, best_note
        direct_note = np.where(scan, best_note, np.clip(np.round(query_midi - np.nan_to_num(offsets)), 0, 127)).astype(int)
        for shift in PITCH_HYPOTHESES:
            played = query_midi + shift - np.nan_to_num(offsets)
            u = (played - grid[0]) / spacing
            valid = ~scan & (((u >= -0.5) & (u <= grid.size - 0.5)) if shift else True)
            distance = 1.0 - similarity_at(played) + (HYPOTHESIS_PENALTY if shift else 0.0)
            better = valid & (distance < best)
            best = np.where(better, distance, best)
            best_note = np.where(better, np.clip(np.round(played), 0, 127).astype(int), best_note)
        return best, direct_note, best_note

    def presets(self, rows: list[int]) -> dict[int, StoredPreset]:
        return self.store.get_rows(rows)

    def close(self) -> None:
        self.store.close()
        if self._lease is not None:
            self._lease.release()

    def __enter__(self) -> PresetIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

