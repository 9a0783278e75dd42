"""From raw features to a complete index folder: the projection (PCA, then the learned
discriminant), duplicate variants dropped, FAISS vectors, the store's copy, the manifest.

Everything is written into a fresh folder; the work folder's store and chunks are only read,
so an interrupted assembly simply runs again.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpilot import __version__
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_VELOCITY, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS
from patchpilot.embed import Embedder
from patchpilot.embed.timbre import TimbreEmbedder
from patchpilot.embed.transform import FeatureTransform
from patchpilot.errors import UsageError
from patchpilot.index.features import LoadedFeatures
from patchpilot.index.index import STORE_NAME, TRANSFORM_NAME, VECTORS_NAME, Manifest, PresetIndex
from patchpilot.index.sketches import SKETCHES_NAME, write_sketches
from patchpilot.index.vectors import write_vectors
from patchpilot.index.layout import checkpoint
from patchpilot.index.store import PresetStore
from patchpilot.index.training import fit_discriminant, interpolate
from patchpilot.paths import MANIFEST_NAME

#: A variant closer to a sibling than this fraction of the typical distance between a query
#: and its own preset is a duplicate; without training queries, a fixed distance is used.
DUPLICATE_FRACTION = 0.5
DUPLICATE_FALLBACK = 0.05


@dataclass(frozen=True)
class Assembly:
    """What to assemble: the notes and size of the projection, and whether to learn it."""

    notes: tuple[int, ...]
    dim: int
    learn_projection: bool


def assemble(target: Path, store: PresetStore, loaded: LoadedFeatures, training: dict | None, spec: Assembly,
             embedder: Embedder, base: PresetIndex | None) -> list[int]:
    """Write a complete index into the empty folder ``target``; returns the rows left out
    (silent, failed or duplicate). ``base``: the index appended to (its transform and
    vectors are kept)."""
    rows, raw, offsets, sketches = loaded.rows, loaded.features, loaded.offsets, loaded.sketches
    skipped = list(loaded.skipped)
    slots = len(spec.notes)
    if base is not None:
        transform = base.transform
        new_vectors = (transform.apply(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), slots, -1) if len(rows)
                       else np.zeros((0, slots, transform.dim), np.float32))
    else:
        if len(rows) == 0:
            raise UsageError("every preset rendered silent or failed: nothing to index")
        flat = raw.reshape(-1, raw.shape[-1])
        if not embedder.fits_projection:  # e.g. CLAP: its own vectors, flat cosine search
            transform = FeatureTransform.identity(raw.shape[-1])
            new_vectors = transform.apply(flat).reshape(len(rows), slots, -1)
        else:
            transform = FeatureTransform.fit(flat, TimbreEmbedder.block_weights(), spec.dim)
            spread = None
            if spec.learn_projection and training is not None:
                transform, spread = _discriminant(transform, rows, raw, training, spec.notes)
            new_vectors = transform.apply(flat).reshape(len(rows), slots, -1)
            # variants nobody could tell from a sibling are dropped (user presets are kept)
            threshold = DUPLICATE_FRACTION * spread if spread is not None else DUPLICATE_FALLBACK
            keep = _distinct(rows, new_vectors, store, threshold)
            skipped += [int(r) for r in rows[~keep]]
            rows, new_vectors, offsets, sketches = rows[keep], new_vectors[keep], offsets[keep], sketches[keep]
    target.mkdir(parents=True)
    store.copy_to(target / STORE_NAME)
    checkpoint("assemble")
    with PresetStore(target / STORE_NAME) as copy:
        copy.delete_rows(skipped)
        copy.set_pitch_offsets((int(r), None if np.isnan(o) else float(o)) for r, o in zip(rows, offsets))
        copy.vacuum()
        counts = copy.synth_counts()
    if base is not None:
        old = base._vectors  # noqa: SLF001 - the index package's own vectors, carried over
        all_rows, vectors = np.concatenate([old["rows"], rows]), np.concatenate([old["vectors"], new_vectors])
    else:
        all_rows, vectors = rows, new_vectors
    kind = write_vectors(target / VECTORS_NAME, all_rows, vectors)
    old_sketches = base.sketches if base is not None else None
    if old_sketches is not None:  # an index appended to keeps its presets' sketches
        rows, sketches = np.concatenate([old_sketches.rows, rows]), np.concatenate([old_sketches.data, sketches])
    write_sketches(target / SKETCHES_NAME, rows, sketches)
    transform.save(target / TRANSFORM_NAME)
    manifest = Manifest(
        embedder=embedder.identity,
        dim=transform.dim,
        notes=tuple(spec.notes),
        note_seconds=INDEX_NOTE_SECONDS,
        render_seconds=INDEX_RENDER_SECONDS,
        velocity=DEFAULT_VELOCITY,
        sample_rate=ANALYSIS_SAMPLE_RATE_HZ,
        synths=counts,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        patchpilot_version=__version__,
        vectors=kind.name,
        nprobe=kind.nprobe,
    )
    (target / MANIFEST_NAME).write_text(manifest.to_json())  # last: a folder with a manifest is complete
    return skipped


def _discriminant(transform: FeatureTransform, rows: np.ndarray, raw: np.ndarray, training: dict,
                  notes: Sequence[int]) -> tuple[FeatureTransform, float | None]:
    """Follow the PCA with the projection learned from the training queries. Also returns
    the median distance of a training query from its own preset in the final space."""
    residuals = _residuals(transform, rows, raw, training, notes)
    if len(residuals) < 2 * transform.dim:
        return transform, None  # too few queries to estimate the scatter (tiny indexes)
    index_vectors = transform.project(raw.reshape(-1, raw.shape[-1]))
    learned = transform.then(fit_discriminant(index_vectors, residuals))
    return learned, _query_spread(learned, rows, raw, training, notes)


def _residuals(transform: FeatureTransform, rows: np.ndarray, raw: np.ndarray, training: dict,
               notes: Sequence[int]) -> np.ndarray:
    """Training queries minus their own preset's vector interpolated to the played note."""
    position = {int(r): i for i, r in enumerate(rows)}
    projected = transform.project(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), len(notes), -1)
    queries = transform.project(training["features"]) if len(training["features"]) else np.zeros((0, transform.dim))
    out = [q - interpolate(projected[position[int(row)]], notes, played)
           for q, row, played in zip(queries, training["rows"], training["played"]) if int(row) in position]
    residuals = np.array(out).reshape(len(out), transform.dim)
    if "pairs" in training and len(training["pairs"][0]):  # e.g. a corpus's Corpus.velocity_pairs
        first, second = training["pairs"]
        residuals = np.concatenate([residuals, transform.project(first) - transform.project(second)])
    return residuals


