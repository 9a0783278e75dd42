#!/usr/bin/env python
"""Benchmarks of matching: preset recovery, out-of-domain matching, refinement, speed.

    python scripts/bench_match.py                       # all three, default index
    python scripts/bench_match.py --only recovery --queries 300
    python scripts/bench_match.py --only ood            # needs fluidsynth + a GM SoundFont
    python scripts/bench_match.py --only speed

Each section replaces its own part of docs/BENCHMARKS.md, with the command and the machine.

* recovery: presets drawn from the index are re-rendered 3-7 semitones from every note the
  index rendered, at another velocity and note length, with white noise at -30 dB (RMS),
  as 44.1 kHz files, and matched; top-1 and MRR of finding the same preset.
* ood: single notes of General MIDI instruments rendered with fluidsynth from the
  MuseScore General SoundFont (Debian: fluidsynth musescore-general-soundfont-small);
  multi-resolution STFT distance (auraloss defaults, both RMS-normalised to 0.1, mono, same
  length) between each note and its top-1 match rendered at the same pitch, next to the
  synth's init patch and a random preset. Needs ``pip install torch==2.13.0 auraloss``.
* refine: CMA-ES refinement of the top-1 match on a subset of the General MIDI notes at
  several budgets, an ablation from the init patch, wall time and evaluations per second.
* speed: `patchpilot match` on a 5-second clip as a whole process (first run and later
  runs); raw render throughput of each synth against build-index throughput.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from patchpilot.api import PatchPilot  # noqa: E402
from patchpilot.audio.io import Audio, load_audio, write_wav  # noqa: E402
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, EXPORT_SAMPLE_RATE_HZ  # noqa: E402
from patchpilot.paths import default_index_dir  # noqa: E402
from patchpilot.synths import Preset, get_engine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"
NOISE_DB = -30.0


# ---- report plumbing ----------------------------------------------------------------------
def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import dexed
    import vita

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
            f"vita {vita.__version__}, dexed-py {getattr(dexed, '__version__', '?')}")


def write_section(name: str, body: str) -> None:
    """Replace the section between <!-- name --> markers (or append it)."""
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n\nWritten by `scripts/bench_match.py`.\n"
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    REPORT.write_text(text)


def header(title: str, command: str) -> str:
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"## {title}\n\nMeasured {stamp} on {machine()}.\n\n```\n{command}\n```\n"


def as_audio(samples: np.ndarray, rate: int, name: str) -> Audio:
    """What `load_audio` makes of a file: mono float32 at the analysis rate."""
    import soxr

    mono = soxr.resample(samples, rate, ANALYSIS_SAMPLE_RATE_HZ, quality="HQ").astype(np.float32)
    return Audio(mono, ANALYSIS_SAMPLE_RATE_HZ, name)


# ---- recovery -----------------------------------------------------------------------------
def recovery(index: Path, queries: int, seed: int, candidates: int, verbose: bool = False) -> str:
    rng = np.random.default_rng(seed)
    rows_out: list[tuple[str, int | None, float]] = []
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
            result = pilot.matcher.match_audio(as_audio(audio, EXPORT_SAMPLE_RATE_HZ, sp.preset_id), top_k=candidates)
            elapsed = time.perf_counter() - started
            ids = [m.preset_id for m in result.matches]
            rank = ids.index(sp.preset_id) if sp.preset_id in ids else None
            rows_out.append((sp.preset.synth, rank, elapsed))
            if verbose and rank != 0:
                best = result.matches[0] if result.matches else None
                true_distance = result.matches[rank].distance if rank is not None else None
                print(f"  miss {sp.preset_id} rank {rank} note {note} velocity {velocity} held {held:.2f} -> "
                      f"{best.preset_id if best else None} {best.distance if best else float('nan'):.3f} "
                      f"(true {true_distance})", file=sys.stderr)
            if number % 25 == 0:
                done = [r for _, r, _ in rows_out]
                print(f"  {number}/{len(picked)} top-1 {np.mean([r == 0 for r in done]):.3f}", file=sys.stderr)

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
    command = f"python scripts/bench_match.py --only recovery --queries {queries} --seed {seed} --index {index}"
    return (header("Preset recovery", command)
            + f"\nIndex: `{index}` ({len(rows)} presets). Each query: a preset of the index rendered at a note "
            f"3-6 semitones from every indexed note ({', '.join(map(str, notes))}), velocity 40-127 (not 100), "
            f"note length 0.5-1.6 s + 0.8 s, white noise at {NOISE_DB:.0f} dB RMS, as a 44.1 kHz clip. "
            f"Target: top-1 >= 0.95, MRR >= 0.97. Ranks beyond the {candidates} re-ranked candidates count as "
            f"misses ({misses} queries).\n\n" + "\n".join(lines) + "\n")


# ---- out-of-domain ------------------------------------------------------------------------
GM_PROGRAMS = (
    (0, "Acoustic Grand Piano"), (4, "Electric Piano 1"), (6, "Harpsichord"), (11, "Vibraphone"),
    (12, "Marimba"), (16, "Drawbar Organ"), (19, "Church Organ"), (21, "Accordion"), (24, "Nylon Guitar"),
    (33, "Finger Bass"), (38, "Synth Bass 1"), (40, "Violin"), (42, "Cello"), (48, "String Ensemble 1"),
    (56, "Trumpet"), (57, "Trombone"), (61, "Brass Section"), (65, "Alto Sax"), (71, "Clarinet"),
    (73, "Flute"), (80, "Square Lead"), (81, "Saw Lead"), (88, "New Age Pad"), (89, "Warm Pad"),
    (98, "Crystal"), (104, "Sitar"), (108, "Kalimba"), (112, "Tinkle Bell"),
)
BASS_PROGRAMS = {33, 38, 42, 57}
SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "/usr/share/sounds/sf3/MuseScore_General.sf3",
              "/usr/share/sounds/sf2/FluidR3_GM.sf2")
GM_NOTE_SECONDS = 1.2
GM_TOTAL_SECONDS = 2.4


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file(path: Path, events: list[tuple[float, bytes]], end: float) -> None:
    """A format-0 standard MIDI file (480 ticks per beat, 120 bpm) of ``(seconds, message)``
    events (any channels; stable order at equal times), the track ending at ``end`` seconds."""
    ticks = lambda seconds: round(seconds * 960)  # noqa: E731
    body, now = b"", 0
    for seconds, message in [*sorted(events, key=lambda e: e[0]), (end, b"\xff\x2f\x00")]:
        body += _vlq(ticks(seconds) - now) + message
        now = ticks(seconds)
    track = b"MTrk" + len(body).to_bytes(4, "big") + body
    path.write_bytes(b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
                     + (480).to_bytes(2, "big") + track)


def midi_note_file(path: Path, program: int, note: int, velocity: int = 100) -> None:
    """A one-note standard MIDI file (channel 1)."""
    midi_file(path, [(0.0, bytes([0xC0, program])), (0.0, bytes([0x90, note, velocity])),
                     (GM_NOTE_SECONDS, bytes([0x80, note, 0]))], GM_TOTAL_SECONDS)


def fluidsynth_render(mid: Path, wav: Path, what: str = "the ood benchmark") -> None:
    """Render a MIDI file with fluidsynth and the first General MIDI SoundFont found, at 44.1 kHz."""
    fluidsynth = shutil.which("fluidsynth")
    soundfont = next((s for s in SOUNDFONTS if Path(s).exists()), None)
    if fluidsynth is None or soundfont is None:
        raise SystemExit(f"{what} needs fluidsynth and a GM SoundFont: "
                         "apt-get install fluidsynth musescore-general-soundfont-small")
    subprocess.run([fluidsynth, "-ni", "-q", "-g", "0.8", "-r", str(EXPORT_SAMPLE_RATE_HZ), "-F", str(wav),
                    soundfont, str(mid)], check=True, capture_output=True)


def gm_notes(folder: Path) -> list[tuple[str, Path]]:
    out = []
    for program, name in GM_PROGRAMS:
        for note in ((36, 43) if program in BASS_PROGRAMS else (57, 67)):
            mid = folder / f"p{program:03d}_{note}.mid"
            wav = folder / f"p{program:03d}_{note}.wav"
            midi_note_file(mid, program, note)
            fluidsynth_render(mid, wav)
            out.append((f"{name} ({note})", wav))
    return out


def mrstft_distance(reference: np.ndarray, other: np.ndarray) -> float:
    """auraloss MultiResolutionSTFTLoss with its defaults; both RMS-normalised to 0.1, same length."""
    import auraloss
    import torch

    length = min(reference.size, other.size)
    pair = []
    for signal in (reference[:length], other[:length]):
        level = np.sqrt(np.mean(signal.astype(np.float64) ** 2))
        pair.append(torch.from_numpy((signal / max(level, 1e-9) * 0.1).astype(np.float32)).reshape(1, 1, -1))
    with torch.no_grad():
        return float(auraloss.freq.MultiResolutionSTFTLoss()(pair[1], pair[0]))


def ood(index: Path, seed: int) -> str:
    import soundfile
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    results: dict[str, list[tuple[float, float, float]]] = {"vital": [], "dexed": [], "both": []}
    per_note: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index) as pilot:
        notes = gm_notes(Path(tmp))
        rows_by_synth = {s: pilot.index.store.rows(s) for s in ("vital", "dexed")}
        for label, wav in notes:
            samples, rate = soundfile.read(wav, dtype="float32", always_2d=True)
            target = samples.mean(axis=1)
            length = target.size
            cells = [label]
            for scope in ("vital", "dexed", "both"):
                result = pilot.match(wav, top_k=1, synth=None if scope == "both" else scope)
                best = result.matches[0]
                engine = get_engine(best.preset.synth)
                total = length / rate
                settings = best.render
                rendered = engine.render(best.preset, settings.note, settings.velocity, GM_NOTE_SECONDS, total,
                                         sample_rate=rate)
                pitch = result.analysis.best.pitch.midi
                played = int(round(pitch)) if pitch is not None else 60
                init = engine.render(engine.init_preset(), played, 100, GM_NOTE_SECONDS, total, sample_rate=rate)
                random_row = int(rng.choice(rows_by_synth[best.preset.synth]))
                random_sp = pilot.index.presets([random_row])[random_row]
                random_note = int(np.clip(played - (random_sp.pitch_offset or 0.0), 0, 127))
                random_audio = engine.render(random_sp.preset, random_note, 100, GM_NOTE_SECONDS, total, sample_rate=rate)
                distances = (mrstft_distance(target, rendered), mrstft_distance(target, init),
                             mrstft_distance(target, random_audio))
                results[scope].append(distances)
                cells.append(f"{distances[0]:.2f} ({best.preset.name}) / {distances[1]:.2f}")
            per_note.append("| " + " | ".join(cells) + " |")
            print(f"  {label}: " + "; ".join(cells[1:]), file=sys.stderr)
    lines = ["| matched against | notes | top-1 | init patch | random preset | top-1 / init | target |",
             "|---|---|---|---|---|---|---|"]
    for scope, rows in results.items():
        d = np.array(rows)
        ratio = d[:, 0].mean() / d[:, 1].mean()
        lines.append(f"| {scope} | {len(d)} | {d[:, 0].mean():.3f} | {d[:, 1].mean():.3f} | {d[:, 2].mean():.3f} | "
                     f"{ratio:.2f} | <= 0.70 {'met' if ratio <= 0.7 else 'MISSED'} |")
    command = f"python scripts/bench_match.py --only ood --seed {seed} --index {index}"
    detail = ["| note | Vital top-1 (preset) / init | Dexed top-1 (preset) / init | both top-1 (preset) / init |",
              "|---|---|---|---|"] + per_note
    return (header("Out-of-domain matching (General MIDI instruments)", command)
            + "\nMean multi-resolution STFT distance (auraloss `MultiResolutionSTFTLoss()` defaults; both signals "
            "mono, RMS-normalised to 0.1, same length) between each SoundFont note (held 1.2 s, 2.4 s in all) and "
            "the top-1 match rendered at the same pitch and length; the init-patch baseline is the matched "
            "synth's init patch at the note's pitch, the random baseline a random preset of that synth. "
            "Lower is better. \"both\" matches against both synths at once.\n\n"
            + "\n".join(lines) + "\n\n<details><summary>per note</summary>\n\n" + "\n".join(detail)
            + "\n\n</details>\n")


# ---- refinement ---------------------------------------------------------------------------
def refinement(index: Path, seed: int, notes: int, budgets: tuple[int, ...], workers: int) -> str:
    """CMA-ES refinement on a subset of the General MIDI notes: MR-STFT of the top-1 match
    before and after refining at each budget, from the init patch at the largest budget,
    with wall time and evaluations per second against the synth's bare render rate."""
    import soundfile
    import torch

    from patchpilot.audio.analysis import compare_window
    from patchpilot.refine import DEFAULT_STARTS, RefineOptions, Refiner, StartPoint, fit_notes_for

    torch.set_num_threads(1)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index, workers=workers) as pilot:
        every = gm_notes(Path(tmp))
        chosen = [every[round(i * len(every) / notes)] for i in range(notes)] if notes < len(every) else every
        for label, wav in chosen:
            samples, rate = soundfile.read(wav, dtype="float32", always_2d=True)
            target = samples.mean(axis=1)
            total = target.size / rate
            result = pilot.match(wav, top_k=5)
            top = result.matches[0]
            engine = get_engine(top.preset.synth)
            settings = top.render

            def mrstft_of(preset, note=settings.note, velocity=settings.velocity):  # noqa: ANN001, ANN202
                audio = engine.render(preset, note, velocity, GM_NOTE_SECONDS, total, sample_rate=rate)
                return mrstft_distance(target, audio)

            pitch = result.analysis.best.pitch.midi
            played = int(round(pitch)) if pitch is not None else 60
            row = {"note": label, "synth": engine.name, "preset": top.preset.name, "top1": mrstft_of(top.preset),
                   "init": mrstft_of(engine.init_preset(), played, 100)}
            for budget in budgets:
                started = time.perf_counter()
                refined = pilot.refine(result, RefineOptions(budget=budget, seed=seed))
                outcome = refined.matches[0].refinement
                first = refined.matches[0]  # played as its start match was: its own note and velocity
                row[budget] = (mrstft_of(first.preset, first.render.note, first.render.velocity),
                               time.perf_counter() - started, outcome)
            # Ablation: the same search from the init patch, at the largest budget.
            analysis = result.analysis
            window_note, _ = compare_window(analysis.best)
            refiner = Refiner(pilot.matcher.pool)  # the refinement loss, as `match --refine` uses
            start = StartPoint(engine.init_preset(), "init",
                               fit_notes_for(analysis, played, 100, window_note, refiner.distance))
            started = time.perf_counter()
            outcome = refiner.refine([start], RefineOptions(budget=max(budgets), seed=seed))
            row["from_init"] = (mrstft_of(outcome.preset, played, 100), time.perf_counter() - started, outcome)
            # the refinement's starts: the best matches on the top-1's synth
            starts = [m for m in result.matches if m.preset.synth == engine.name][:DEFAULT_STARTS]
            rates = [bare_render_rate(m.preset, m.render.note, start.fit_notes[0].total_seconds) for m in starts]
            row["raw_rate"] = len(rates) / sum(1 / r for r in rates)
            rows.append(row)
            print(f"  {label}: {row['synth']} {row['preset']}: top-1 {row['top1']:.3f}, init {row['init']:.3f}, "
                  + ", ".join(f"{b}: {row[b][0]:.3f} in {row[b][1]:.0f} s" for b in budgets)
                  + f", from init {row['from_init'][0]:.3f}", file=sys.stderr)

    def mean(values) -> float:  # noqa: ANN001
        return float(np.mean(list(values)))

    init = mean(r["init"] for r in rows)
    top1 = mean(r["top1"] for r in rows)
    lines = ["| search | mean MR-STFT | / init patch | / unrefined top-1 | our distance, start -> refined (mean) | "
             "wall time per note (mean, max) | evaluations/s | render / loss thread-s per evaluation |",
             "|---|---|---|---|---|---|---|---|",
             f"| init patch | {init:.3f} | 1.00 | | | | | |",
             f"| top-1, unrefined | {top1:.3f} | {top1 / init:.2f} | 1.00 | | | | |"]
    for key, title in [*((b, f"refined from the matches, budget {b}") for b in budgets),
                       ("from_init", f"refined from the init patch, budget {max(budgets)} (ablation)")]:
        d = mean(r[key][0] for r in rows)
        times = [r[key][1] for r in rows]
        outcomes = [r[key][2] for r in rows]
        evals = sum(o.evaluations for o in outcomes)
        ours = (f"{mean(o.distance_before for o in outcomes):.3f} -> {mean(o.distance_after for o in outcomes):.3f}")
        lines.append(f"| {title} | {d:.3f} | {d / init:.2f} | {d / top1:.2f} | {ours} | "
                     f"{mean(times):.1f} s, {max(times):.1f} s | "
                     f"{evals / sum(o.seconds for o in outcomes):.1f} | "
                     f"{sum(o.render_seconds for o in outcomes) / evals * 1e3:.1f} ms / "
                     f"{sum(o.loss_seconds for o in outcomes) / evals * 1e3:.1f} ms |")
    big = max(budgets)
    ratio_init = mean(r[big][0] for r in rows) / init
    ratio_top = mean(r[big][0] for r in rows) / top1
    worst = max(r[big][1] for r in rows)
    lines += ["", f"Targets at budget {big}: mean <= 0.6 x init patch: {ratio_init:.2f} "
              f"({'met' if ratio_init <= 0.6 else 'MISSED'}); <= 0.85 x unrefined top-1: {ratio_top:.2f} "
              f"({'met' if ratio_top <= 0.85 else 'MISSED'}); <= 60 s per note: slowest {worst:.0f} s "
              f"({'met' if worst <= 60 else 'MISSED'}).", "",
              "| note | synth | top-1 preset | init | top-1 | " + " | ".join(f"refined {b}" for b in budgets)
              + " | from init | evaluations/s at " + str(big) + " | bare renders/s x " + str(workers) + " | ratio |",
              "|---|---|---|---|---|" + "---|" * len(budgets) + "---|---|---|---|"]
    for r in rows:
        outcome = r[big][2]
        rate = outcome.evaluations / outcome.seconds
        ideal = r["raw_rate"] * workers
        lines.append(f"| {r['note']} | {r['synth']} | {r['preset']} | {r['init']:.3f} | {r['top1']:.3f} | "
                     + " | ".join(f"{r[b][0]:.3f}" for b in budgets)
                     + f" | {r['from_init'][0]:.3f} | {rate:.1f} | {ideal:.1f} | {rate / ideal:.2f} |")
    command = (f"python scripts/bench_match.py --only refine --refine-notes {notes} --budgets "
               f"{','.join(map(str, budgets))} --workers {workers} --seed {seed} --index {index}")
    return (header("Refinement (CMA-ES) on the General MIDI notes", command)
            + f"\n{len(rows)} of the General MIDI notes of the out-of-domain benchmark (evenly spread over the "
            "list), each matched against both synths; the top-1 match is refined (`match --refine --budget N`) "
            "and the refined preset rendered on a fresh synth at the same pitch and length. MR-STFT as in the "
            "out-of-domain table (lower is better). Evaluations/s: parameter sets scored per second of wall "
            f"time with {workers} render threads; bare renders/s: the synth's own render call for the same "
            "note length, one thread, preset loaded once, over the refinement's start presets (harmonic "
            "mean; the ideal is that x workers; target >= 0.85). Our distance: the refinement loss "
            "(the re-ranker's perceptual distance plus a linear-frequency log-magnitude term) of the "
            "start and of the answer, on fresh renders. "
            "Render / loss: thread-seconds per evaluation spent rendering (warm-up and resampling included) "
            "and scoring.\n\n" + "\n".join(lines) + "\n")


