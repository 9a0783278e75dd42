#!/usr/bin/env python
"""Held-out designers' benchmark: match presets from families the index has never seen.

    python -m scripts.bench_heldout --keep /tmp/heldout-index          # build, then match
    python -m scripts.bench_heldout --index /tmp/heldout-index         # reuse that build

About 15 % of the designed presets of each synth (a seeded draw spread over every category)
are removed, with all their variants, from a copy of the factory banks; an index is built
from the rest with the shipped index's settings (its learned projection never sees the
held-out families). Each held-out designed preset is then rendered from its file on a fresh
synth at a note off the index's grid, in its category's register, and matched with the
default ``match`` on its own synth. The top-1 and two baselines (init patch, a random preset
of the index) are scored as the out-of-domain section of ``scripts.bench_match`` scores them.
Writes the ``heldout`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# scripts.bench_match sets OMP_NUM_THREADS on import: before numpy's first import
from scripts.bench_match.gm import gm_target, score_answer, timed_match
from scripts.bench_match.report import REPORT, header, write_section

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.audio.io import write_wav
from patchpilot.constants import DEFAULT_INDEX_SIZE_PER_SYNTH, EXPORT_SAMPLE_RATE_HZ, INDEX_NOTES
from patchpilot.index.index import STORE_NAME
from patchpilot.index.layout import resolve_index
from patchpilot.index.store import PresetStore
from patchpilot.library.bank import factory_preset_id, load_factory_bank
from patchpilot.paths import factory_presets_dir
from patchpilot.synths import Preset, get_engine

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SYNTHS = ("vital", "dexed")
#: The query: velocity, held seconds, seconds in all.
QUERY_VELOCITY = 100
QUERY_HOLD_SECONDS = 1.0
QUERY_TOTAL_SECONDS = 2.0
#: Where each category is played (MIDI range, from the banks' own notes); the query note is
#: drawn from the notes in it that lie 3-6 semitones from the nearest indexed note.
CATEGORY_RANGES = {"bass": (36, 48), "bell": (72, 84), "lead": (60, 84), "pluck": (48, 84)}
DEFAULT_RANGE = (48, 72)
#: Issue 9: top-1 MR-STFT / init targets (and stretch targets) per synth.
TARGETS = {"vital": (0.50, 0.35), "dexed": (0.35, 0.25)}
#: The description of this file holds the draw, so a reused index is checked against it.
HELDOUT_FILE = "heldout.json"


# ---- the held-out draw ----------------------------------------------------------------------
def draw_heldout(root: Path, fraction: float, seed: int) -> dict[str, list[Preset]]:
    """About ``fraction`` of each synth's designed presets, spread over the categories: the
    categories in a seeded order, one preset from each in turn (a seeded pick), so no
    category loses a second preset before every category has lost one."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Preset]] = {}
    for synth in SYNTHS:
        by_category: dict[str, list[Preset]] = defaultdict(list)
        for preset in load_factory_bank(synth, root):
            by_category[preset.category].append(preset)
        pools = {c: [ps[int(i)] for i in rng.permutation(len(ps))] for c, ps in sorted(by_category.items())}
        order = [list(pools)[int(i)] for i in rng.permutation(len(pools))]
        count = min(round(fraction * sum(len(ps) for ps in pools.values())),
                    sum(len(ps) - 1 for ps in pools.values()))
        picked: list[Preset] = []
        turn = 0
        while len(picked) < count:
            pool = pools[order[turn % len(order)]]
            if len(pool) > 1:  # every category keeps at least one preset
                picked.append(pool.pop())
            turn += 1
        out[synth] = picked
    return out


