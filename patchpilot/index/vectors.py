"""The FAISS file of an index, exact or approximate by size.

Every preset has one fp16 vector per indexed note, with FAISS id ``row * SLOT_STRIDE + slot``.
Below APPROXIMATE_FROM vectors the search is exact (a flat scan: 11k presets x 5 notes take
about a millisecond). From there on it is an inverted file (IVF) of fp16 vectors: k-means
cells trained at build time, and the number of cells a query visits (``nprobe``) chosen at
build time as the fewest that find APPROXIMATE_RECALL of the exact search's entries for
queries near the index's own vectors. The manifest records which (``vectors``, ``nprobe``).
An approximate index also keeps its vectors as one fp16 array (DENSE_NAME) that readers map
from disk instead of decoding them out of the inverted lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: FAISS ids are ``row * SLOT_STRIDE + slot``.
SLOT_STRIDE = 8
#: Beside an approximate index's FAISS file: its vectors, (rows in row order, slots, dim) fp16.
DENSE_NAME = "vectors-dense.npy"
#: From this many vectors (presets x indexed notes) on, the index is approximate.
APPROXIMATE_FROM = 250_000
#: Share of the exact coarse search's entries the approximate one must find, on queries
#: near the index's own vectors, when its ``nprobe`` is chosen.
APPROXIMATE_RECALL = 0.99
#: Entries a query's coarse search returns (``index.search`` re-scores their presets).
COARSE_ENTRIES = 400
#: Queries that choose ``nprobe``, and their spread around an indexed vector (per
#: dimension; unit vectors of 64 dimensions, about the spread of a preset's own renders).
PROBE_QUERIES = 256
PROBE_NOISE = 0.04
NPROBE_CHOICES = (4, 8, 16, 32, 64, 128, 256, 512)


def import_faiss() -> Any:
    import faiss

    # One thread: on 2 shared cores OpenMP threads fight the render threads.
    faiss.omp_set_num_threads(1)
    return faiss


@dataclass(frozen=True)
class VectorKind:
    """How an index's vectors are searched: ``exact``, or ``ivf`` visiting ``nprobe`` cells."""

    name: str = "exact"
    nprobe: int = 0


def write_vectors(path: Path, rows: np.ndarray, vectors: np.ndarray, *, approximate_from: int = APPROXIMATE_FROM,
                  seed: int = 0) -> VectorKind:
    """Write the FAISS file for ``vectors`` (rows, slots, dim) of ``rows``; returns its kind."""
    faiss = import_faiss()
    count, slots, dim = vectors.shape
    flat = np.ascontiguousarray(vectors.reshape(-1, dim), dtype=np.float32)
    ids = (np.asarray(rows, dtype=np.int64)[:, None] * SLOT_STRIDE + np.arange(slots)).ravel()
    if flat.shape[0] < approximate_from:
        kind = VectorKind()
        inner = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    else:
        inner = _trained_ivf(flat, seed)
    index = faiss.IndexIDMap2(inner)
    if count:
        index.add_with_ids(flat, ids)
    if flat.shape[0] >= approximate_from:
        kind = VectorKind("ivf", _choose_nprobe(index, flat, seed))
        order = np.argsort(np.asarray(rows), kind="stable")
        with open(path.with_name(DENSE_NAME), "wb") as handle:
            np.save(handle, np.asarray(vectors, dtype=np.float32)[order].astype(np.float16))
    faiss.write_index(index, str(path))
    return kind


def read_vectors(path: Path, slots: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """The FAISS index, its rows (sorted) and their vectors (rows, slots, dim) as fp16: mapped
    from DENSE_NAME where the index has one, else decoded from the FAISS file."""
    faiss = import_faiss()
    index = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    rows, at = np.unique(ids // SLOT_STRIDE, return_inverse=True)
    dense = path.with_name(DENSE_NAME)
    if dense.exists():
        vectors = np.load(dense, mmap_mode="r")
        if vectors.shape[:2] != (rows.size, slots):
            raise ValueError(f"{dense.name} holds {vectors.shape[:2]} vectors, the FAISS file {(rows.size, slots)}")
        return index, rows, vectors
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexIVF):
        inner.make_direct_map()
    flat = inner.reconstruct_n(0, inner.ntotal)
    vectors = np.zeros((rows.size, slots, flat.shape[1]), dtype=np.float16)
    vectors[at, ids % SLOT_STRIDE] = flat
    if isinstance(inner, faiss.IndexIVF):
        inner.set_direct_map_type(faiss.DirectMap.NoMap)
    return index, rows, vectors


def _trained_ivf(flat: np.ndarray, seed: int) -> Any:
    """An inverted file of fp16 vectors trained on ``flat``: about 4 sqrt(n) cells, with at
    least 39 training vectors each (FAISS' k-means asks for that many)."""
    faiss = import_faiss()
    cells = max(1, min(int(4 * np.sqrt(flat.shape[0])), flat.shape[0] // 39, 65536))
    quantizer = faiss.IndexFlatIP(flat.shape[1])
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, flat.shape[1], cells, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = seed
    sample = np.random.default_rng(seed).choice(flat.shape[0], min(flat.shape[0], 40 * cells), replace=False)
    ivf.train(flat[np.sort(sample)])
    return ivf


def probe_queries(flat: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Unit queries near randomly chosen indexed vectors."""
    rng = np.random.default_rng(seed + 1)
    queries = flat[rng.choice(flat.shape[0], count, replace=False)] + rng.normal(0, PROBE_NOISE, (count, flat.shape[1]))
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def exact_neighbours(flat: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest inner products of each query (brute force, in blocks)."""
    out = []
    for first in range(0, len(queries), 32):
        scores = queries[first:first + 32] @ flat.T
        out.append(np.argpartition(-scores, k - 1, axis=1)[:, :k])
    return np.concatenate(out)


def _choose_nprobe(index: Any, flat: np.ndarray, seed: int) -> int:
    """The fewest cells to visit that find APPROXIMATE_RECALL of the exact coarse search."""
    faiss = import_faiss()
    k = min(COARSE_ENTRIES, flat.shape[0])
    queries = probe_queries(flat, min(PROBE_QUERIES, flat.shape[0]), seed)
    exact = exact_neighbours(flat, queries, k)
    ids = faiss.vector_to_array(index.id_map)
    for nprobe in NPROBE_CHOICES:
        _, found = index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        recall = np.mean([np.isin(ids[e], f).mean() for e, f in zip(exact, found)])
        if recall >= APPROXIMATE_RECALL:
            return nprobe
    return NPROBE_CHOICES[-1]


def search_parameters(kind: VectorKind, selector: Any | None) -> Any | None:
    """FAISS search parameters: the cells to visit and the ids allowed."""
    faiss = import_faiss()
    if kind.name == "ivf":
        return faiss.SearchParametersIVF(sel=selector, nprobe=kind.nprobe) if selector is not None else \
            faiss.SearchParametersIVF(nprobe=kind.nprobe)
    return faiss.SearchParameters(sel=selector) if selector is not None else None
