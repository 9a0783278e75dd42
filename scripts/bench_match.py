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
  synth's init patch and a random preset (``patchpilot/metrics.py``).
* tones: the held synthetic tones of ``tones.py`` (saws, squares, organs, filtered, driven),
  matched and scored like the General MIDI notes; ``close`` answers that are not, counted.
* refine: CMA-ES refinement of the top-1 match on a subset of the General MIDI notes at
  several budgets, an ablation from the init patch, wall time and evaluations per second.
* speed: `patchpilot match` on a 5-second clip as a whole process (first run and later
  runs); raw render throughput of each synth against build-index throughput.
* vital-fx: how close the `.with-fx.vital` export (the effect chain in Vital's own effects)
  comes to the preset through the pedalboard chain, against the dry preset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.audio.io import Audio, write_wav
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, EXPORT_SAMPLE_RATE_HZ
from patchpilot.metrics import mr_stft, mss
from patchpilot.paths import default_index_dir
from patchpilot.synths import Preset, get_engine

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
            result = pilot.matcher.match_audio(as_audio(audio, EXPORT_SAMPLE_RATE_HZ, sp.preset_id), top_k=candidates)
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
#: The out-of-domain benchmark's banks: MuseScore's and Frank Wen's FluidR3 (Debian packages
#: musescore-general-soundfont-small and fluid-soundfont-gm).
OOD_SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
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


def fluidsynth_render(mid: Path, wav: Path, what: str = "the ood benchmark", soundfont: str | None = None,
                      wet: bool = False) -> None:
    """Render a MIDI file with fluidsynth and ``soundfont`` (else the first General MIDI
    SoundFont found), at 44.1 kHz, with the SoundFont's reverb and chorus off (dry notes) or,
    ``wet``, on (fluidsynth's defaults: a note in a room, as a user would record it)."""
    fluidsynth = shutil.which("fluidsynth")
    soundfont = soundfont or next((s for s in SOUNDFONTS if Path(s).exists()), None)
    if fluidsynth is None or soundfont is None or not Path(soundfont).exists():
        raise SystemExit(f"{what} needs fluidsynth and a GM SoundFont: "
                         "apt-get install fluidsynth musescore-general-soundfont-small fluid-soundfont-gm")
    effects = "1" if wet else "0"
    subprocess.run([fluidsynth, "-ni", "-q", "-g", "0.8", "-R", effects, "-C", effects, "-r", str(EXPORT_SAMPLE_RATE_HZ),
                    "-F", str(wav), soundfont, str(mid)], check=True, capture_output=True)


def gm_note_list() -> list[tuple[str, int, int]]:
    """The benchmark's General MIDI notes: (label, program, note), 28 programs x 2 pitches."""
    return [(f"{name} ({note})", program, note) for program, name in GM_PROGRAMS
            for note in ((36, 43) if program in BASS_PROGRAMS else (57, 67))]


def gm_note_wav(folder: Path, program: int, note: int, soundfont: str | None = None, wet: bool = False) -> Path:
    """One General MIDI note rendered from ``soundfont`` into ``folder`` (``wet``: with the
    SoundFont's reverb and chorus)."""
    mid = folder / f"p{program:03d}_{note}.mid"
    wav = folder / f"{Path(soundfont or 'default').stem}_p{program:03d}_{note}{'_wet' if wet else ''}.wav"
    midi_note_file(mid, program, note)
    fluidsynth_render(mid, wav, soundfont=soundfont, wet=wet)
    return wav


def gm_notes(folder: Path, soundfont: str | None = None) -> list[tuple[str, Path]]:
    """The benchmark's General MIDI notes rendered from one SoundFont."""
    return [(label, gm_note_wav(folder, program, note, soundfont)) for label, program, note in gm_note_list()]


def gm_target(wav: Path) -> tuple[np.ndarray, int]:
    """A General MIDI note as the metrics compare it: mono, the MIDI file's 2.4 s (fluidsynth
    writes two more seconds of silence, which would dilute every distance)."""
    import soundfile

    samples, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    return samples.mean(axis=1)[: int(GM_TOTAL_SECONDS * rate)], rate


#: The two published measures every answer is scored with (``patchpilot/metrics.py``; the
#: tests hold them to auraloss' MultiResolutionSTFTLoss and to librosa).
mrstft_distance = mr_stft
mss_distance = mss


def both_metrics(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(MR-STFT, MSS dB) of ``other`` against ``reference`` (44.1 kHz, mono)."""
    return mrstft_distance(reference, other), mss_distance(reference, other)


def ood_soundfonts() -> list[str]:
    """Two General MIDI banks from different makers, so that no single bank is tuned to."""
    fonts = [f for f in OOD_SOUNDFONTS if Path(f).exists()]
    if not fonts:
        raise SystemExit("the ood benchmark needs General MIDI SoundFonts: "
                         "apt-get install fluidsynth musescore-general-soundfont-small fluid-soundfont-gm")
    return fonts


def timed_match(pilot: PatchPilot, wav: Path, row: dict, label: str, **options: object):
    """``pilot.match`` with its wall time in ``row["seconds"]``; a refused input (one line of
    error, as the CLI prints it) goes to ``row["refused"]`` and gives None: it is a result too."""
    try:
        started = time.perf_counter()
        result = pilot.match(wav, **options)
        row["seconds"] = time.perf_counter() - started
        return result
    except Exception as error:  # noqa: BLE001
        row["refused"] = str(error)
        print(f"  {label}: refused: {error}", file=sys.stderr)
        return None


def score_answer(pilot: PatchPilot, best, target: np.ndarray, rate: int, hold: float,
                 rng: np.random.Generator, rows_by_synth: dict[str, list[int]]) -> dict[str, tuple[float, float]]:
    """(MR-STFT, MSS) of a match's top-1 and of two baselines treated exactly like it: the
    synth's init patch and a random preset of the index, each played from its file on a fresh
    synth at the pitch the top-1 sounds at (a preset's pitch offset moves its key), with the
    top-1's velocity, ``hold`` and the target's length, then through the top-1's effect chain."""
    engine = get_engine(best.preset.synth)
    pitch = best.render.note + ((best.stored.pitch_offset or 0.0) if best.stored else 0.0)
    random_row = int(rng.choice(rows_by_synth[best.preset.synth]))
    random_sp = pilot.index.presets([random_row])[random_row]
    played = {
        "top1": (best.preset, best.render.note),
        "init": (engine.init_preset(), int(round(pitch))),
        "random": (random_sp.preset, int(np.clip(round(pitch - (random_sp.pitch_offset or 0.0)), 0, 127))),
    }
    # the top-1's effect chain runs on all three: the same rendering path
    return {key: both_metrics(target, best.fx.apply(engine.render(preset, key_note, best.render.velocity, hold,
                                                                  target.size / rate, sample_rate=rate), rate))
            for key, (preset, key_note) in played.items()}


def ood_rows(index: Path, seed: int, soundfonts: list[str]) -> list[dict]:
    """Match every General MIDI note with the default ``match`` (both synths) and score the
    top-1 and two baselines, each rendered from its preset file on a fresh synth at the
    input's pitch, with the top-1's velocity, note length and render length."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index) as pilot:
        rows_by_synth = {s: pilot.index.store.rows(s) for s in ("vital", "dexed")}
        for soundfont in soundfonts:
            for label, wav in gm_notes(Path(tmp), soundfont):
                target, rate = gm_target(wav)
                row: dict = {"soundfont": Path(soundfont).name, "note": label}
                result = timed_match(pilot, wav, row, label, top_k=1)
                rows.append(row)
                if result is None:
                    continue
                best = result.matches[0]
                row.update(score_answer(pilot, best, target, rate, GM_NOTE_SECONDS, rng, rows_by_synth))
                row.update(synth=best.preset.synth, preset=best.preset.name, distance=best.distance)
                print(f"  {row['soundfont']} {label}: {best.preset_id} d={best.distance:.2f} "
                      f"MR-STFT {row['top1'][0]:.2f}/{row['init'][0]:.2f} MSS {row['top1'][1]:.1f}/{row['init'][1]:.1f}",
                      file=sys.stderr)
    return rows


def metric_cells(row: dict) -> str:
    """A scored row's two per-answer table cells: MR-STFT and MSS of the top-1 / init / random."""
    return (f"{row['top1'][0]:.2f} / {row['init'][0]:.2f} / {row['random'][0]:.2f} | "
            f"{row['top1'][1]:.1f} / {row['init'][1]:.1f} / {row['random'][1]:.1f}")


def ood(index: Path, seed: int, rows: list[dict]) -> str:
    scored = [r for r in rows if "top1" in r]
    refused = [r for r in rows if "refused" in r]
    lines = ["| SoundFont | notes | refused | top-1 MR-STFT | init | random | top-1 / init | top-1 MSS (dB) | init | "
             "random | top-1 / init (MSS) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups = [(f, [r for r in scored if r["soundfont"] == f]) for f in dict.fromkeys(r["soundfont"] for r in rows)]
    for name, group in [*groups, ("all", scored)]:
        if not group:
            continue
        m = {k: np.array([r[k] for r in group]).mean(axis=0) for k in ("top1", "init", "random")}
        lines.append(f"| {name} | {len(group)} | {sum(r['soundfont'] == name for r in refused) if name != 'all' else len(refused)} "
                     f"| {m['top1'][0]:.3f} | {m['init'][0]:.3f} | {m['random'][0]:.3f} | {m['top1'][0] / m['init'][0]:.2f} "
                     f"| {m['top1'][1]:.2f} | {m['init'][1]:.2f} | {m['random'][1]:.2f} | {m['top1'][1] / m['init'][1]:.2f} |")
    m = {k: np.array([r[k] for r in scored]).mean(axis=0) for k in ("top1", "init")}
    ratio, mss = m["top1"][0] / m["init"][0], m["top1"][1]
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    targets = (f"Targets (issue 9): top-1 MR-STFT / init <= 0.50: {ratio:.2f} ({verdict(ratio <= 0.5)}; stretch 0.40); "
               f"top-1 MSS <= 7.0 dB: {mss:.2f} dB ({verdict(mss <= 7.0)}; stretch 5.5). For scale: Hayes et al. "
               "(ISMIR 2025) report 11.04 dB MSS for their flow-matching model on NSynth, out of domain "
               "(another data set: a reference point, not a comparison).")
    detail = ["| SoundFont | note | synth | top-1 preset | our distance | MR-STFT top-1 / init / random | "
              "MSS top-1 / init / random |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "refused" in r:
            detail.append(f"| {r['soundfont']} | {r['note']} | refused: {r['refused']} | | | | |")
            continue
        detail.append(f"| {r['soundfont']} | {r['note']} | {r['synth']} | {r['preset']} | {r['distance']:.2f} | "
                      f"{metric_cells(r)} |")
    command = f"python scripts/bench_match.py --only ood --seed {seed} --index {index}"
    return (header("Out-of-domain matching (General MIDI instruments)", command)
            + f"\nEach of 28 General MIDI programs at two pitches, from {len(groups)} SoundFonts by different makers "
            "(fluidsynth, the SoundFont's reverb and chorus off: dry notes, held 1.2 s, 2.4 s in all, 44.1 kHz), "
            "matched by the default `match` (both synths, top-1). Every candidate is scored as the user will hear "
            "it: its preset file loaded in a fresh synth instance and played at the input's pitch with the top-1's "
            "velocity, the note's own length (1.2 s) and the same render length. Baselines, treated the same way: "
            "the matched synth's init patch, and a preset of that synth drawn at random. MR-STFT: auraloss "
            "`MultiResolutionSTFTLoss()` defaults, both signals mono and RMS-normalised to 0.1. MSS: the multi-scale "
            "log-mel distance of Hayes et al. (librosa mel spectrograms at 10/25/100 ms windows, 5/10/50 ms hops, "
            "32/64/128 mels, `power_to_db(ref=max, top_db=80)`, mean absolute dB difference, averaged). Lower is "
            "better for both.\n\n" + "\n".join(lines) + "\n\n" + targets
            + "\n\n<details><summary>per note</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")


# ---- held synthetic tones --------------------------------------------------------------------
def tones_rows(index: Path, seed: int) -> list[dict]:
    """Match every held synthetic tone of ``tones.py`` with the default ``match`` and score the
    top-1 and the baselines as the General MIDI notes are scored (``score_answer``), with the
    tone's own hold and length."""
    import tones as tone_set

    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index) as pilot:
        rows_by_synth = {s: pilot.index.store.rows(s) for s in ("vital", "dexed")}
        for spec in tone_set.TONES:
            target = tone_set.tone(spec.name)
            wav = Path(tmp) / f"{spec.name.replace(' ', '-').replace('%', '')}.wav"
            write_wav(wav, target, tone_set.RATE)
            row: dict = {"soundfont": "tones", "note": spec.name}
            result = timed_match(pilot, wav, row, spec.name, top_k=1)
            rows.append(row)
            if result is None:
                continue
            best = result.matches[0]
            row.update(score_answer(pilot, best, target, tone_set.RATE, tone_set.HELD_SECONDS, rng, rows_by_synth))
            row.update(synth=best.preset.synth, preset=best.preset.name, distance=best.distance)
            print(f"  {spec.name}: {best.preset_id} d={best.distance:.2f} MR-STFT {row['top1'][0]:.2f}/"
                  f"{row['init'][0]:.2f} MSS {row['top1'][1]:.1f}/{row['init'][1]:.1f}", file=sys.stderr)
    return rows


def false_close(rows: list[dict]) -> list[dict]:
    """Answers labelled ``close`` that are not: MSS over CLOSE_MSS_DB, or further from the
    input than the init patch on either metric."""
    from patchpilot.confidence import confidence_label

    return [r for r in rows if "top1" in r and confidence_label(r["distance"]) == "close"
            and (r["top1"][1] > CLOSE_MSS_DB or r["top1"][0] > r["init"][0] or r["top1"][1] > r["init"][1])]


def tones_section(index: Path, seed: int, rows: list[dict]) -> str:
    from patchpilot.confidence import confidence_label

    scored = [r for r in rows if "top1" in r]
    m = {k: np.array([r[k] for r in scored]).mean(axis=0) for k in ("top1", "init", "random")}
    bad = false_close(rows)
    lines = ["| tones | refused | top-1 MR-STFT | init | random | top-1 / init | top-1 MSS (dB) | init | random | "
             "top-1 / init (MSS) | close / similar / rough | close but not (MSS > 5 dB or worse than init) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    labels = [confidence_label(r["distance"]) for r in scored]
    lines.append(f"| {len(scored)} | {len(rows) - len(scored)} | {m['top1'][0]:.3f} | {m['init'][0]:.3f} | "
                 f"{m['random'][0]:.3f} | {m['top1'][0] / m['init'][0]:.2f} | {m['top1'][1]:.2f} | {m['init'][1]:.2f} | "
                 f"{m['random'][1]:.2f} | {m['top1'][1] / m['init'][1]:.2f} | {labels.count('close')} / "
                 f"{labels.count('similar')} / {labels.count('rough')} | {len(bad)} |")
    detail = ["| tone | synth | top-1 preset | our distance (label) | MR-STFT top-1 / init / random | "
              "MSS top-1 / init / random |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "refused" in r:
            detail.append(f"| {r['note']} | refused: {r['refused']} | | | | |")
            continue
        flag = " **not close**" if r in bad else ""
        detail.append(f"| {r['note']} | {r['synth']} | {r['preset']} | {r['distance']:.2f} "
                      f"({confidence_label(r['distance'])}{flag}) | {metric_cells(r)} |")
    command = f"python scripts/bench_match.py --only tones --seed {seed} --index {index}"
    return (header("Held synthetic tones", command)
            + "\nThe 18 tones of `scripts/tones.py`, made here in numpy (band-limited additive partials, 44.1 kHz): "
            "saws, squares, pulses, a triangle, a sine, a drawbar organ, low-passed, resonant, swept and driven "
            "versions, a supersaw, a vibrato saw, an FM tone, a breathy triangle and a sub bass, from C2 to D5, "
            "held 1.2 s with a 5 ms attack and an 80 ms release, 2.0 s in all. Each is matched by the default "
            "`match` and scored as the General MIDI notes are (out-of-domain section): the top-1 from its preset "
            "file on a fresh synth through its effect chain, the init patch and a random preset the same way, with "
            "the top-1's velocity, the tone's hold and length. A `close` label is a promise: an answer labelled "
            f"close with an MSS over {CLOSE_MSS_DB:.0f} dB, or further than the init patch on either metric, is "
            "counted in the last column.\n\n" + "\n".join(lines)
            + "\n\n<details><summary>per tone</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")


# ---- effect chain -------------------------------------------------------------------------------
def scored_top1(pilot: PatchPilot, wav: Path, target: np.ndarray, rate: int, row: dict, name: str,
                label: str):  # the top-1 Match, or None where the input was refused
    """Match ``wav`` (top-1) and score the answer as the user hears it (its preset on a
    fresh synth at its note and velocity, then its chain) against ``target``: ``row[name]``
    gets (MR-STFT, MSS), ``row[name + "_chain"]`` the chain, ``row[name + "_seconds"]`` the time."""
    result = timed_match(pilot, wav, row, label, top_k=1)
    if result is None:
        return None
    best = result.matches[0]
    audio = best.fx.apply(get_engine(best.preset.synth).render(
        best.preset, best.render.note, best.render.velocity, GM_NOTE_SECONDS, target.size / rate, sample_rate=rate), rate)
    row[name] = both_metrics(target, audio)
    row[f"{name}_chain"] = best.fx.describe()
    row[f"{name}_seconds"] = row.pop("seconds")
    return best


def fx_section(index: Path, seed: int, step: int) -> str:
    """Matches with the effect chain against matches without it, on General MIDI notes
    recorded wet (the SoundFont's reverb and chorus on) and dry."""
    import torch

    torch.set_num_threads(1)
    soundfont = ood_soundfonts()[0]
    notes = gm_note_list()[::step]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index) as with_fx, PatchPilot(index, fx=False) as dry_only:
        for label, program, key in notes:
            for wet in (True, False):
                wav = gm_note_wav(Path(tmp), program, key, soundfont, wet=wet)
                target, rate = gm_target(wav)
                row: dict = {"note": label, "wet": wet}
                for name, pilot in (("fx", with_fx), ("dry", dry_only)):
                    best = scored_top1(pilot, wav, target, rate, row, name, label)
                    if best is None:
                        break
                    row[f"{name}_synth"] = best.preset.synth
                rows.append(row)
                if "fx" in row and "dry" in row:
                    print(f"  {label} {'wet' if wet else 'dry'}: {row['fx_chain']}: MR-STFT {row['dry'][0]:.3f} -> "
                          f"{row['fx'][0]:.3f}, MSS {row['dry'][1]:.2f} -> {row['fx'][1]:.2f}", file=sys.stderr)
    scored = [r for r in rows if "fx" in r and "dry" in r]
    lines = ["| notes | synth of the answer | n | MR-STFT without / with chain | ratio | MSS dB without / with | ratio | "
             "answers with a chain | match time without / with (median) |", "|---|---|---|---|---|---|---|---|---|"]
    verdicts = {}
    for wet in (True, False):
        for synth in ("all", "vital", "dexed"):
            group = [r for r in scored if r["wet"] == wet and (synth == "all" or r["fx_synth"] == synth)]
            if not group:
                continue
            dry = np.array([r["dry"] for r in group]).mean(axis=0)
            fx = np.array([r["fx"] for r in group]).mean(axis=0)
            ratio = fx / dry
            if synth == "all":
                verdicts[wet] = ratio
            chains = sum(r["fx_chain"] != "none" for r in group)
            times = (statistics.median(r["dry_seconds"] for r in group), statistics.median(r["fx_seconds"] for r in group))
            lines.append(f"| {'wet (reverb + chorus)' if wet else 'dry'} | {synth} | {len(group)} | {dry[0]:.3f} / "
                         f"{fx[0]:.3f} | {ratio[0]:.2f} | {dry[1]:.2f} / {fx[1]:.2f} | {ratio[1]:.2f} | {chains} | "
                         f"{times[0]:.1f} s / {times[1]:.1f} s |")
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    wet, dry = verdicts.get(True, np.ones(2)), verdicts.get(False, np.ones(2))
    targets = (f"Targets (issue 11): on wet notes the chain lowers both distances by >= 10 %: MR-STFT x{wet[0]:.3f}, "
               f"MSS x{wet[1]:.3f} ({verdict(wet[0] <= 0.9 and wet[1] <= 0.9)}); on dry notes it never raises the "
               f"distance by more than 2 %: MR-STFT x{dry[0]:.3f}, MSS x{dry[1]:.3f} "
               f"({verdict(dry[0] <= 1.02 and dry[1] <= 1.02)}).")
    detail = ["| note | recorded | answer without chain (synth) | chain found | MR-STFT without / with | MSS without / with |",
              "|---|---|---|---|---|---|"]
    for r in scored:
        detail.append(f"| {r['note']} | {'wet' if r['wet'] else 'dry'} | {r['dry_synth']} | {r['fx_chain']} | "
                      f"{r['dry'][0]:.2f} / {r['fx'][0]:.2f} | {r['dry'][1]:.1f} / {r['fx'][1]:.1f} |")
    command = f"python scripts/bench_match.py --only fx --fx-step {step} --seed {seed} --index {index}"
    return (header("Effect chain: matches with it against matches without it", command)
            + f"\n{len(notes)} General MIDI notes (every {step}th of the out-of-domain list, {Path(soundfont).name}), "
            "each rendered twice by fluidsynth: wet (the SoundFont's reverb and chorus on, fluidsynth's defaults: "
            "a note in a room) and dry. Each is matched by `match` (top-1, both synths) with the effect chain "
            "(default) and with `--no-fx`; each answer is scored as the user hears it: the preset file on a fresh "
            "synth at the answer's note and velocity, held 1.2 s, then through its chain. MR-STFT and MSS as in "
            "the out-of-domain section. The search and its constants were set on Dexed renders of our own through "
            "pedalboard effects, never on these notes.\n\n" + "\n".join(lines) + "\n\n" + targets
            + "\n\n<details><summary>per note</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")


# ---- a user's VST3 effect in the chain -------------------------------------------------------------
def fx_plugin_section(index: Path, seed: int, step: int, plugin: str) -> str:
    """Matches allowed a user's VST3 EQ (``--fx-plugin``) against matches with the built-in
    chain only, on General MIDI notes recorded through that EQ at random settings, and on
    the same notes without it."""
    import soundfile
    import torch

    from patchpilot.audio.io import write_wav
    from patchpilot.fx import Effect, FxChain
    from patchpilot.fx.plugin import plugin_effect_kind

    torch.set_num_threads(1)
    kind = plugin_effect_kind(plugin)
    rng = np.random.default_rng(seed)
    soundfont = ood_soundfonts()[0]
    notes = gm_note_list()[::step]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index, fx_plugins=[plugin]) as with_plugin, \
            PatchPilot(index) as builtin_only:
        for label, program, key in notes:
            plain = gm_note_wav(Path(tmp), program, key, soundfont)
            # the user's EQ: one band boosted or cut 6-15 dB somewhere in 300 Hz-5 kHz, a high shelf -10..+6 dB
            gain = float(rng.uniform(6, 15) * rng.choice([-1, 1]))
            colour = FxChain((Effect(kind, (("boost_cut_1_db", round(gain, 1)), ("bandwidth_1", round(float(
                rng.uniform(0.5, 2.0)), 2)), ("frequency_1_hz", round(float(np.exp(rng.uniform(np.log(300), np.log(5000)))))),
                ("boost_cut_h_db", round(float(rng.uniform(-10, 6)), 1)))),))
            samples, rate = soundfile.read(plain, dtype="float32", always_2d=True)
            coloured = Path(tmp) / f"{plain.stem}_eq.wav"
            write_wav(coloured, colour.apply(samples.mean(axis=1), rate), rate)
            for through, wav in ((True, coloured), (False, plain)):
                target, rate = gm_target(wav)
                row: dict = {"note": label, "through": through, "colour": colour.describe() if through else "none"}
                for name, pilot in (("plugin", with_plugin), ("builtin", builtin_only)):
                    best = scored_top1(pilot, wav, target, rate, row, name, label)
                    if best is None:
                        break
                    row[f"{name}_uses_plugin"] = any(e.spec is kind for e in best.fx.effects)
                rows.append(row)
                if "plugin" in row and "builtin" in row:
                    print(f"  {label} {'through EQ' if through else 'plain'}: {row['plugin_chain']}: MR-STFT "
                          f"{row['builtin'][0]:.3f} -> {row['plugin'][0]:.3f}, MSS {row['builtin'][1]:.2f} -> "
                          f"{row['plugin'][1]:.2f}", file=sys.stderr)
    scored = [r for r in rows if "plugin" in r and "builtin" in r]
    lines = ["| notes | n | MR-STFT built-in chain / with the plugin | ratio | MSS dB built-in / with the plugin | ratio | "
             "answers using the plugin | match time built-in / with the plugin (median) |", "|---|---|---|---|---|---|---|---|"]
    for through in (True, False):
        group = [r for r in scored if r["through"] == through]
        if not group:
            continue
        builtin = np.array([r["builtin"] for r in group]).mean(axis=0)
        with_it = np.array([r["plugin"] for r in group]).mean(axis=0)
        ratio = with_it / builtin
        times = (statistics.median(r["builtin_seconds"] for r in group), statistics.median(r["plugin_seconds"] for r in group))
        lines.append(f"| {'through the EQ' if through else 'plain'} | {len(group)} | {builtin[0]:.3f} / {with_it[0]:.3f} | "
                     f"{ratio[0]:.3f} | {builtin[1]:.2f} / {with_it[1]:.2f} | {ratio[1]:.3f} | "
                     f"{sum(r['plugin_uses_plugin'] for r in group)} | {times[0]:.1f} s / {times[1]:.1f} s |")
    detail = ["| note | recorded through | chain with the plugin allowed | MR-STFT built-in / with | MSS built-in / with |",
              "|---|---|---|---|---|"]
    for r in scored:
        detail.append(f"| {r['note']} | {r['colour']} | {r['plugin_chain']} | {r['builtin'][0]:.2f} / {r['plugin'][0]:.2f} | "
                      f"{r['builtin'][1]:.1f} / {r['plugin'][1]:.1f} |")
    command = f"python scripts/bench_match.py --only fx-plugin --fx-plugin-name {plugin} --fx-plugin-step {step} --seed {seed} --index {index}"
    return (header(f"A user's VST3 effect in the chain ({Path(kind.path).stem})", command)
            + f"\n{len(notes)} General MIDI notes (every {step}th of the out-of-domain list, {Path(soundfont).name}, dry), "
            f"each also put through the VST3 EQ {Path(kind.path).name} at random settings (seed {seed}): one band "
            "boosted or cut 6-15 dB at 300 Hz-5 kHz, bandwidth 0.5-2, and its high shelf at -10..+6 dB, as a "
            "recording through a user's EQ. Each is matched by `match` (top-1) with the plugin allowed in the chain "
            f"(`--fx-plugin {plugin}`) and with the built-in effects only (the default), and scored as the user hears "
            "it (preset file on a fresh synth, then its chain), MR-STFT and MSS as in the out-of-domain section. "
            "No setting of the plugin search was chosen on these notes.\n\n" + "\n".join(lines)
            + "\n\n<details><summary>per note</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")


# ---- export fidelity ----------------------------------------------------------------------------
def plain_render(preset_file: Path, note: int, velocity: int, held: float, total: float) -> np.ndarray:
    """A preset file loaded in a new instance of the synth package, nothing of Patch Pilot
    involved: what a user of ``vita`` or ``dexed-py`` hears (mono, 44.1 kHz)."""
    if preset_file.suffix == ".vital":
        import vita

        synth = vita.Synth()
        synth.load_preset(str(preset_file))
        return np.asarray(synth.render(note, velocity / 127, held, total)).mean(axis=0)
    import dexed

    synth = dexed.DexedSynth(EXPORT_SAMPLE_RATE_HZ)
    synth.load_patch(dexed.Patch.from_sysex(preset_file.read_bytes()[6:161]))  # the framed dump's bare voice
    return np.asarray(synth.render(note, velocity, held, total))


def fidelity(index: Path, seed: int, count: int) -> str:
    """Exported WAV against the exported preset file loaded fresh in the synth package."""
    import soundfile

    from patchpilot.export import export_preset

    rng = np.random.default_rng(seed)
    lines = ["| synth | presets | with chorus / phaser / flanger | MR-STFT mean | max | MSS mean (dB) | max |",
             "|---|---|---|---|---|---|---|"]
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index) as pilot:
        for synth in ("vital", "dexed"):
            rows = pilot.index.store.rows(synth)
            presets = list(pilot.index.store.iter_presets([int(r) for r in rng.choice(rows, count, replace=False)]))
            if synth == "vital":  # make sure the free-running effect LFOs are in the sample
                with_lfo_fx = [sp for sp in pilot.index.store.iter_presets(rows)
                               if any(sp.preset.values.get(f"{fx}_on", 0) >= 0.5 for fx in ("chorus", "phaser", "flanger"))]
                presets += [with_lfo_fx[int(i)] for i in rng.choice(len(with_lfo_fx), count // 2, replace=False)]
            scores, effects = [], 0
            for number, sp in enumerate(presets):
                note, velocity = int(rng.integers(40, 80)), int(rng.integers(40, 128))
                held = float(rng.uniform(0.3, 1.5))
                files = export_preset(sp.preset, Path(tmp), f"{synth}-{number}", note=note, velocity=velocity,
                                      note_seconds=held, total_seconds=held + 1.0)
                wav, _ = soundfile.read(files.audio_file, dtype="float32")
                fresh = plain_render(files.preset_file, note, velocity, held, held + 1.0)
                scores.append(both_metrics(wav, fresh.astype(np.float32)))
                effects += any(sp.preset.values.get(f"{fx}_on", 0) >= 0.5 for fx in ("chorus", "phaser", "flanger"))
            d = np.array(scores)
            verdicts.append(d[:, 0].mean() <= 0.05 and d[:, 0].max() <= 0.15)
            lines.append(f"| {synth} | {len(presets)} | {effects} | {d[:, 0].mean():.4f} | {d[:, 0].max():.4f} | "
                         f"{d[:, 1].mean():.3f} | {d[:, 1].max():.3f} |")
    command = f"python scripts/bench_match.py --only fidelity --fidelity-presets {count} --seed {seed} --index {index}"
    return (header("Export fidelity: the exported file loaded fresh against the WAV beside it", command)
            + "\nPresets of the index exported as a match is (`export_preset`: the preset file and a WAV, at a "
            "random note 40-79, velocity 40-127, held 0.3-1.5 s, +1 s), then the preset file loaded in a new "
            "`vita.Synth` (`load_preset`) or `dexed.DexedSynth` (`Patch.from_sysex` of the file's voice) and "
            "played at the same note, velocity and length, as a user of those packages would. MR-STFT and MSS "
            "between that and the WAV. Targets: MR-STFT mean <= 0.05, max <= 0.15: "
            f"{'met' if all(verdicts) else 'MISSED'}.\n\n" + "\n".join(lines) + "\n")


# ---- neural proposals -------------------------------------------------------------------------
def proposals(index: Path, step: int) -> str:
    """Every ``step``-th General MIDI note of both SoundFonts matched per synth with and without
    the neural proposals: what the proposals change, and where they rank."""
    from patchpilot.proposal import PROPOSALS_PER_SYNTH

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index, proposals=True) as on, \
            PatchPilot(index, proposals=False) as off:
        for font in ood_soundfonts():
            for label, program, note in gm_note_list()[::step]:
                wav = gm_note_wav(Path(tmp), program, note, font)
                target, rate = gm_target(wav)
                for synth in ("dexed", "vital"):
                    row: dict = {"note": f"{label} ({Path(font).stem})", "synth": synth}
                    for key, pilot in (("on", on), ("off", off)):
                        result = pilot.match(wav, top_k=40, synth=synth)
                        best = result.matches[0]
                        audio = get_engine(synth).render(best.preset, best.render.note, best.render.velocity,
                                                         GM_NOTE_SECONDS, GM_TOTAL_SECONDS, sample_rate=rate)
                        row[key] = (best.distance, *both_metrics(target, audio))
                        if key == "on":
                            ranks = [m.rank for m in result.matches if ":proposed-" in m.preset_id]
                            row["rank"] = min(ranks) if ranks else None
                            row["won"] = ":proposed-" in best.preset_id
                    rows.append(row)
                    print(f"  {synth} {row['note']}: best proposal rank {row['rank']}, with {row['on']}, "
                          f"without {row['off']}", file=sys.stderr)
    lines = ["| synth | notes | proposal ranked first | median rank of the best proposal | our distance with / without "
             "| MR-STFT with / without | MSS dB with / without |", "|---|---|---|---|---|---|---|"]
    for synth in ("dexed", "vital"):
        group = [r for r in rows if r["synth"] == synth]
        on_m, off_m = (np.mean([r[k] for r in group], axis=0) for k in ("on", "off"))
        ranks = [r["rank"] for r in group if r["rank"] is not None]
        lines.append(f"| {synth} | {len(group)} | {sum(r['won'] for r in group)} | "
                     f"{statistics.median(ranks) if ranks else float('nan'):.0f} | {on_m[0]:.3f} / {off_m[0]:.3f} | "
                     f"{on_m[1]:.3f} / {off_m[1]:.3f} | {on_m[2]:.2f} / {off_m[2]:.2f} |")
    command = f"python scripts/train_proposals.py && python scripts/bench_match.py --only proposals --index {index}"
    return (header("Neural proposals", command)
            + f"\nThe proposal networks (`patchpilot/proposal.py`, trained by `scripts/train_proposals.py` on the "
            f"shipped index's vectors and presets, {PROPOSALS_PER_SYNTH} proposals per synth and query) against "
            f"the same matcher without them, on every {step}th General MIDI note of both SoundFonts, per synth "
            "(`match --synth S`). Scored like the out-of-domain section (top-1 from its file on a fresh synth; "
            "MR-STFT and MSS against the note's 2.4 s). Rank: where the best proposal lands among the re-ranked "
            "candidates (1 = it is the answer). `scripts/train_proposals.py --holdout 0.15` trains without 15 % of "
            "the preset families and reports, on renders of those, how often a proposal sounds closer than the "
            "nearest library preset by vector (one of the 24 candidates the re-ranker weighs).\n\n" + "\n".join(lines) + "\n")


# ---- confidence labels ----------------------------------------------------------------------
#: An out-of-domain answer is "rough" when its MSS is at least this fraction of what a preset
#: drawn at random scores on average (MSS, not MR-STFT: the re-ranker's distance follows MSS,
#: rank correlation about 0.7, while MR-STFT's ratio to the init patch hardly relates to either).
ROUGH_OUTCOME_SHARE = 0.75
#: A ``close`` answer must be within this MSS of the input (and no further than the init patch).
CLOSE_MSS_DB = 5.0


def calibrate(index: Path, seed: int, queries: int, found: list[dict], ood: list[dict], tones: list[dict]) -> str:
    """Thresholds of the confidence labels from the benchmark's distances. ``close``: up to
    what the same preset at another note and velocity scores (90th percentile of recovered
    queries), but below every answer to a General MIDI note or a held tone that is not close
    (MSS over CLOSE_MSS_DB, or further than the init patch on either metric). ``rough``:
    beyond the distance that best separates the answers that barely beat a random preset
    from the others."""
    from patchpilot.confidence import CLOSE_MAX_DISTANCE, SIMILAR_MAX_DISTANCE, confidence_label

    hits = np.array([r["true_distance"] for r in found if r["rank"] == 0])
    close_p90 = float(np.percentile(hits, 90))
    scored = [r for r in ood + tones if "top1" in r]
    not_close = [r for r in scored if r["top1"][1] > CLOSE_MSS_DB or r["top1"][0] > r["init"][0]
                 or r["top1"][1] > r["init"][1]]
    cap = min((r["distance"] for r in not_close), default=float("inf"))
    close_max = min(close_p90, cap - 0.005)
    d = np.array([r["distance"] for r in scored])
    rough_mss = ROUGH_OUTCOME_SHARE * float(np.mean([r["random"][1] for r in scored]))
    rough = np.array([r["top1"][1] >= rough_mss for r in scored])
    best, similar_max = -1.0, float("nan")
    for threshold in np.unique(d):
        predicted = d > threshold
        balanced = 0.5 * ((predicted & rough).sum() / max(rough.sum(), 1)
                          + (~predicted & ~rough).sum() / max((~rough).sum(), 1))
        if balanced > best:
            best, similar_max = float(balanced), float(threshold)
    lines = ["| label (shipped thresholds) | set | answers | MSS dB (mean) | MSS / init patch's | "
             "MR-STFT / init patch's | share with a rough outcome | close but not |", "|---|---|---|---|---|---|---|---|"]
    for label in ("close", "similar", "rough"):
        for name, rows in (("General MIDI", ood), ("held tones", tones)):
            group = [r for r in rows if "top1" in r and confidence_label(r["distance"]) == label]
            if group:
                mss_mean = np.mean([r["top1"][1] for r in group])
                mss_ratio = np.mean([r["top1"][1] / r["init"][1] for r in group])
                mr_ratio = np.mean([r["top1"][0] / r["init"][0] for r in group])
                share = np.mean([r["top1"][1] >= rough_mss for r in group])
                wrong = len(false_close(group)) if label == "close" else ""
                lines.append(f"| {label} | {name} | {len(group)} | {mss_mean:.2f} | {mss_ratio:.2f} | {mr_ratio:.2f} | "
                             f"{share:.2f} | {wrong} |")
    command = (f"python scripts/bench_match.py --only ood --only calibrate --queries {queries} --seed {seed} "
               f"--index {index}")
    return (header("Confidence labels", command)
            + "\nThe re-ranker's distance of the answer is labelled close / similar / rough "
            "(`patchpilot/confidence.py`). Close: up to the 90th percentile of the distance at which the same "
            f"preset, played at another note and velocity with noise, comes back first ({len(hits)} of {len(found)} "
            f"recovery queries, seed {seed + 1}): {close_p90:.3f}, but under every answer of the out-of-domain notes "
            f"and the held tones that is not close (MSS over {CLOSE_MSS_DB:.0f} dB or further than the init patch on "
            f"either metric; {len(not_close)} of {len(scored)} answers, the nearest at {cap:.3f}): **{close_max:.3f}**. "
            "Rough: beyond the distance that best separates "
            f"(balanced accuracy {best:.2f}) the answers whose MSS is at least {ROUGH_OUTCOME_SHARE} x "
            f"the mean MSS of a random preset ({rough_mss:.1f} dB; {int(rough.sum())} of {len(scored)} answers) from "
            f"the others: **{similar_max:.3f}**. Shipped: close <= {CLOSE_MAX_DISTANCE}, similar <= "
            f"{SIMILAR_MAX_DISTANCE}. The notes and tones that set the thresholds are the benchmark's own, so the "
            "table below describes the labels; the held-out designers' and imported presets' sections test them."
            "\n\n" + "\n".join(lines) + "\n")


# ---- refinement ---------------------------------------------------------------------------
def refinement(index: Path, seed: int, notes: int, budgets: tuple[int, ...], workers: int,
               discrete: bool = False, hold: bool = False, hold_check: bool = False, fx: bool = True,
               full_band: bool = True) -> str:
    """CMA-ES refinement on a subset of the General MIDI notes: MR-STFT and MSS of the top-1
    match before and after refining at each budget, from the init patch at the largest budget,
    with wall time and evaluations per second against the synth's bare render rate."""
    import torch

    from patchpilot.audio.analysis import compare_window
    from patchpilot.refine import DEFAULT_STARTS, RefineOptions, StartPoint, fit_notes_for

    torch.set_num_threads(1)
    rows: list[dict] = []
    soundfont = ood_soundfonts()[0]
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index, workers=workers, fx=fx) as pilot:
        every = gm_notes(Path(tmp), soundfont)
        chosen = [every[round(i * len(every) / notes)] for i in range(notes)] if notes < len(every) else every
        for label, wav in chosen:
            target, rate = gm_target(wav)
            total = target.size / rate
            result = pilot.match(wav, top_k=5, full_band=full_band)
            if full_band and result.analysis.full_band is None:
                raise SystemExit(f"{label}: no full-band copy of the note")
            top = result.matches[0]
            engine = get_engine(top.preset.synth)
            settings = top.render
            # every preset is played from its file on a fresh synth, with the top-1's velocity
            # and the note's own length; the init patch sounds at the pitch the top-1 sounds at
            played = settings.note + int(round((top.stored.pitch_offset or 0.0) if top.stored else 0.0))

            def metrics_of(preset, note=settings.note, fx=top.fx):
                # through an effect chain: the answer's own, else the top-1's (the same path)
                audio = engine.render(preset, note, settings.velocity, GM_NOTE_SECONDS, total, sample_rate=rate)
                return both_metrics(target, fx.apply(audio, rate))

            row = {"note": label, "synth": engine.name, "preset": top.preset.name, "top1": metrics_of(top.preset),
                   "init": metrics_of(engine.init_preset(), played)}
            for budget in budgets:
                started = time.perf_counter()
                refined = pilot.refine(result, RefineOptions(budget=budget, seed=seed, discrete=discrete, hold=hold,
                                                             hold_check=hold_check, full_band=full_band))
                # the match the search started from carries its outcome (the answer when it won)
                outcome = next(m.refinement for m in refined.matches if m.refinement is not None)
                first = refined.matches[0]  # played as its start match was: its own note
                row[budget] = (metrics_of(first.preset, first.render.note, first.fx), time.perf_counter() - started,
                               outcome)
            # Ablation: the same search from the init patch, at the largest budget.
            analysis = result.analysis
            window_note, _ = compare_window(analysis.best)
            refiner = pilot.matcher.refiner_for(analysis, full_band)  # the refinement loss, as `match --refine` uses
            start = StartPoint(engine.init_preset(), "init",
                               fit_notes_for(analysis, played, settings.velocity, window_note, refiner.distance))
            started = time.perf_counter()
            outcome = refiner.refine([start], RefineOptions(budget=max(budgets), seed=seed, discrete=discrete, hold=hold,
                                                            hold_check=hold_check, full_band=full_band))
            row["from_init"] = (metrics_of(outcome.preset, played), time.perf_counter() - started, outcome)
            # the refinement's starts: the best matches on the top-1's synth
            starts = [m for m in result.matches if m.preset.synth == engine.name][:DEFAULT_STARTS]
            rates = [bare_render_rate(m.preset, m.render.note, start.fit_notes[0].total_seconds) for m in starts]
            row["raw_rate"] = len(rates) / sum(1 / r for r in rates)
            rows.append(row)
            print(f"  {label}: {row['synth']} {row['preset']}: top-1 {row['top1']}, init {row['init']}, "
                  + ", ".join(f"{b}: {row[b][0]} in {row[b][1]:.0f} s" for b in budgets)
                  + f", from init {row['from_init'][0]}, discrete changes kept: "
                  + (", ".join(row[max(budgets)][2].discrete_changes) or "none"), file=sys.stderr)

    def mean(values) -> np.ndarray:
        return np.mean(np.array(list(values), dtype=float), axis=0)

    init = mean(r["init"] for r in rows)
    top1 = mean(r["top1"] for r in rows)
    lines = ["| search | MR-STFT (mean) | MSS dB (mean) | / init patch (MR-STFT, MSS) | / unrefined top-1 (MR-STFT, MSS) | "
             "our distance, start -> refined (mean) | wall time per note (median, max) | evaluations/s | "
             "render / loss thread-s per evaluation |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| init patch | {init[0]:.3f} | {init[1]:.2f} | 1.00, 1.00 | | | | | |",
             f"| top-1, unrefined | {top1[0]:.3f} | {top1[1]:.2f} | {top1[0] / init[0]:.2f}, {top1[1] / init[1]:.2f} "
             "| 1.00, 1.00 | | | | |"]
    for key, title in [*((b, f"refined from the matches, budget {b}") for b in budgets),
                       ("from_init", f"refined from the init patch, budget {max(budgets)} (ablation)")]:
        d = mean(r[key][0] for r in rows)
        times = [r[key][1] for r in rows]
        outcomes = [r[key][2] for r in rows]
        evals = sum(o.evaluations for o in outcomes)
        ours = (f"{float(mean(o.distance_before for o in outcomes)):.3f} -> "
                f"{float(mean(o.distance_after for o in outcomes)):.3f}")
        lines.append(f"| {title} | {d[0]:.3f} | {d[1]:.2f} | {d[0] / init[0]:.2f}, {d[1] / init[1]:.2f} | "
                     f"{d[0] / top1[0]:.2f}, {d[1] / top1[1]:.2f} | {ours} | "
                     f"{statistics.median(times):.1f} s, {max(times):.1f} s | "
                     f"{evals / sum(o.seconds for o in outcomes):.1f} | "
                     f"{sum(o.render_seconds for o in outcomes) / evals * 1e3:.1f} ms / "
                     f"{sum(o.loss_seconds for o in outcomes) / evals * 1e3:.1f} ms |")
    big = max(budgets)
    gain = mean(r[big][0] for r in rows) / top1
    median_time = statistics.median(r[big][1] for r in rows)
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    lines += ["", f"Targets at budget {big} (issue 9): refined / unrefined top-1 <= 0.90 on both metrics: MR-STFT "
              f"{gain[0]:.2f}, MSS {gain[1]:.2f} ({verdict(gain[0] <= 0.9 and gain[1] <= 0.9)}; stretch 0.75); median "
              f"wall time a note <= 30 s: {median_time:.0f} s ({verdict(median_time <= 30)}; stretch 15 s).", "",
              "| note | synth | top-1 preset | init | top-1 | " + " | ".join(f"refined {b}" for b in budgets)
              + " | from init | evaluations/s at " + str(big) + " | bare renders/s x " + str(workers) + " | ratio | "
              "discrete changes kept at " + str(big) + " |",
              "|---|---|---|---|---|" + "---|" * len(budgets) + "---|---|---|---|---|"]
    pair = lambda m: f"{m[0]:.2f} / {m[1]:.1f}"  # noqa: E731
    for r in rows:
        outcome = r[big][2]
        rate = outcome.evaluations / outcome.seconds
        ideal = r["raw_rate"] * workers
        lines.append(f"| {r['note']} | {r['synth']} | {r['preset']} | {pair(r['init'])} | {pair(r['top1'])} | "
                     + " | ".join(pair(r[b][0]) for b in budgets)
                     + f" | {pair(r['from_init'][0])} | {rate:.1f} | {ideal:.1f} | {rate / ideal:.2f} | "
                     + (", ".join(outcome.discrete_changes) or "none") + " |")
    command = (f"python scripts/bench_match.py --only refine --refine-notes {notes} --budgets "
               f"{','.join(map(str, budgets))} --workers {workers} --seed {seed} --index {index}"
               + (" --refine-discrete" if discrete else "") + (" --refine-hold" if hold else "")
               + (" --refine-hold-check" if hold_check else "") + ("" if fx else " --no-fx")
               + ("" if full_band else " --refine-analysis-rate"))
    title = ("Refinement (CMA-ES) on the General MIDI notes" + ("" if fx else ", without the effect chain")
             + ("" if full_band else ", scored at the analysis rate (22.05 kHz)"))
    return (header(title, command)
            + f"\n{len(rows)} of the General MIDI notes of the out-of-domain benchmark ({Path(soundfont).name}, evenly "
            "spread over the list), each matched against both synths; the top-1 match is refined (`match --refine "
            "--budget N`). Every preset is scored from its file on a fresh synth, at the top-1's velocity, the "
            "note's length and the same render length; MR-STFT and MSS as in the out-of-domain section (lower is "
            "better; per-note cells are MR-STFT / MSS dB). Evaluations/s: parameter sets scored per second of wall "
            f"time with {workers} render threads; bare renders/s: the synth's own render call for the same "
            "note length, one thread, preset loaded once, over the refinement's start presets (harmonic "
            "mean; the ideal is that x workers). Our distance: the refinement loss of the start and of the "
            "answer, on fresh renders. Render / loss: thread-seconds per evaluation spent rendering (warm-up "
            "and resampling included) and scoring.\n\n" + "\n".join(lines) + "\n")


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


# ---- the effect chain inside a .vital file ------------------------------------------------
def vital_fx_section(index: Path, seed: int, trials: int) -> str:
    """How close ``<name>.with-fx.vital`` (the chain set in Vital's own effects) comes to the
    preset played through the pedalboard chain, against the dry preset, per effect."""
    from patchpilot.fx import EFFECT_KINDS, Effect, FxChain
    from patchpilot.index.index import PresetIndex
    from patchpilot.synths.vital_fx import VITAL_EFFECT

    rng = np.random.default_rng(seed)
    engine = get_engine("vital")
    placed = [kind for kind in EFFECT_KINDS if kind.name in VITAL_EFFECT]
    pairs: dict[str, list[tuple[float, float, float, float]]] = {kind.name: [] for kind in placed}
    busy = 0
    with PresetIndex.open(index) as opened:
        rows = opened.store.rows("vital")
        for trial in range(trials):
            row = int(rng.choice(rows))
            preset = opened.presets([row])[row].preset
            kind = placed[trial % len(placed)]
            chain = FxChain((Effect(kind.name, tuple((c.name, c.value(rng.uniform())) for c in kind.controls)),))
            data, left_out = engine.preset_bytes_with_fx(preset, chain)
            if left_out:  # the preset already uses that Vital effect
                busy += 1
                continue
            dry = engine.play_file(engine.preset_bytes(preset), 60, 100, 1.0, 2.5, sample_rate=EXPORT_SAMPLE_RATE_HZ)
            exact = chain.apply(dry, EXPORT_SAMPLE_RATE_HZ)
            inside = engine.play_file(data, 60, 100, 1.0, 2.5, sample_rate=EXPORT_SAMPLE_RATE_HZ)
            pairs[kind.name].append((*both_metrics(exact, dry), *both_metrics(exact, inside)))
    lines = ["| effect | Vital's stand-in | pairs | MR-STFT: dry preset / .with-fx.vital | MSS dB: dry / .with-fx.vital |",
             "|---|---|---|---|---|"]
    for name, values in pairs.items():
        if values:
            m = np.mean(values, axis=0)
            lines.append(f"| {name} | {VITAL_EFFECT[name]} | {len(values)} | {m[0]:.3f} / {m[2]:.3f} | "
                         f"{m[1]:.2f} / {m[3]:.2f} |")
    return (header("Effects inside a .vital file: how close `.with-fx.vital` comes to the chain",
                   f"python scripts/bench_match.py --only vital-fx --vital-fx-trials {trials} --seed {seed} "
                   f"--index {index}")
            + f"\n{trials} draws (seed {seed}): a random Vital preset of the index and one effect of the chain with "
            "random settings in its searched ranges, taking each effect Vital has a stand-in for in turn "
            f"(`synths/vital_fx.py`; {busy} draws skipped where the preset already used that Vital effect). The "
            "reference is the preset file played fresh at note 60, velocity 100, held 1 s, 2.5 s in all, through "
            "pedalboard's effect (what the exported WAV plays); against it, MR-STFT and MSS of the dry preset and of "
            "the `.with-fx.vital` file played the same way. Lower is closer; the stand-in helps where the second "
            "figure is below the first.\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("recovery", "ood", "tones", "speed", "refine", "calibrate", "proposals",
                                           "fidelity", "fx", "vital-fx", "fx-plugin"), action="append")
    parser.add_argument("--vital-fx-trials", type=int, default=70, help="draws of the vital-fx section")
    parser.add_argument("--fx-step", type=int, default=2, help="every Nth GM note for the fx section")
    parser.add_argument("--fx-plugin-name", default="ZamEQ2", help="the VST3 EQ the fx-plugin section uses")
    parser.add_argument("--fx-plugin-step", type=int, default=4, help="every Nth GM note for the fx-plugin section")
    parser.add_argument("--no-fx", dest="fx", action="store_false",
                        help="refine section: match without the effect chain (written as its own section)")
    parser.add_argument("--fidelity-presets", type=int, default=30, help="presets per synth the fidelity section exports")
    parser.add_argument("--proposal-step", type=int, default=4, help="every Nth GM note for the proposals section")
    parser.add_argument("--refine-notes", type=int, default=8, help="General MIDI notes the refine section uses")
    parser.add_argument("--budgets", default="500,2000", help="refinement budgets, comma-separated")
    parser.add_argument("--refine-discrete", action="store_true", help="refine section: the discrete stage on")
    parser.add_argument("--refine-hold", action="store_true", help="refine section: search the note's hold too")
    parser.add_argument("--refine-hold-check", action="store_true",
                        help="refine section: the final check also plays the note held half and twice as long")
    parser.add_argument("--refine-analysis-rate", action="store_true",
                        help="refine section: score at 22.05 kHz, not on the input's 44.1 kHz copy as match --refine does")
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="print every recovery miss")
    parser.add_argument("--rows-out", type=Path, default=None,
                        help="also write the rows of the ood, tones and calibrate sections as JSON")
    parser.add_argument("--rows-in", type=Path, default=None,
                        help="reuse the rows of a --rows-out file instead of matching again")
    args = parser.parse_args()
    index = args.index or default_index_dir()
    sections = args.only or ["recovery", "ood", "speed"]
    if "recovery" in sections:
        write_section("recovery", recovery(index, args.queries, args.seed, args.candidates, args.verbose))
    saved = json.loads(args.rows_in.read_text()) if args.rows_in else {}
    if isinstance(saved, list):  # an ood-only file of an earlier version
        saved = {"ood": saved}
    if "ood" in sections or "calibrate" in sections:
        saved["ood"] = saved.get("ood") or ood_rows(index, args.seed, ood_soundfonts())
    if "tones" in sections or "calibrate" in sections:
        saved["tones"] = saved.get("tones") or tones_rows(index, args.seed)
    if "calibrate" in sections:
        saved["recovery"] = saved.get("recovery") or recovery_rows(index, args.queries, args.seed + 1,
                                                                   args.candidates)[0]
    if args.rows_out:
        args.rows_out.write_text(json.dumps(saved, indent=1))
    if "ood" in sections:
        write_section("ood", ood(index, args.seed, saved["ood"]))
    if "tones" in sections or "calibrate" in sections:
        write_section("tones", tones_section(index, args.seed, saved["tones"]))
    if "calibrate" in sections:
        write_section("calibrate", calibrate(index, args.seed, args.queries, saved["recovery"], saved["ood"],
                                             saved["tones"]))
    if "speed" in sections:
        write_section("speed", speed(index, args.workers))
    if "fidelity" in sections:
        write_section("fidelity", fidelity(index, args.seed, args.fidelity_presets))
    if "proposals" in sections:
        write_section("proposals", proposals(index, args.proposal_step))
    if "fx" in sections:
        write_section("fx", fx_section(index, args.seed, args.fx_step))
    if "fx-plugin" in sections:
        write_section("fx-plugin", fx_plugin_section(index, args.seed, args.fx_plugin_step, args.fx_plugin_name))
    if "vital-fx" in sections:
        write_section("vital-fx", vital_fx_section(index, args.seed, args.vital_fx_trials))
    if "refine" in sections:
        budgets = tuple(int(b) for b in args.budgets.split(","))
        name = "refine-22k" if args.refine_analysis_rate else "refine" if args.fx else "refine-nofx"
        write_section(name, refinement(index, args.seed, args.refine_notes, budgets, args.workers, args.refine_discrete,
                                       args.refine_hold, args.refine_hold_check, args.fx,
                                       not args.refine_analysis_rate))
    print(f"updated {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
