#!/usr/bin/env python
"""Retrieval alone (no re-ranking): how often a query's own preset is among the first k
candidates the index returns. A diagnostic for embedder work.

    python -m scripts.eval_retrieval --index /path/to/index --queries 200
    python -m scripts.eval_retrieval --compare-projection --synth vital --size 400
    python -m scripts.eval_retrieval --compare-projection --synth dexed --corpus corpus/

Queries are made like the benchmark's: a preset of the index at a note 3-6 semitones from
the indexed notes, velocity 40-127, note length 0.5-1.6 s, white noise at -30 dB. With
--compare-projection, two small indexes are built from the factory banks, with and without
the learned projection, and evaluated on the same queries; with --corpus, a third whose
projection also learns from the corpus's velocity pairs (``Corpus.velocity_pairs``, as many
pairs as the build renders training queries).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from patchpilot.audio.analysis import analyse_clip
from patchpilot.constants import DEFAULT_VELOCITY
from patchpilot.corpus import Corpus
from patchpilot.embed import get_embedder
from patchpilot.errors import InputAudioError
from patchpilot.index.builder import BuildPlan, IndexBuilder
from patchpilot.index.index import PresetIndex
from patchpilot.index.training import (
    TRAINING_QUERIES_PER_SYNTH,
    TrainingQuery,
    plan_queries,
    render_query,
)
from patchpilot.synths import RenderPool, get_engine

KS = (1, 10, 24, 48)


def evaluate(index_path: Path, queries: int, seed: int, synth: str | None) -> dict[int, float]:
    index = PresetIndex.open(index_path)
    embedder = get_embedder()
    rows = index.store.rows(synth)
    plans = plan_queries(rows, index.manifest.notes, queries, seed)
    # the benchmark's noise level, not the training range
    plans = [TrainingQuery(q.row, q.note, q.velocity, q.note_seconds, -30.0, q.seed) for q in plans]
    stored = index.presets([q.row for q in plans])
    ranks = []
    by_synth: dict[str, list[TrainingQuery]] = {}
    for q in plans:
        by_synth.setdefault(stored[q.row].preset.synth, []).append(q)
    for name, group in by_synth.items():
        with RenderPool(get_engine(name), 2) as pool:
            audios = list(pool.map(lambda voice, q: render_query(voice, stored[q.row].preset, q), group))
        for q, audio in zip(group, audios):
            try:
                note = analyse_clip(audio).best
            except InputAudioError:
                ranks.append(10**6)
                continue
            vector = index.transform.apply(embedder.features([note.samples]))[0]
            found = [c.row for c in index.search(vector, note.pitch.midi, synth=synth, k=max(KS))]
            ranks.append(found.index(q.row) if q.row in found else 10**6)
    ranks_array = np.array(ranks)
    return {k: float(np.mean(ranks_array < k)) for k in KS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synth", choices=("vital", "dexed"))
    parser.add_argument("--compare-projection", action="store_true")
    parser.add_argument("--size", type=int, default=400, help="presets per synth of the compared indexes")
    parser.add_argument("--corpus", type=Path, help="a `patchpilot corpus` folder for a third compared index")
    args = parser.parse_args()
    header = "| index | " + " | ".join(f"recall@{k}" for k in KS) + " |"
    print(header + "\n" + "|---" * (len(KS) + 1) + "|")
    if args.compare_projection:
        synths = (args.synth,) if args.synth else ("vital", "dexed")
        with tempfile.TemporaryDirectory() as tmp:
            ways = [("PCA only", False, None), ("PCA + learned projection", True, None)]
            if args.corpus:
                pairs = Corpus.open(args.corpus).velocity_pairs(list(synths), TRAINING_QUERIES_PER_SYNTH * len(synths),
                                                                args.seed, DEFAULT_VELOCITY)
                ways.append((f"PCA + learned projection + {len(pairs[0])} corpus velocity pairs", True, pairs))
            for number, (label, learn, pairs) in enumerate(ways):
                out = Path(tmp) / f"idx-{number}"
                IndexBuilder(BuildPlan(output=out, synths=synths, size_per_synth=args.size, learn_projection=learn),
                             projection_pairs=pairs).build()
                result = evaluate(out, args.queries, args.seed, args.synth)
                print(f"| {label} | " + " | ".join(f"{result[k]:.3f}" for k in KS) + " |", flush=True)
    else:
        result = evaluate(args.index, args.queries, args.seed, args.synth)
        print(f"| {args.index} | " + " | ".join(f"{result[k]:.3f}" for k in KS) + " |")


if __name__ == "__main__":
    main()