def bare_synth(synth: str) -> tuple[Callable[[Preset], None], Callable[[int, float, float], None]]:
    """One instance of the synth's own engine at 44.1 kHz (the rate Patch Pilot renders at):
    ``load(preset)`` and ``render(note, note_seconds, total_seconds)`` at velocity 100."""
    engine = get_engine(synth)
    if synth == "vital":
        import vita

        vital = vita.Synth()
        vital.set_sample_rate(44100)
        return (lambda preset: vital.load_json(engine.to_json(preset)),
                lambda note, held, total: vital.render(note, 100 / 127, held, total))
    import dexed

    dx7 = dexed.DexedSynth(44100)
    return (lambda preset: dx7.load_patch(engine.patch(preset)),
            lambda note, held, total: dx7.render(note, 100, held, total))


def bare_render_rate(preset: Preset, note: int, seconds: float, count: int = 20) -> float:
    """Renders per second of the synth's own render call for one preset (loaded once)."""
    load, render = bare_synth(preset.synth)
    load(preset)
    render(note, seconds - 0.2, seconds)
    started = time.perf_counter()
    for _ in range(count):
        render(note, seconds - 0.2, seconds)
    return count / (time.perf_counter() - started)


# ---- speed --------------------------------------------------------------------------------
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
    command = f"python scripts/bench_match.py --only speed --workers {workers} --index {index}"
    return header("Speed", command) + "\n" + "\n".join(lines) + "\n"


def load_factory_bank_count(synth: str, plan) -> list:  # noqa: ANN001
    from patchpilot.index.builder import designed_and_variants

    return designed_and_variants(synth, plan)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("recovery", "ood", "speed", "refine"), action="append")
    parser.add_argument("--refine-notes", type=int, default=8, help="General MIDI notes the refine section uses")
    parser.add_argument("--budgets", default="500,2000", help="refinement budgets, comma-separated")
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="print every recovery miss")
    args = parser.parse_args()
    index = args.index or default_index_dir()
    sections = args.only or ["recovery", "ood", "speed"]
    if "recovery" in sections:
        write_section("recovery", recovery(index, args.queries, args.seed, args.candidates, args.verbose))
    if "ood" in sections:
        write_section("ood", ood(index, args.seed))
    if "speed" in sections:
        write_section("speed", speed(index, args.workers))
    if "refine" in sections:
        budgets = tuple(int(b) for b in args.budgets.split(","))
        write_section("refine", refinement(index, args.seed, args.refine_notes, budgets, args.workers))
    print(f"updated {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
