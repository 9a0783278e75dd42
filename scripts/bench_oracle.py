#!/usr/bin/env python
"""The oracle: the best preset the library holds for a sound, against what ``match`` returns.

    python -m scripts.bench_oracle --dexed 24 --vital 12        # writes the "oracle" section
    python -m scripts.bench_oracle --dexed 4 --vital 2 --no-report

Inputs: General MIDI notes of the out-of-domain section (both SoundFonts, evenly spread; the
Vital inputs are every other DX7 input). For each input and synth, every preset of that synth
in the index is rendered at the input's pitch (its key moved by the preset's pitch offset),
the input's velocity (100) and length (held 1.2 s, 2.4 s in all, 44.1 kHz) and scored against
the input with MR-STFT and MSS; the best 8 by each are scored again from their exported file
on a fresh synth, as the user would load them, and the lowest of those is the oracle. The scores depend only on the input, the index and this protocol, so they are
cached (``--cache``) and a re-run after a change of ``match`` only matches again.

The answer is ``match --synth S --top-k 1`` played as the user gets it (its file on a fresh
synth, its note, velocity and effect chain). Reported per synth: retrieval recall (the
oracle's best preset among the presets the re-ranker heard), the rank of the answer's preset
among all presets by the oracle's scores, and retrieval loss (answer / oracle - 1), each metric
on its own. A loss below 0 is possible: the answer's velocity and effect chain are searched,
the oracle's are the input's. Retrieval's routes: the lowest exhaustive score among the first
presets by vector and among the first by sketch (the numbers the re-ranker hears from each),
over the lowest of all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy's first import

import numpy as np

from scripts.bench_match.gm import (GM_NOTE_SECONDS, GM_TOTAL_SECONDS, gm_note_list, gm_note_wav, gm_target,
                                    ood_soundfonts)
from scripts.bench_match.report import header, write_section

from patchpilot.api import PatchPilot
from patchpilot.audio.analysis import Note
from patchpilot.constants import DEFAULT_RERANK_CANDIDATES, DEFAULT_VELOCITY
from patchpilot.embed.sketch import sketch_db, windows_held
from patchpilot.matching.retrieval import SKETCH_CANDIDATES
from patchpilot.index.store import StoredPreset
from patchpilot.metrics import Yardstick
from patchpilot.paths import default_index_dir
from patchpilot.synths import RenderPool, RenderRequest, get_engine

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "patchpilot-bench-oracle"
PROTOCOL = f"v1 velocity {DEFAULT_VELOCITY} held {GM_NOTE_SECONDS} total {GM_TOTAL_SECONDS} 44.1k fresh voices"
CHUNK = 128
#: The best presets by each metric scored again from their file on a fresh synth.
RESCORED = 8
METRICS = ("MR-STFT", "MSS")


def inputs(dexed: int, vital: int) -> list[tuple[str, int, int, str, bool]]:
    """(label, program, note, soundfont, with Vital) for each input."""
    every = [(label, program, note, font) for font in ood_soundfonts() for label, program, note in gm_note_list()]
    chosen = [every[round(i * len(every) / dexed)] for i in range(dexed)]
    return [(*item, i % 2 == 0 and i // 2 < vital) for i, item in enumerate(chosen)]


def exhaustive(pilot: PatchPilot, synth: str, target: np.ndarray, rate: int, pitch: int, cache: Path, workers: int
               ) -> tuple[list[str], np.ndarray]:
    """Every preset of ``synth`` scored against ``target`` (MIDI note ``pitch``) by the
    protocol: (ids, (n, 2) scores)."""
    store = pilot.index.store
    key = hashlib.sha1(target.astype(np.float32).tobytes() + f"{PROTOCOL} {synth} {pitch}".encode()
                       + (pilot.index.path / "manifest.json").read_bytes()).hexdigest()[:16]
    path = cache / f"{synth}-{key}.npz"
    if path.exists():
        saved = np.load(path)
        return [str(i) for i in saved["ids"]], saved["scores"]
    stored = list(store.iter_presets(store.rows(synth)))
    engine = get_engine(synth)
    yardstick = Yardstick(target, rate)
    scores = np.zeros((len(stored), 2))
    started = time.perf_counter()
    with RenderPool(engine, workers, sample_rate=rate) as pool, ThreadPoolExecutor(workers) as scorers:
        for first in range(0, len(stored), CHUNK):
            chunk = stored[first:first + CHUNK]
            pool.reset()  # fresh voices every chunk: what a preset plays does not depend on the order
            renders = pool.render([RenderRequest(sp.preset, int(np.clip(round(pitch - (sp.pitch_offset or 0.0)), 0, 127)),
                                                 DEFAULT_VELOCITY, GM_NOTE_SECONDS, GM_TOTAL_SECONDS) for sp in chunk])
            scores[first:first + len(chunk)] = list(scorers.map(yardstick, renders))
            print(f"\r  oracle {synth}: {first + len(chunk)}/{len(stored)} presets, "
                  f"{time.perf_counter() - started:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)
    ids = [sp.preset_id for sp in stored]
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.npz")
    np.savez(partial, ids=np.asarray(ids), scores=scores)
    partial.replace(path)
    return ids, scores


def fresh_score(stored: StoredPreset, target: np.ndarray, rate: int, pitch: int) -> tuple[float, float]:
    """A preset scored by the protocol from a fresh synth, as the user would load it."""
    engine = get_engine(stored.preset.synth)
    audio = engine.render(stored.preset, int(np.clip(round(pitch - (stored.pitch_offset or 0.0)), 0, 127)),
                          DEFAULT_VELOCITY, GM_NOTE_SECONDS, GM_TOTAL_SECONDS, sample_rate=rate)
    return Yardstick(target, rate, np.float64)(audio)


def routes(pilot: PatchPilot, note: Note, synth: str, ids: list[str], scores: np.ndarray) -> dict:
    """How good each retrieval route's first candidates are for ``note`` (as ``match`` read
    it): the lowest exhaustive score among the first DEFAULT_RERANK_CANDIDATES presets by
    vector and among the first SKETCH_CANDIDATES by sketch, relative to the lowest of all
    (per metric; None without sketches)."""
    index = pilot.index
    vector = pilot.matcher.retrieval.vector(note)
    position = {preset_id: i for i, preset_id in enumerate(ids)}
    best = scores.min(axis=0)

    def quality(candidates: list) -> list[float]:
        found = index.presets([c.row for c in candidates])
        at = [position[found[c.row].preset_id] for c in candidates if c.row in found]
        return [float(scores[at, m].min() / best[m] - 1.0) for m in range(2)]

    by_vector = index.search(vector, note.pitch.midi, synth=synth, k=DEFAULT_RERANK_CANDIDATES)
    by_sketch = (index.search_sketches(vector, sketch_db(note.samples, note.sample_rate), note.pitch.midi,
                                       synth=synth, k=SKETCH_CANDIDATES, windows=windows_held(note.release_at))
                 if index.sketches is not None else [])
    return {"by_vector": quality(by_vector), "by_sketch": quality(by_sketch) if by_sketch else None}


def answer(pilot: PatchPilot, wav: Path, synth: str, target: np.ndarray, rate: int) -> tuple[dict, Note]:
    """``match --synth S --top-k 1``, scored as the user hears it, with what the re-ranker
    heard; and the note it matched."""
    started = time.perf_counter()
    result = pilot.match(wav, top_k=1, synth=synth)
    seconds = time.perf_counter() - started
    top = result.matches[0]
    engine = get_engine(synth)
    audio = top.fx.apply(engine.render(top.preset, top.render.note, top.render.velocity, GM_NOTE_SECONDS,
                                       GM_TOTAL_SECONDS, sample_rate=rate), rate)
    scored = {"preset": top.preset_id, "scores": list(Yardstick(target, rate, np.float64)(audio)),
              "considered": list(result.considered), "velocity": top.render.velocity, "seconds": seconds}
    return scored, result.analysis.best


def run(index: Path, dexed: int, vital: int, cache: Path, workers: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index, workers=workers) as pilot:
        store = pilot.index.store
        library = {synth: {sp.preset_id: sp for sp in store.iter_presets(store.rows(synth))}
                   for synth in ("dexed", "vital")}
        chosen = inputs(dexed, vital)
        for synth in ("dexed", "vital"):  # one synth after the other: DX7 figures come first
            for label, program, note, font, with_vital in chosen:
                if synth == "vital" and not with_vital:
                    continue
                wav = gm_note_wav(Path(tmp), program, note, font)
                target, rate = gm_target(wav)
                ids, scores = exhaustive(pilot, synth, target, rate, note, cache, workers)
                got, heard_note = answer(pilot, wav, synth, target, rate)
                got.update(routes(pilot, heard_note, synth, ids, scores))
                # the best few by each metric played again as the user would load them (their
                # exported file on a fresh synth; a DX7 file rounds every value): the best of those
                best, oracle = [], []
                for m in range(2):
                    few = np.argsort(scores[:, m], kind="stable")[:RESCORED]
                    again = [fresh_score(library[synth][ids[i]], target, rate, note)[m] for i in few]
                    best.append(int(few[int(np.argmin(again))]))
                    oracle.append(float(min(again)))
                heard = set(got["considered"])
                mine = ids.index(got["preset"]) if got["preset"] in ids else None
                row = {"synth": synth, "note": f"{label} ({Path(font).stem})", "presets": len(ids),
                       "oracle": oracle, "oracle_preset": [ids[best[m]] for m in range(2)],
                       "recalled": [ids[best[m]] in heard for m in range(2)], "heard": len(heard),
                       "top10_heard": [sum(ids[i] in heard for i in np.argsort(scores[:, m])[:10]) for m in range(2)],
                       "rank": [int((scores[:, m] < scores[mine, m]).sum()) + 1 if mine is not None else None
                                for m in range(2)],
                       **{k: got[k] for k in ("preset", "scores", "velocity", "seconds", "by_vector", "by_sketch")}}
                rows.append(row)
                print(f"  {synth} {row['note']}: answer {row['scores'][0]:.3f} / {row['scores'][1]:.2f} dB "
                      f"({row['preset']}, rank {row['rank']}), oracle {row['oracle'][0]:.3f} / "
                      f"{row['oracle'][1]:.2f} dB ({row['oracle_preset'][0]}), recalled {row['recalled']}",
                      file=sys.stderr)
    return rows


def loss(row: dict, metric: int) -> float:
    return row["scores"][metric] / row["oracle"][metric] - 1.0


def section(rows: list[dict], command: str) -> str:
    lines = ["| synth | inputs | presets scored each | answer MR-STFT / MSS | oracle MR-STFT / MSS | "
             "retrieval loss MR-STFT / MSS (mean; median) | oracle's best heard by the re-ranker, MR-STFT / MSS | "
             "the 10 best heard, mean, MR-STFT / MSS | median rank of the answer's preset, MR-STFT / MSS | "
             f"best of the first {DEFAULT_RERANK_CANDIDATES} by vector / {SKETCH_CANDIDATES} by sketch, over the "
             "exhaustive best, MR-STFT; MSS (mean) | match wall time, median |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    detail = ["| synth | input | answer (preset, velocity) | MR-STFT / MSS | rank | oracle MR-STFT (preset) | "
              "oracle MSS (preset) | heard |", "|---|---|---|---|---|---|---|---|"]
    for synth in dict.fromkeys(r["synth"] for r in rows):
        group = [r for r in rows if r["synth"] == synth]
        mean = {k: [float(np.mean([r[k][m] for r in group])) for m in range(2)] for k in ("scores", "oracle")}
        losses = [[loss(r, m) for r in group] for m in range(2)]
        recall = [sum(r["recalled"][m] for r in group) for m in range(2)]
        ranks = [statistics.median(r["rank"][m] for r in group if r["rank"][m] is not None) for m in range(2)]
        lines.append(
            f"| {synth} | {len(group)} | {group[0]['presets']} | {mean['scores'][0]:.3f} / {mean['scores'][1]:.2f} dB | "
            f"{mean['oracle'][0]:.3f} / {mean['oracle'][1]:.2f} dB | "
            f"{np.mean(losses[0]):+.1%} / {np.mean(losses[1]):+.1%} ({np.median(losses[0]):+.1%}; "
            f"{np.median(losses[1]):+.1%}) | {recall[0]} / {recall[1]} of {len(group)} | "
            f"{np.mean([r['top10_heard'][0] for r in group]):.1f} / {np.mean([r['top10_heard'][1] for r in group]):.1f} | "
            f"{ranks[0]:.0f} / {ranks[1]:.0f} | {_route_cell(group)} | "
            f"{statistics.median(r['seconds'] for r in group):.1f} s |")
        detail += [f"| {synth} | {r['note']} | {r['preset']}, {r['velocity']} | {r['scores'][0]:.3f} / "
                   f"{r['scores'][1]:.2f} dB | {r['rank'][0]} / {r['rank'][1]} | {r['oracle'][0]:.3f} "
                   f"({r['oracle_preset'][0]}) | {r['oracle'][1]:.2f} dB ({r['oracle_preset'][1]}) | "
                   f"{'yes' if r['recalled'][0] else 'no'} / {'yes' if r['recalled'][1] else 'no'} of {r['heard']} |"
                   for r in group]
    return (header("Oracle: the best answer the library holds", command)
            + "\n" + __doc__.split("\n\n", 2)[2].strip().replace("\n", " ")
            + " The rank counts the presets scoring strictly lower than the answer's own preset played by the "
            "protocol (1: the oracle's).\n\n" + "\n".join(lines)
            + "\n\n<details><summary>per input</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")


def _route_cell(group: list[dict]) -> str:
    """Mean route quality (``routes``) of a group: "+30.9% / +6.9%; +41.4% / +9.6%"."""
    if any(r.get("by_vector") is None for r in group):
        return "not measured"
    sketched = all(r.get("by_sketch") is not None for r in group)

    def mean(key: str, m: int) -> str:
        return f"{np.mean([r[key][m] for r in group]):+.1%}" if key == "by_vector" or sketched else "no sketches"

    return f"{mean('by_vector', 0)} / {mean('by_sketch', 0)}; {mean('by_vector', 1)} / {mean('by_sketch', 1)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dexed", type=int, default=24, help="inputs scored on the DX7 library")
    parser.add_argument("--vital", type=int, default=12,
                        help="how many of those also on the Vital library (every other one, from the first)")
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows-out", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--no-report", action="store_true", help="print the section instead of writing it")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="rows (--rows-out) of another checkout on the same inputs, shown beside these")
    parser.add_argument("--baseline-name", default="baseline")
    args = parser.parse_args()
    index = args.index or default_index_dir()
    rows = run(index, args.dexed, args.vital, args.cache, args.workers)
    if args.rows_out:
        args.rows_out.write_text(json.dumps(rows, indent=1))
    command = f"python -m scripts.bench_oracle --dexed {args.dexed} --vital {args.vital} --workers {args.workers}"
    if args.index:
        command += f" --index {args.index}"
    shown = rows
    if args.baseline:
        earlier = json.loads(args.baseline.read_text())
        shown = [row for synth in ("dexed", "vital") for row in
                 [r for r in rows if r["synth"] == synth]
                 + [{**r, "synth": f"{synth} ({args.baseline_name})"} for r in earlier if r["synth"] == synth]]
        command += f" --baseline {args.baseline.name} --baseline-name {args.baseline_name}"
    text = section(shown, command)
    if args.no_report:
        print(text)
    else:
        write_section("oracle", text)


if __name__ == "__main__":
    main()