def preset_blocks(text: str) -> tuple[str, list[str]]:
    """A bank file split into its head (file-level keys, comments) and one text block per
    ``[[preset]]`` (its sub-tables and the comments up to the next preset included)."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == "[[preset]]"]
    if not starts:
        return text, []
    bounds = [*starts, len(lines)]
    return "".join(lines[: starts[0]]), ["".join(lines[a:b]) for a, b in itertools.pairwise(bounds)]


def write_pruned_banks(source: Path, target: Path, held: dict[str, list[Preset]]) -> None:
    """Copy ``source/<synth>/*.toml`` to ``target`` without the held-out presets, and check
    that the copy loads to exactly the other presets."""
    if target.exists():
        shutil.rmtree(target)
    for synth in SYNTHS:
        names = {p.name for p in held[synth]}
        (target / synth).mkdir(parents=True)
        removed: set[str] = set()
        for path in sorted((source / synth).glob("*.toml")):
            head, blocks = preset_blocks(path.read_text(encoding="utf-8"))
            kept = []
            for block in blocks:
                name = tomllib.loads(block)["preset"][0]["name"]
                if name in names:
                    removed.add(name)
                else:
                    kept.append(block)
            (target / synth / path.name).write_text(head + "".join(kept), encoding="utf-8")
        expected = [p.name for p in load_factory_bank(synth, source) if p.name not in names]
        remaining = [p.name for p in load_factory_bank(synth, target)]
        if removed != names or remaining != expected:
            raise SystemExit(f"{synth}: pruning the banks went wrong "
                             f"(removed {sorted(removed)}, wanted {sorted(names)})")


# ---- the index ------------------------------------------------------------------------------
def build_index(banks: Path, output: Path, size: int, workers: int, describe: bool) -> float:
    """Build the held-out index from ``banks`` with the shipped settings; returns seconds.
    Without ``describe`` the sound descriptors (read by text queries only, never by audio
    matching) are not computed, which saves a render of every preset."""
    from patchpilot.index import builder

    plan = builder.BuildPlan(output=output, factory_root=banks, size_per_synth=size)  # the shipped sampler seed
    marks: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        step = max(1, total // 20)
        if done == total or done // step != marks.get(stage, -1):
            marks[stage] = done // step
            print(f"  build {stage}: {done}/{total} ({time.strftime('%H:%M:%S')})", file=sys.stderr)

    original = builder.describe_missing
    if not describe:
        builder.describe_missing = lambda *args, **kwargs: 0  # type: ignore[assignment]
    started = time.perf_counter()
    try:
        report = builder.IndexBuilder(plan, workers=workers, progress=progress).build()
    finally:
        builder.describe_missing = original
    print(f"  built {report.presets} ({len(report.skipped)} duplicate or silent variants dropped)", file=sys.stderr)
    return time.perf_counter() - started


def describe_draw(held: dict[str, list[Preset]], seed: int, fraction: float, size: int) -> dict:
    return {"seed": seed, "fraction": fraction, "size_per_synth": size,
            "heldout": {s: sorted(factory_preset_id(s, p.name) for p in ps) for s, ps in held.items()}}


def check_index(index: Path, draw: dict) -> None:
    """The index was built for this draw and holds no member of a held-out family."""
    recorded = index / HELDOUT_FILE
    if recorded.exists():
        saved = json.loads(recorded.read_text())
        if saved["heldout"] != draw["heldout"]:
            raise SystemExit(f"{index} was built for another held-out draw ({recorded}); rebuild or change --seed")
        draw["size_per_synth"] = saved["size_per_synth"]
    else:
        print(f"  warning: {index} has no {HELDOUT_FILE}; checking its presets only", file=sys.stderr)
    families = {pid for ids in draw["heldout"].values() for pid in ids}
    with PresetStore(resolve_index(index) / STORE_NAME, readonly=True) as store:
        ids = store.preset_ids(store.rows()).values()
    leaked = sorted(pid for pid in ids if pid.split("~")[0] in families)
    if leaked:
        raise SystemExit(f"{index} holds held-out presets: {', '.join(leaked[:5])}")


# ---- queries and scores ---------------------------------------------------------------------
def off_grid_notes(low: int, high: int) -> list[int]:
    """Notes in ``low..high`` 3-6 semitones from the nearest indexed note."""
    return [n for n in range(low, high + 1) if 3 <= min(abs(n - g) for g in INDEX_NOTES) <= 6]


def query_note(category: str, rng: np.random.Generator) -> int:
    return int(rng.choice(off_grid_notes(*CATEGORY_RANGES.get(category, DEFAULT_RANGE))))


def heldout_rows(index: Path, held: dict[str, list[Preset]], seed: int, workers: int) -> list[dict]:
    """Render each held-out preset, match it on its own synth (top 5) and score the top-1,
    the init patch and a random preset of the index from their files on fresh synths at the
    top-1's pitch and velocity, with the query's hold and length."""
    import torch

    torch.set_num_threads(1)
    notes_rng = np.random.default_rng(seed + 1)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index, workers=workers) as pilot:
        rows_by_synth = {s: pilot.index.store.rows(s) for s in SYNTHS}
        for synth in SYNTHS:
            engine = get_engine(synth)
            for preset in held[synth]:
                preset_id = factory_preset_id(synth, preset.name)
                note = query_note(preset.category, notes_rng)
                wav = Path(tmp) / f"{preset_id.replace(':', '_')}_{note}.wav"
                write_wav(wav, engine.render(preset, note, QUERY_VELOCITY, QUERY_HOLD_SECONDS, QUERY_TOTAL_SECONDS,
                                             sample_rate=EXPORT_SAMPLE_RATE_HZ), EXPORT_SAMPLE_RATE_HZ)
                target, rate = gm_target(wav)  # the file as written, mono (2.0 s: nothing cut)
                row: dict = {"synth": synth, "preset": preset.name, "category": preset.category, "note": note}
                result = timed_match(pilot, wav, row, preset_id, top_k=5, synth=synth)
                if result is None:
                    rows.append(row)
                    continue
                best = result.matches[0]
                row.update(score_answer(pilot, best, target, rate, QUERY_HOLD_SECONDS, rng, rows_by_synth))
                categories = [m.preset.category for m in result.matches[:5]]
                row.update(top1_id=best.preset_id, top1_category=categories[0], distance=best.distance,
                           top5_categories=categories, top5_ids=[m.preset_id for m in result.matches[:5]])
                rows.append(row)
                print(f"  {preset_id} ({preset.category}, note {note}) -> {best.preset_id} ({categories[0]}) "
                      f"d={best.distance:.2f} MR-STFT {row['top1'][0]:.2f}/{row['init'][0]:.2f} "
                      f"MSS {row['top1'][1]:.1f}/{row['init'][1]:.1f} in {row['seconds']:.1f} s", file=sys.stderr)
    return rows


def precision_at(row: dict, k: int) -> float:
    """Share of the first ``k`` matches in the held-out preset's category."""
    found = row["top5_categories"][:k]
    return sum(c == row["category"] for c in found) / k


def section(rows: list[dict], draw: dict, command: str, build_note: str, index: Path) -> str:
    """The BENCHMARKS.md section: a table per synth, the targets, per-preset detail."""
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    lines = [("| synth | held-out presets | refused | top-1 MR-STFT | init | random | top-1 / init | "
              "top-1 MSS (dB) | init | random | top-1 / init (MSS) | category P@1 | category P@5 | "
              "top-5 holds the category | our distance (median) | match time (median) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    targets = []
    for synth in SYNTHS:
        group = [r for r in rows if r["synth"] == synth and "top1" in r]
        refused = sum(r["synth"] == synth and "refused" in r for r in rows)
        if not group:
            lines.append(f"| {synth} | {refused} | {refused} |" + " |" * 13)
            continue
        m = {k: np.array([r[k] for r in group]).mean(axis=0) for k in ("top1", "init", "random")}
        ratio = m["top1"][0] / m["init"][0]
        lines.append(
            f"| {synth} | {len(group) + refused} | {refused} | {m['top1'][0]:.3f} | {m['init'][0]:.3f} | "
            f"{m['random'][0]:.3f} | {ratio:.2f} | {m['top1'][1]:.2f} | {m['init'][1]:.2f} | {m['random'][1]:.2f} | "
            f"{m['top1'][1] / m['init'][1]:.2f} | {np.mean([precision_at(r, 1) for r in group]):.2f} | "
            f"{np.mean([precision_at(r, 5) for r in group]):.2f} | "
            f"{np.mean([r['category'] in r['top5_categories'] for r in group]):.2f} | "
            f"{np.median([r['distance'] for r in group]):.2f} | {np.median([r['seconds'] for r in group]):.2f} s |")
        target, stretch = TARGETS[synth]
        targets.append(f"{synth} {ratio:.2f} <= {target:.2f} ({verdict(ratio <= target)}; stretch {stretch:.2f}: "
                       f"{verdict(ratio <= stretch)})")
    detail = [("| synth | held-out preset | category | note | top-1 | top-1 category | our distance | "
               "MR-STFT top-1 / init / random | MSS top-1 / init / random | top-5 categories | match time |"),
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "refused" in r:
            detail.append(f"| {r['synth']} | {r['preset']} | {r['category']} | {r['note']} | refused: {r['refused']} "
                          "| | | | | | |")
            continue
        detail.append(f"| {r['synth']} | {r['preset']} | {r['category']} | {r['note']} | {r['top1_id']} | "
                      f"{r['top1_category']} | {r['distance']:.2f} | "
                      f"{r['top1'][0]:.2f} / {r['init'][0]:.2f} / {r['random'][0]:.2f} | "
                      f"{r['top1'][1]:.1f} / {r['init'][1]:.1f} / {r['random'][1]:.1f} | "
                      f"{', '.join(r['top5_categories'])} | {r['seconds']:.1f} s |")
    counts = ", ".join(f"{len(ids)} {s}" for s, ids in draw["heldout"].items())
    return (header("Held-out designers (whole families left out of the index)", command)
            + f"\nThe closest stand-in for presets made elsewhere. A seeded draw of {draw['fraction']:.0%} of each "
            f"synth's designed presets ({counts}; seed {draw['seed']}), one per category in turn so every category "
            "keeps most of its presets, was removed from a copy of the factory banks together with all its "
            f"variants; the index was built from the rest with the shipped settings ({draw['size_per_synth']} "
            "presets per synth before duplicate removal; its learned projection was trained without the held-out "
            f"families). {build_note} Each held-out designed preset (not a variant) is rendered from its file on a "
            f"fresh synth at a note 3-6 semitones off the index's grid ({', '.join(map(str, INDEX_NOTES))}) in its "
            f"category's register (bass 36-48, bell 72-84, lead 60-84, pluck 48-84, others 48-72), velocity "
            f"{QUERY_VELOCITY}, held {QUERY_HOLD_SECONDS:.1f} s, {QUERY_TOTAL_SECONDS:.1f} s in all, as a 44.1 kHz "
            "WAV, and matched by the default `match` on its own synth (top 5). Scored as in the out-of-domain "
            "section: the top-1 and two baselines (the synth's init patch, a random preset of the held-out index), "
            "each from its file on a fresh synth at the top-1's sounding pitch and velocity, with the query's hold "
            "and length; MR-STFT and MSS as there (lower is better). Category P@1: the top-1 is in the held-out "
            "preset's category; P@5: share of the top 5 in it. Our distance: the re-ranker's distance of the "
            f"top-1. Index: `{index}`.\n\n" + "\n".join(lines) + "\n\n"
            + "Targets (issue 9, other designers' presets, same synth, top-1 MR-STFT / init): "
            + "; ".join(targets) + ".\n\n<details><summary>per preset</summary>\n\n" + "\n".join(detail)
            + "\n\n</details>\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the held-out draw, query notes and random baseline")
    parser.add_argument("--fraction", type=float, default=0.15, help="share of each synth's designed presets held out")
    parser.add_argument("--size", type=int, default=DEFAULT_INDEX_SIZE_PER_SYNTH, help="presets per synth in the build")
    parser.add_argument("--keep", type=Path, default=None, help="build the held-out index into this folder and keep it")
    parser.add_argument("--index", type=Path, default=None, help="reuse a held-out index built by --keep")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--describe", action="store_true", help="also compute text-query descriptors in the build")
    parser.add_argument("--rows-out", type=Path, default=None, help="also write the per-preset rows as JSON")
    args = parser.parse_args()
    if REPORT.resolve() != (Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"):
        raise SystemExit(f"bench_match writes {REPORT}, not this checkout's docs/BENCHMARKS.md")
    held = draw_heldout(factory_presets_dir(), args.fraction, args.seed)
    draw = describe_draw(held, args.seed, args.fraction, args.size)
    for synth, ids in draw["heldout"].items():
        print(f"held out ({synth}): {', '.join(ids)}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        if args.index is not None:
            index = args.index
            build_note = "The index was reused from an earlier build (`--index`)."
        else:
            index = args.keep or Path(tmp) / "index"
            banks = index.parent / f".{index.name}.banks"  # a fixed place, so an interrupted build resumes
            write_pruned_banks(factory_presets_dir(), banks, held)
            seconds = build_index(banks, index, args.size, args.workers, args.describe)
            shutil.rmtree(banks)
            (index / HELDOUT_FILE).write_text(json.dumps({**draw, "build_seconds": round(seconds)}, indent=1))
            build_note = (f"The build took {seconds / 60:.0f} min with {args.workers} workers"
                          + ("" if args.describe else " (without the text-query descriptors, which audio "
                             "matching does not read)") + ".")
        check_index(index, draw)
        started = time.perf_counter()
        rows = heldout_rows(index, held, args.seed, args.workers)
        print(f"  matched and scored {len(rows)} presets in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.rows_out:
        args.rows_out.write_text(json.dumps(rows, indent=1))
    command = (f"python -m scripts.bench_heldout --seed {args.seed} --fraction {args.fraction} "
               f"--size {draw['size_per_synth']} "
               f"--workers {args.workers} --keep DIR" + (" --describe" if args.describe else ""))
    write_section("heldout", section(rows, draw, command, build_note, index))
    print(f"updated {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
