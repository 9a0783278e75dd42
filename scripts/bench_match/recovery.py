"""Preset recovery: presets drawn from the index are re-rendered 3-7 semitones from every note
the index rendered, at another velocity and note length, with white noise at -30 dB (RMS),
as 44.1 kHz files, and matched; top-1 and MRR of finding the same preset.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.synths import get_engine
from scripts.bench_match.report import NOISE_DB, as_clip, header


def recovery_rows(index: Path, queries: int, seed: int, candidates: int,
                  verbose: bool = False) -> tuple[list[dict], tuple[int, ...], int]:
    """Recovery queries: ``{"synth", "rank", "seconds", "top1_distance", "true_distance"}`` each,
    with the index's notes and preset count."""
    rng = np.random.default_rng(seed)
    rows_out: list[dict] = []
    with PatchPilot(index) as pilot:
        notes = pilot.index.manifest.notes
        rows = pilot.index.store.rows()
        picked = [int(r) for r in rng.choice(rows, size=min(queries, len(rows)), replace=False)]
        stored = pilot.index.presets(picked)
        for number, row in enumerate(picked, start=1):
            sp = stored[row]
            engine = get_engine(sp.preset.synth)
            slot = int(rng.integers(0, len(notes) - 1))
            note = notes[slot] + int(rng.integers(3, 10))  # 3-6 semitones from both neighbours
            velocity = int(rng.choice([v for v in range(40, 128) if v != 100]))
            held = float(rng.uniform(0.5, 1.6))
            audio = engine.render(sp.preset, note, velocity, held, held + 0.8, sample_rate=EXPORT_SAMPLE_RATE_HZ)
            level = float(np.sqrt(np.mean(audio**2)))
            audio = audio + rng.normal(0, level * 10 ** (NOISE_DB / 20), audio.size).astype(np.float32)
            started = time.perf_counter()
            clip, full_band = as_clip(audio, EXPORT_SAMPLE_RATE_HZ, sp.preset_id)
            result = pilot.matcher.match_audio(clip, top_k=candidates, full_band=full_band)
            elapsed = time.perf_counter() - started
            ids = [m.preset_id for m in result.matches]
            rank = ids.index(sp.preset_id) if sp.preset_id in ids else None
            rows_out.append({"synth": sp.preset.synth, "rank": rank, "seconds": elapsed,
                             "top1_distance": result.matches[0].distance if result.matches else None,
                             "true_distance": result.matches[rank].distance if rank is not None else None})
            if verbose and rank != 0:
                best = result.matches[0] if result.matches else None
                print(f"  miss {sp.preset_id} rank {rank} note {note} velocity {velocity} held {held:.2f} -> "
                      f"{best.preset_id if best else None} {best.distance if best else float('nan'):.3f} "
                      f"(true {rows_out[-1]['true_distance']})", file=sys.stderr)
            if number % 25 == 0:
                print(f"  {number}/{len(picked)} top-1 {np.mean([r['rank'] == 0 for r in rows_out]):.3f}",
                      file=sys.stderr)
    return rows_out, tuple(notes), len(rows)


def recovery(index: Path, queries: int, seed: int, candidates: int, verbose: bool = False) -> str:
    found, notes, presets = recovery_rows(index, queries, seed, candidates, verbose)
    rows_out = [(r["synth"], r["rank"], r["seconds"]) for r in found]
    rows = range(presets)

    def summary(subset: list[tuple[str, int | None, float]]) -> tuple[int, float, float, float, float]:
        ranks = [r for _, r, _ in subset]
        top1 = float(np.mean([r == 0 for r in ranks]))
        top5 = float(np.mean([r is not None and r < 5 for r in ranks]))
        mrr = float(np.mean([0.0 if r is None else 1.0 / (r + 1) for r in ranks]))
        return len(subset), top1, top5, mrr, float(np.mean([t for _, _, t in subset]))

    lines = ["| presets | queries | top-1 | top-5 | MRR | match time / query |", "|---|---|---|---|---|---|"]
    for label, subset in (("all", rows_out), ("vital", [r for r in rows_out if r[0] == "vital"]),
                          ("dexed", [r for r in rows_out if r[0] == "dexed"])):
        if subset:
            n, top1, top5, mrr, seconds = summary(subset)
            lines.append(f"| {label} | {n} | {top1:.3f} | {top5:.3f} | {mrr:.3f} | {seconds:.2f} s |")
    misses = sum(r is None for _, r, _ in rows_out)
    _, top1, _, mrr, _ = summary(rows_out)
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    lines += ["", f"Targets: top-1 >= 0.95: {top1:.3f} ({verdict(top1 >= 0.95)}); MRR >= 0.97: {mrr:.3f} "
              f"({verdict(mrr >= 0.97)})."]
    command = f"python -m scripts.bench_match --only recovery --queries {queries} --seed {seed} --index {index}"
    return (header("Preset recovery", command)
            + f"\nIndex: `{index}` ({len(rows)} presets). Each query: a preset of the index rendered at a note "
            f"3-6 semitones from every indexed note ({', '.join(map(str, notes))}), velocity 40-127 (not 100), "
            f"note length 0.5-1.6 s + 0.8 s, white noise at {NOISE_DB:.0f} dB RMS, as a 44.1 kHz clip. "
            f"Target: top-1 >= 0.95, MRR >= 0.97. Ranks beyond the {candidates} re-ranked candidates count as "
            f"misses ({misses} queries).\n\n" + "\n".join(lines) + "\n")
