"""The index's vectors, exact below a size and approximate (IVF) above it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from patchpilot.index.index import PresetIndex
from patchpilot.index.vectors import (SLOT_STRIDE, exact_neighbours, import_faiss, probe_queries, search_parameters,
                                      write_vectors)


def _clustered(rows: int, slots: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters, as families of presets make them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((rows // 20, dim))
    vectors = centres[rng.integers(0, len(centres), rows)][:, None, :] + 0.4 * rng.standard_normal((rows, slots, dim))
    return (vectors / np.linalg.norm(vectors, axis=2, keepdims=True)).astype(np.float32)


def test_a_large_index_is_approximate_and_finds_what_exact_search_finds(tmp_path: Path) -> None:
    faiss = import_faiss()
    vectors = _clustered(6000, 4)
    rows = np.arange(10, 6010)
    kind = write_vectors(tmp_path / "v.faiss", rows, vectors, approximate_from=20_000)
    assert kind.name == "ivf" and kind.nprobe >= 1
    index = faiss.read_index(str(tmp_path / "v.faiss"))
    assert isinstance(faiss.downcast_index(index.index), faiss.IndexIVF)
    flat = vectors.reshape(-1, vectors.shape[-1])
    queries = probe_queries(flat, 64, seed=7)  # not the queries nprobe was chosen on
    ids = (rows[:, None] * SLOT_STRIDE + np.arange(4)).ravel()
    exact = exact_neighbours(flat, queries, 24)
    _, found = index.search(queries, 24, params=search_parameters(kind, None))
    recall = np.mean([np.isin(ids[e], f).mean() for e, f in zip(exact, found)])
    assert recall >= 0.95
    # a synth's selector still applies
    allowed = ids[ids % 2 == 0]
    _, some = index.search(queries, 24, params=search_parameters(kind, faiss.IDSelectorBatch(allowed)))
    assert np.isin(some[some >= 0], allowed).all()


def test_a_small_index_stays_exact(tmp_path: Path, tiny_index: Path) -> None:
    kind = write_vectors(tmp_path / "v.faiss", np.arange(100), _clustered(100, 3))
    assert kind.name == "exact" and kind.nprobe == 0
    with PresetIndex.open(tiny_index) as index:
        assert index.manifest.vectors == "exact"


def test_an_approximate_index_is_searched_as_the_exact_one(tmp_path: Path, tiny_index: Path) -> None:
    import json
    import warnings

    from conftest import copy_index

    from patchpilot.index.layout import VECTORS_NAME
    from patchpilot.index.vectors import DENSE_NAME
    from patchpilot.paths import MANIFEST_NAME

    files = copy_index(tiny_index, tmp_path / "copy")
    with PresetIndex.open(tiny_index) as exact:
        rows, vectors = exact._vectors["rows"], np.asarray(exact._vectors["vectors"], dtype=np.float32)
        queries = [(vectors[i, 1], 60.0) for i in range(0, len(rows), 3)]
        expected = [[c.row for c in exact.search(v, m, k=5)] for v, m in queries]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FAISS asks for more training points than a tiny index has
        kind = write_vectors(files / VECTORS_NAME, rows, vectors, approximate_from=0)
    manifest = json.loads((files / MANIFEST_NAME).read_text())
    (files / MANIFEST_NAME).write_text(json.dumps(manifest | {"vectors": kind.name, "nprobe": kind.nprobe}))
    assert (files / DENSE_NAME).exists()
    with PresetIndex.open(tmp_path / "copy") as approximate:
        assert approximate.manifest.vector_kind == kind and kind.name == "ivf"
        assert isinstance(approximate._vectors["vectors"], np.memmap)  # mapped, not decoded
        got = [[c.row for c in approximate.search(v, m, k=5)] for v, m in queries]
    assert np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(got, expected)]) >= 0.95


def test_a_synths_search_by_overfetching_returns_what_the_filtered_search_does(
        tiny_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import patchpilot.index.index as index_module

    with PresetIndex.open(tiny_index) as index:
        vectors = np.asarray(index._vectors["vectors"], dtype=np.float32)
        queries = [(vectors[i, 1], 60.0 + i % 7) for i in range(0, len(vectors), 2)]
        monkeypatch.setattr(index_module, "COARSE_ENTRIES", 6)
        filtered = [[c.row for c in index.search(v, m, k=4, synth="dexed")] for v, m in queries]
        monkeypatch.setattr(index_module, "OVERFETCH_FROM", 0)
        object.__setattr__(index.manifest, "vectors", "ivf")  # searched as an approximate index would be
        monkeypatch.setattr(index_module, "OVERFETCH_MIN_SHARE", 0.0)
        calls = []
        original = index._filtered_by_overfetch
        monkeypatch.setattr(index, "_filtered_by_overfetch", lambda *a: calls.append(r := original(*a)) or r)
        overfetched = [[c.row for c in index.search(v, m, k=4, synth="dexed")] for v, m in queries]
    assert any(r is not None for r in calls)  # the over-fetch answered
    assert overfetched == filtered
