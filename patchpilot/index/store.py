"""The index's metadata store: every preset's identity, category, tags and full parameters.

SQLite, one row per preset. Parameter values are a float32 blob in the synth's parameter
order (recorded in ``meta`` so an index outlives a change of the order); imported presets
also keep their own base state (a ``.vital`` file's JSON), zlib-compressed, and in
``sources`` the file they came from (path, SHA-1, when it was added).
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpilot.errors import IndexLoadError
from patchpilot.synths import Preset, get_engine, remember_engine
from patchpilot.synths.base import USER_ORIGIN

#: SQL condition of the presets read from a user's files.
_FROM_USER = f"origin LIKE '{USER_ORIGIN}%'"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS presets (
    row INTEGER PRIMARY KEY,
    preset_id TEXT NOT NULL UNIQUE,
    synth TEXT NOT NULL,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    tags TEXT NOT NULL,
    origin TEXT NOT NULL,
    vals BLOB NOT NULL,
    base_state BLOB,
    fingerprint TEXT NOT NULL,
    pitch_offset REAL
);
CREATE INDEX IF NOT EXISTS presets_synth ON presets (synth);
CREATE INDEX IF NOT EXISTS presets_search ON presets (synth, pitch_offset, origin);
CREATE TABLE IF NOT EXISTS descriptors (row INTEGER PRIMARY KEY, vals BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    preset_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    sha1 TEXT NOT NULL,
    added TEXT NOT NULL
);
"""
#: ``meta`` key prefix of what creates a synth's engine again (a plugin's path), per synth.
ENGINE_META = "engine:"
#: ``meta`` key naming the descriptors (and their version) the ``descriptors`` table holds.
DESCRIPTORS_META = "descriptors"


@dataclass(frozen=True)
class StoredPreset:
    """A preset as the index knows it."""

    row: int
    preset_id: str
    preset: Preset
    #: Sounding pitch minus the played note, in semitones (None: unpitched or unknown).
    pitch_offset: float | None