def _query_spread(transform: FeatureTransform, rows: np.ndarray, raw: np.ndarray, training: dict,
                  notes: Sequence[int]) -> float | None:
    """Median distance (unit vectors) between a training query and its own preset's vector
    interpolated to the played note: how far apart renders of one preset land."""
    position = {int(r): i for i, r in enumerate(rows)}
    vectors = transform.apply(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), len(notes), -1)
    queries = transform.apply(training["features"]) if len(training["features"]) else np.zeros((0, transform.dim))
    distances = []
    for query, row, played in zip(queries, training["rows"], training["played"]):
        if int(row) in position:
            own = interpolate(vectors[position[int(row)]], notes, played)
            distances.append(float(np.linalg.norm(query - own / max(np.linalg.norm(own), 1e-12))))
    return float(np.median(distances)) if distances else None


def _distinct(rows: np.ndarray, vectors: np.ndarray, store: PresetStore, threshold: float) -> np.ndarray:
    """Mask that drops presets sounding like an earlier member of their family (a designed
    preset and its variants): closer to it, on average over the indexed notes, than
    ``threshold``. A variant nobody could tell from its sibling helps no search."""
    if rows.size == 0:
        return np.ones(0, dtype=bool)
    ids = store.preset_ids(rows.tolist())
    families: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        families[ids[int(row)].split("~")[0]].append(i)
    keep = np.ones(len(rows), dtype=bool)
    for members in families.values():
        kept: list[int] = []
        for i in members:
            if kept and np.linalg.norm(vectors[kept] - vectors[i], axis=2).mean(axis=1).min() < threshold:
                keep[i] = False
            else:
                kept.append(i)
    return keep

