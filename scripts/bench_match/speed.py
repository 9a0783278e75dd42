"""Speed: `patchpilot match` on a 5-second clip as a whole process (first run and later runs);
raw render throughput of each synth against build-index throughput.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from patchpilot.audio.io import write_wav
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.synths import get_engine
from scripts.bench_match.refinement import bare_synth
from scripts.bench_match.report import header


def speed(index: Path, workers: int) -> str:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        clip_rows = []
        for synth, name in (("vital", "Supersaw Stab"), ("dexed", "Tine Glass Piano")):
            from patchpilot.library.bank import load_factory_bank
            from patchpilot.paths import factory_presets_dir

            preset = next(p for p in load_factory_bank(synth, factory_presets_dir()) if p.name == name)
            engine = get_engine(synth)
            parts = [engine.render(preset, n, 100, 0.7, 1.25, sample_rate=EXPORT_SAMPLE_RATE_HZ) for n in (57, 60, 64, 67)]
            clip = np.concatenate(parts)[: 5 * EXPORT_SAMPLE_RATE_HZ]
            path = Path(tmp) / f"{synth}.wav"
            write_wav(path, clip, EXPORT_SAMPLE_RATE_HZ)
            times = []
            for _ in range(4):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "patchpilot", "match", str(path), "--index", str(index), "--json"],
                               check=True, capture_output=True)
                times.append(time.perf_counter() - started)
            clip_rows.append(f"| {synth} ({name}, 5.0 s clip) | {times[0]:.2f} s | {statistics.median(times[1:]):.2f} s |")
        lines += ["### `patchpilot match` on a 5-second clip, whole process", "",
                  "Target: <= 3 s, first run included. The first run is the first process after the index was "
                  "built or installed (cold disk cache for the index; no numba: the match path does not use librosa).",
                  "", "| clip | first run | median of 3 later runs |", "|---|---|---|", *clip_rows, ""]

    lines += ["### Render throughput: raw synth vs build-index", "",
              f"Raw: the synth's own render call for the index's renders (0.9 s notes at 44.1 kHz), one thread, "
              f"preset loaded once; x{workers} workers is the ideal. build-index with {workers} workers on 300 "
              f"presets. Target: >= 0.85.", "",
              "| synth | raw renders/s (1 thread) | raw x workers | render stage renders/s | ratio | whole build renders/s | ratio |",
              "|---|---|---|---|---|---|---|"]
    from patchpilot.index.builder import BuildPlan, IndexBuilder

    for synth in ("vital", "dexed"):
        raw = raw_render_rate(synth)
        with tempfile.TemporaryDirectory() as tmp:
            plan = BuildPlan(output=Path(tmp) / "idx", synths=(synth,), size_per_synth=300)
            marks: dict[str, float] = {}

            def progress(stage: str, done: int, total: int) -> None:
                marks.setdefault(f"{stage}-start", time.perf_counter())
                if done == total:
                    marks[f"{stage}-end"] = time.perf_counter()

            started = time.perf_counter()
            IndexBuilder(plan, workers=workers, progress=progress).build()
            elapsed = time.perf_counter() - started
            from patchpilot.index.index import PresetIndex

            rendered = len(load_factory_bank_count(synth, plan)) * len(plan.notes)
            count = PresetIndex.open(plan.output).manifest.synths[synth] * len(plan.notes)
        stage_rate = rendered / (marks["render-end"] - started)
        rate = count / elapsed
        ideal = raw * workers
        lines.append(f"| {synth} | {raw:.1f} | {ideal:.1f} | {stage_rate:.1f} | {stage_rate / ideal:.2f} | "
                     f"{rate:.1f} | {rate / ideal:.2f} |")
    lines += ["", "Render stage: every preset rendered at every indexed note, with the warm-up note, flushes, "
              "resampling and features; whole build: kept presets x notes over the whole build (training "
              "queries, duplicate removal and writing included)."]
    command = f"python -m scripts.bench_match --only speed --workers {workers} --index {index}"
    return header("Speed", command) + "\n" + "\n".join(lines) + "\n"


def load_factory_bank_count(synth: str, plan) -> list:
    from patchpilot.index.gather import designed_and_variants

    return designed_and_variants(synth, plan.factory_root, plan.size_per_synth, plan.seed)


def raw_render_rate(synth: str, count: int = 60) -> float:
    """Renders per second of the bare synth call (what a build could reach with no overhead)."""
    from patchpilot.constants import INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS
    from patchpilot.library.bank import load_factory_bank
    from patchpilot.paths import factory_presets_dir

    presets = load_factory_bank(synth, factory_presets_dir())[:count]
    load, render = bare_synth(synth)
    total = 0.0
    for preset in presets:
        load(preset)
        started = time.perf_counter()
        render(60, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS)
        total += time.perf_counter() - started
    return len(presets) / total