class PresetStore:
    """Read and write the ``presets.sqlite`` of an index."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self._db = sqlite3.connect(str(path), check_same_thread=False)
                self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM presets").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexLoadError(f"{path}: not a Patch Pilot preset store ({exc})") from None
        self._orders: dict[str, list[str]] = {}
        # the plugins this index holds presets of: how to load each again
        for key, value in self._db.execute("SELECT key, value FROM meta WHERE key LIKE ?", (f"{ENGINE_META}%",)):
            remember_engine(key[len(ENGINE_META):], json.loads(value))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PresetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- meta -------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _param_order(self, synth: str) -> list[str]:
        order = self._orders.get(synth)
        if order is None:
            stored = self.get_meta(f"params:{synth}")
            order = json.loads(stored) if stored else list(get_engine(synth).params)
            self._orders[synth] = order
        return order

    # ---- writing ----------------------------------------------------------------------
    def add(self, items: Iterable[tuple[str, Preset]]) -> int:
        """Insert presets (skipping ids already present); returns how many were added."""
        added = 0
        with self._db:
            for preset_id, preset in items:
                synth = preset.synth
                if self.get_meta(f"params:{synth}") is None:
                    self.set_meta(f"params:{synth}", json.dumps(list(get_engine(synth).params)))
                    record = get_engine(synth).index_record()
                    if record is not None:
                        self.set_meta(f"{ENGINE_META}{synth}", json.dumps(record))
                order = self._param_order(synth)
                values = get_engine(synth).params.complete(preset.values)
                blob = np.array([values[n] for n in order], dtype=np.float32).tobytes()
                state = zlib.compress(preset.base_state.encode()) if preset.base_state is not None else None
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO presets (preset_id, synth, name, category, tags, origin, vals, base_state,"
                    " fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (preset_id, synth, preset.name, preset.category, json.dumps(list(preset.tags)), preset.origin,
                     blob, state, preset.fingerprint()),
                )
                added += cursor.rowcount
        return added

    def set_sources(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        """Record ``(preset_id, path, sha1, added)`` for user presets (kept when present)."""
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO sources (preset_id, path, sha1, added) VALUES (?, ?, ?, ?)",
                                 list(items))

    def sources(self) -> dict[str, tuple[str, str, str]]:
        """``preset_id -> (path, sha1, added)`` of user presets (empty for older stores)."""
        if not self._has_table("sources"):
            return {}
        query = "SELECT s.preset_id, s.path, s.sha1, s.added FROM sources s JOIN presets p ON p.preset_id = s.preset_id"
        return {pid: (path, sha1, added) for pid, path, sha1, added in self._db.execute(query)}

    def set_pitch_offsets(self, offsets: Iterable[tuple[int, float | None]]) -> None:
        with self._db:
            self._db.executemany("UPDATE presets SET pitch_offset = ? WHERE row = ?", [(o, r) for r, o in offsets])

    def delete_rows(self, rows: Iterable[int]) -> None:
        rows = [(r,) for r in rows]
        with self._db:
            self._db.executemany("DELETE FROM presets WHERE row = ?", rows)
            self._db.executemany("DELETE FROM descriptors WHERE row = ?", rows)

    # ---- sound descriptors (text queries) ---------------------------------------------
    def set_descriptors(self, schema: str, items: Iterable[tuple[int, np.ndarray]]) -> None:
        """Store descriptor vectors; ``schema`` names them (a store holds one schema: a new
        one drops the old values)."""
        with self._db:
            if self.get_meta(DESCRIPTORS_META) != schema:
                self._db.execute("DELETE FROM descriptors")
                self.set_meta(DESCRIPTORS_META, schema)
            self._db.executemany("INSERT OR REPLACE INTO descriptors (row, vals) VALUES (?, ?)",
                                 [(int(r), np.asarray(v, dtype=np.float32).tobytes()) for r, v in items])

    def _has_table(self, name: str) -> bool:
        found = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return found.fetchone() is not None

    def rows_without_descriptors(self, schema: str) -> list[int]:
        """Rows with no descriptors of this schema (all rows of an index built before them)."""
        if not self._has_table("descriptors") or self.get_meta(DESCRIPTORS_META) != schema:
            return self.rows()
        query = "SELECT row FROM presets WHERE row NOT IN (SELECT row FROM descriptors) ORDER BY row"
        return [r for (r,) in self._db.execute(query)]

    def descriptors(self, schema: str) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, values)`` of every preset described with this schema (values ``(n, d)``)."""
        if not self._has_table("descriptors") or self.get_meta(DESCRIPTORS_META) != schema:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        records = self._db.execute("SELECT d.row, d.vals FROM descriptors d JOIN presets p ON p.row = d.row"
                                   " ORDER BY d.row").fetchall()
        rows = np.array([r for r, _ in records], dtype=np.int64)
        values = np.stack([np.frombuffer(v, dtype=np.float32) for _, v in records]) if records else np.zeros((0, 0))
        return rows, values

    def labels(self) -> dict[int, tuple[str, str, str, tuple[str, ...]]]:
        """``row -> (preset_id, synth, category, tags)`` without decoding parameters."""
        return {row: (pid, synth, category, tuple(json.loads(tags)))
                for row, pid, synth, category, tags in self._db.execute(
                    "SELECT row, preset_id, synth, category, tags FROM presets")}

    # ---- reading ----------------------------------------------------------------------
    def count(self, synth: str | None = None) -> int:
        if synth is None:
            return int(self._db.execute("SELECT count(*) FROM presets").fetchone()[0])
        return int(self._db.execute("SELECT count(*) FROM presets WHERE synth = ?", (synth,)).fetchone()[0])

    def synth_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT synth, count(*) FROM presets GROUP BY synth ORDER BY synth"))

    def rows(self, synth: str | None = None) -> list[int]:
        query, args = "SELECT row FROM presets", ()
        if synth is not None:
            query, args = query + " WHERE synth = ?", (synth,)
        return [r for (r,) in self._db.execute(query + " ORDER BY row", args)]

    def preset_id_set(self) -> set[str]:
        return {pid for (pid,) in self._db.execute("SELECT preset_id FROM presets")}

    def fingerprints(self) -> set[str]:
        return {f for (f,) in self._db.execute("SELECT fingerprint FROM presets")}

    def preset_ids(self, rows: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for start in range(0, len(rows), 500):
            chunk = list(rows[start : start + 500])
            marks = ",".join("?" * len(chunk))
            out.update(self._db.execute(f"SELECT row, preset_id FROM presets WHERE row IN ({marks})", chunk))
        return out

    def synth_by_row(self) -> dict[int, str]:
        return dict(self._db.execute("SELECT row, synth FROM presets"))

    def user_rows(self) -> set[int]:
        """Rows of the presets read from a user's files."""
        return {row for (row,) in self._db.execute(f"SELECT row FROM presets WHERE {_FROM_USER}")}

    def pitch_offsets(self) -> dict[int, float | None]:
        return dict(self._db.execute("SELECT row, pitch_offset FROM presets"))

    def search_columns(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For sorted ``rows``: each one's synth, pitch offset (NaN: none) and whether it was
        read from a user's files, in one pass (what a search filters and interpolates by)."""
        records = self._db.execute(f"SELECT row, synth, pitch_offset, {_FROM_USER} FROM presets").fetchall()
        records.sort()  # read from the covering index (presets_search), not the table and its blobs
        known = np.array([r[0] for r in records], dtype=np.int64)
        at = np.searchsorted(known, rows)
        found = (at < known.size) & (known[np.minimum(at, max(known.size - 1, 0))] == rows) if known.size else \
            np.zeros(rows.size, dtype=bool)
        synths = np.array([r[1] for r in records] or [""], dtype=object)
        offsets = np.array([np.nan if r[2] is None else r[2] for r in records] or [np.nan], dtype=np.float64)
        user = np.array([bool(r[3]) for r in records] or [False], dtype=bool)
        pick = np.where(found, at, 0)
        return (np.where(found, synths[pick], "").astype(str), np.where(found, offsets[pick], np.nan),
                found & user[pick])

    _COLUMNS = "row, preset_id, synth, name, category, tags, origin, vals, base_state, pitch_offset"

    def _decode(self, record: Sequence) -> StoredPreset:
        row, preset_id, synth, name, category, tags, origin, blob, state, offset = record
        order = self._param_order(synth)
        raw = np.frombuffer(blob, dtype=np.float32)
        values = get_engine(synth).params.complete(
            {n: float(v) for n, v in zip(order, raw) if n in get_engine(synth).params}
        )
        base_state = zlib.decompress(state).decode() if state is not None else None
        preset = Preset(synth, name, values, category=category, tags=tuple(json.loads(tags)), origin=origin,
                        base_state=base_state)
        return StoredPreset(row, preset_id, preset, offset)

    def get_rows(self, rows: Sequence[int]) -> dict[int, StoredPreset]:
        out: dict[int, StoredPreset] = {}
        for start in range(0, len(rows), 500):
            chunk = list(rows[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for record in self._db.execute(f"SELECT {self._COLUMNS} FROM presets WHERE row IN ({marks})", chunk):
                out[record[0]] = self._decode(record)
        return out

    def get_by_id(self, preset_id: str) -> StoredPreset | None:
        record = self._db.execute(f"SELECT {self._COLUMNS} FROM presets WHERE preset_id = ?", (preset_id,)).fetchone()
        return None if record is None else self._decode(record)

    def iter_presets(self, rows: Sequence[int] | None = None) -> Iterator[StoredPreset]:
        rows = self.rows() if rows is None else rows
        for start in range(0, len(rows), 256):
            chunk = self.get_rows(rows[start : start + 256])
            for row in rows[start : start + 256]:
                if row in chunk:
                    yield chunk[row]

    def listing(self, synth: str | None = None, category: str | None = None, *, user: bool = False) -> list[dict]:
        """Lightweight rows for ``presets list``: no parameter decoding. ``user``: only
        presets imported from the user's files, with the file each came from."""
        query = "SELECT preset_id, synth, name, category, tags, origin FROM presets WHERE 1=1"
        args: list[str] = []
        if synth:
            query += " AND synth = ?"
            args.append(synth)
        if category:
            query += " AND category = ?"
            args.append(category)
        if user:
            query += f" AND {_FROM_USER}"
        sources = self.sources()
        rows = []
        for pid, s, n, c, t, o in self._db.execute(query + " ORDER BY row", args):
            row = {"preset_id": pid, "synth": s, "name": n, "category": c, "tags": json.loads(t), "origin": o}
            if pid in sources:
                row["source"], row["source_sha1"], row["added"] = sources[pid]
            rows.append(row)
        return rows

    def vacuum(self) -> None:
        self._db.execute("VACUUM")

    def copy_to(self, path: Path) -> None:
        """A consistent copy of the whole store in a new file (SQLite's online backup)."""
        path.unlink(missing_ok=True)
        target = sqlite3.connect(str(path))
        try:
            self._db.commit()
            self._db.backup(target)
        finally:
            target.close()
