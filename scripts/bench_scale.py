#!/usr/bin/env python
"""Search at scale: an index of 1M vectors, exact against approximate (``index/vectors.py``).

    python -m scripts.bench_scale                  # 200,000 presets x 5 notes = 1M vectors
    python -m scripts.bench_scale --presets 20000 --no-report

The index is made from the shipped one: its store copied until it holds ``--presets`` presets
(each copy a new preset id), and each copy's vectors its original's moved by Gaussian noise
(0.05 a dimension, then unit length), so the vectors keep the families and pitch structure of
real presets. Both kinds are written by the build's own ``write_vectors`` (the approximate one
trained and its ``nprobe`` chosen as a build does) and searched through ``PresetIndex.search``
(coarse FAISS search, then pitch interpolation), each in a fresh process: load time (open and
first search), latency of 200 queries after 20 warm-ups (p50/p99; all synths, and one synth),
peak RSS of that process. Queries: 200 indexed presets' vectors interpolated to a random pitch
of their range, moved by noise of the same size, never used to choose ``nprobe``. Recall@24:
the share of exact search's 24 presets the approximate search returns.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy's first import

import numpy as np

from scripts.bench_match.report import header, write_section

from patchpilot.index.index import PresetIndex
from patchpilot.index.layout import STORE_NAME, TRANSFORM_NAME, VECTORS_NAME
from patchpilot.index.store import PresetStore
from patchpilot.index.vectors import VectorKind, write_vectors
from patchpilot.paths import MANIFEST_NAME, default_index_dir

NOISE = 0.05
QUERIES = 200
WARMUP = 20
K = 24

SEARCH_SCRIPT = """
import json, sys, time
import numpy as np
from pathlib import Path
from patchpilot.index.index import PresetIndex
folder, queries_file, synth = Path(sys.argv[1]), sys.argv[2], sys.argv[3] or None
data = np.load(queries_file)
started = time.perf_counter()
index = PresetIndex.open(folder)
index.search(data["vectors"][0], float(data["pitches"][0]), k=24)
load = time.perf_counter() - started
for v, p in zip(data["vectors"][:20], data["pitches"][:20]):
    index.search(v, float(p), k=24, synth=synth)
seconds, found = [], []
for v, p in zip(data["vectors"], data["pitches"]):
    started = time.perf_counter()
    got = index.search(v, float(p), k=24, synth=synth)
    seconds.append(time.perf_counter() - started)
    found.append([c.row for c in got])
# the peak of this process' own memory (ru_maxrss would also count the parent's, kept across exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"load": load, "seconds": seconds, "found": found, "rss_mb": peak / 1024}))
"""


def grown_index(source: Path, target: Path, presets: int, seed: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """A copy of ``source`` grown to ``presets`` presets; returns its rows, vectors and notes."""
    with PresetIndex.open(source) as index:
        files = index.files
        data = index._vectors  # the index's own vectors are what is grown
        base_rows, base_vectors = data["rows"], data["vectors"]
        notes = index.manifest.notes
        manifest = json.loads((files / MANIFEST_NAME).read_text())
    target.mkdir(parents=True)
    shutil.copy2(files / TRANSFORM_NAME, target / TRANSFORM_NAME)
    shutil.copy2(files / STORE_NAME, target / STORE_NAME)
    copies = -(-presets // len(base_rows))
    with sqlite3.connect(target / STORE_NAME) as db:
        columns = "synth, name, category, tags, origin, vals, base_state, fingerprint, pitch_offset"
        for copy in range(1, copies):
            db.execute(f"INSERT INTO presets (preset_id, {columns}) SELECT preset_id || '#{copy}', {columns} "
                       "FROM presets WHERE preset_id NOT LIKE '%#%'")
        db.execute(f"DELETE FROM presets WHERE row IN (SELECT row FROM presets ORDER BY row LIMIT -1 OFFSET {presets})")
        rows_and_ids = db.execute("SELECT row, preset_id FROM presets ORDER BY row").fetchall()
        synth_counts = dict(db.execute("SELECT synth, COUNT(*) FROM presets GROUP BY synth").fetchall())
    original = {int(r): i for i, r in enumerate(base_rows)}
    by_id = {}
    with sqlite3.connect(target / STORE_NAME) as db:
        by_id = dict(db.execute("SELECT preset_id, row FROM presets WHERE preset_id NOT LIKE '%#%'").fetchall())
    rng = np.random.default_rng(seed)
    rows, sources = [], []
    for row, preset_id in rows_and_ids:
        base_row = by_id.get(preset_id.split("#")[0])
        if base_row is None or int(base_row) not in original:
            continue  # a preset the index left out (silent, duplicate)
        rows.append(row)
        sources.append(original[int(base_row)])
    rows = np.asarray(rows, dtype=np.int64)
    vectors = base_vectors[sources] + np.where(np.asarray([r not in original for r in rows])[:, None, None],
                                               rng.normal(0, NOISE, (len(rows), *base_vectors.shape[1:])), 0.0)
    vectors = (vectors / np.linalg.norm(vectors, axis=2, keepdims=True)).astype(np.float32)
    PresetStore(target / STORE_NAME).close()  # its indexes, as a build's store has them
    manifest["synths"] = synth_counts
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return rows, vectors, notes


def write_kind(folder: Path, rows: np.ndarray, vectors: np.ndarray, approximate: bool) -> tuple[VectorKind, float]:
    started = time.perf_counter()
    kind = write_vectors(folder / VECTORS_NAME, rows, vectors, approximate_from=0 if approximate else 10**12)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["vectors"], manifest["nprobe"] = kind.name, kind.nprobe
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return kind, time.perf_counter() - started


def queries(vectors: np.ndarray, notes: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 99)
    chosen = rng.choice(len(vectors), QUERIES, replace=False)
    pitches = rng.uniform(notes[0], notes[-1], QUERIES)
    out = []
    for row, pitch in zip(chosen, pitches):
        u = (pitch - notes[0]) / (notes[1] - notes[0])
        lower = min(int(u), len(notes) - 2)
        w = u - lower
        v = (1 - w) * vectors[row, lower] + w * vectors[row, lower + 1] + rng.normal(0, NOISE, vectors.shape[-1])
        out.append(v / np.linalg.norm(v))
    return np.asarray(out, dtype=np.float32), pitches


def run_search(folder: Path, queries_file: Path, synth: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SEARCH_SCRIPT, str(folder), str(queries_file), synth],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "index"
        rows, vectors, notes = grown_index(default_index_dir(), folder, args.presets, args.seed)
        query_vectors, pitches = queries(vectors, notes, args.seed)
        queries_file = Path(tmp) / "queries.npz"
        np.savez(queries_file, vectors=query_vectors, pitches=pitches)
        results = {}
        for approximate in (False, True):
            kind, seconds = write_kind(folder, rows, vectors, approximate)
            for synth in ("", "dexed"):
                results[(kind.name, synth)] = run_search(folder, queries_file, synth) | {
                    "write": seconds, "nprobe": kind.nprobe, "size_mb": (folder / VECTORS_NAME).stat().st_size / 2**20}
                print(f"  {kind.name} {synth or 'all'}: p50 {np.median(results[(kind.name, synth)]['seconds']) * 1000:.1f} ms",
                      file=sys.stderr)
    lines = ["| index | nprobe | search over | p50 | p99 | recall@24 vs exact | load (open + first search) | "
             "peak RSS | vector file | written in |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (name, synth), r in results.items():
        exact = results[("exact", synth)]["found"]
        recall = np.mean([len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(r["found"], exact)])
        ms = np.asarray(r["seconds"]) * 1000
        lines.append(f"| {name} | {r['nprobe'] or '-'} | {synth or 'all synths'} | {np.percentile(ms, 50):.1f} ms | "
                     f"{np.percentile(ms, 99):.1f} ms | {recall:.3f} | {r['load']:.2f} s | {r['rss_mb']:.0f} MB | "
                     f"{r['size_mb']:.0f} MB | {r['write']:.0f} s |")
    command = f"python -m scripts.bench_scale --presets {args.presets} --seed {args.seed}"
    text = (header(f"Search at scale: {len(rows) * len(notes):,} vectors ({len(rows):,} presets x {len(notes)} notes)",
                   command)
            + "\n" + __doc__.split("\n\n", 2)[2].strip().replace("\n", " ") + "\n\n" + "\n".join(lines) + "\n")
    if args.no_report:
        print(text)
    else:
        write_section("scale", text)


if __name__ == "__main__":
    main()
