#!/usr/bin/env python
"""Does the re-ranker's distance agree with the yardstick? Per query, the rank correlation
(Spearman) of ``distance.py`` with MR-STFT and with MSS over the query's candidates, on
held synthetic tones (``tones.py``), General MIDI notes and copies of some of both with white
noise at -30 dB.

    python -m scripts.bench_distance                 # builds the cache (once), writes the section
    python -m scripts.bench_distance --cache DIR --no-report

The candidates are what retrieval hands the re-ranker for each query (the nearest presets
by vector, and each cheap synth's extra ones), played from their preset files on a fresh
synth at the retrieved note, velocity 100, held as long as the input's note and as long as
the input (44.1 kHz): the same for every distance compared, so the candidates do not depend
on the distance under test. MR-STFT and MSS are measured against the clean input (for a noisy
copy: what the user wants found is the sound under the noise); the distance hears the input
as given, at the analysis rate, as ``match`` does. The cache (renders and metrics) makes a
re-run after a change of the distance take a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy's first import

import numpy as np

from scripts.bench_match.gm import GM_NOTE_SECONDS, gm_note_list, gm_note_wav, gm_target, ood_soundfonts
from scripts.bench_match.report import NOISE_DB, header, write_section
from scripts.tones import HELD_SECONDS, RATE, TONES, tone

from patchpilot.api import PatchPilot
from patchpilot.audio.analysis import ClipAnalysis, analyse_clip
from patchpilot.audio.io import Audio, resample
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, DEFAULT_RERANK_CANDIDATES, DEFAULT_VELOCITY
from patchpilot.distance import PerceptualDistance
from patchpilot.matching import Matcher
from patchpilot.metrics import mr_stft, mss
from patchpilot.synths import get_engine

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "patchpilot-bench-distance"
#: Every NOISY_STEP-th query also gets a copy with white noise at NOISE_DB.
NOISY_STEP = 3


@dataclass
class Query:
    name: str
    kind: str  # "tone", "gm" or "noisy"
    clean: np.ndarray  # 44.1 kHz mono: what the metrics compare with
    heard: np.ndarray  # what the matcher hears (clean, or with noise)
    held: float


def queries(gm_step: int, seed: int, gm_offset: int = 0, tones: bool = True) -> list[Query]:
    """Held synthetic tones (unless not ``tones``), every ``gm_step``-th General MIDI note of
    each SoundFont from the ``gm_offset``-th, and a noisy copy of every NOISY_STEP-th of those."""
    out = [Query(t.name, "tone", tone(t.name), tone(t.name), HELD_SECONDS) for t in TONES] if tones else []
    with tempfile.TemporaryDirectory() as tmp:
        for soundfont in ood_soundfonts():
            for label, program, note in gm_note_list()[gm_offset::gm_step]:
                target, rate = gm_target(gm_note_wav(Path(tmp), program, note, soundfont))
                assert rate == RATE
                name = f"{Path(soundfont).stem[:10]} {label}"
                out.append(Query(name, "gm", target, target, GM_NOTE_SECONDS))
    rng = np.random.default_rng(seed)
    for q in list(out[::NOISY_STEP]):
        level = float(np.sqrt(np.mean(q.clean[: int(q.held * RATE)].astype(np.float64) ** 2)))
        noisy = q.clean + rng.normal(0, level * 10 ** (NOISE_DB / 20), q.clean.size).astype(np.float32)
        out.append(Query(f"{q.name} + noise", "noisy", q.clean, noisy, q.held))
    return out


def build(cache: Path, index: Path, gm_step: int, seed: int, gm_offset: int = 0, tones: bool = True) -> None:
    """Render every query's candidates and measure them; one npz per query in ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = queries(gm_step, seed, gm_offset, tones)
    with PatchPilot(index) as pilot:
        matcher = pilot.matcher
        for number, q in enumerate(todo, start=1):
            path = cache / f"{number:03d}.npz"
            if path.exists():
                continue
            started = time.perf_counter()
            note = heard_analysis(q.heard, q.name).best
            vector = matcher.index.transform.apply(matcher.embedder.features([note.samples]))[0]
            found, more = matcher.retrieval.candidates(vector, note, None, DEFAULT_RERANK_CANDIDATES)
            stored = matcher.index.presets([c.row for c in found + more])
            ids, renders, metrics, played = [], [], [], []
            for c in found + more:
                if c.row not in stored:
                    continue
                sp = stored[c.row]
                audio = get_engine(sp.preset.synth).render(sp.preset, c.notes[0], DEFAULT_VELOCITY, q.held,
                                                           q.clean.size / RATE, sample_rate=RATE)
                ids.append(sp.preset_id)
                played.append(c.notes[0])
                renders.append(audio)
                metrics.append((mr_stft(q.clean, audio), mss(q.clean, audio)))
            np.savez_compressed(path, name=q.name, kind=q.kind, clean=q.clean, heard=q.heard, held=q.held,
                                ids=np.array(ids), notes=np.array(played), renders=np.array(renders, dtype=np.float32),
                                metrics=np.array(metrics))
            print(f"  {number}/{len(todo)} {q.name}: {len(ids)} candidates, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)


def heard_analysis(samples: np.ndarray, name: str) -> ClipAnalysis:
    """The input as ``match`` analyses it (at the analysis rate)."""
    audio = Audio(resample(np.asarray(samples, np.float32), RATE, ANALYSIS_SAMPLE_RATE_HZ), ANALYSIS_SAMPLE_RATE_HZ, name)
    return analyse_clip(audio)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def load(cache: Path) -> list[dict]:
    return [dict(np.load(path)) for path in sorted(cache.glob("*.npz"))]


def distances(entry: dict, distance: PerceptualDistance) -> np.ndarray:
    """The distance of every candidate to the query as ``match`` hears it: the compared
    stretch of the analysed note, floored at the noise around it, at the distance's rate (the
    analysis rate, as ``match`` retrieves and re-ranks; at 44.1 kHz from the input as given,
    as ``match`` confirms and ``--refine`` scores a full-band input)."""
    analysis = heard_analysis(entry["heard"], str(entry["name"]))
    note = analysis.best
    rate = distance.sample_rate
    if rate != ANALYSIS_SAMPLE_RATE_HZ:  # imported here: a baseline checkout may predate them
        from patchpilot.audio.analysis import compared_stretch
        from patchpilot.distance import noise_around

        analysis = replace(analysis, full_band=Audio(np.asarray(entry["heard"], np.float32), RATE, str(entry["name"])))
        target = distance.prepare_target(compared_stretch(analysis, note, rate), noise=noise_around(analysis, note, rate))
    elif hasattr(Matcher, "compared"):
        target = distance.prepare_target(Matcher.compared(analysis, note), noise=Matcher.noise_of(analysis, note))
    else:  # a checkout from before the compared stretch (the baseline: see the section's text)
        target = distance.prepare_target(Matcher.target_signal(None, note))  # type: ignore[attr-defined]
    renders = [r.astype(np.float32) if rate == RATE else resample(r, RATE, rate).astype(np.float32)
               for r in entry["renders"]]
    return distance.score(target, renders)


def agreement(entries: list[dict], distance: PerceptualDistance) -> list[dict]:
    rows = []
    for entry in entries:
        ours = distances(entry, distance)
        metrics = entry["metrics"]
        best = int(np.argmin(ours))
        rows.append({"name": str(entry["name"]), "kind": str(entry["kind"]), "n": len(ours),
                     "rho_mr": spearman(ours, metrics[:, 0]), "rho_mss": spearman(ours, metrics[:, 1]),
                     "top1": metrics[best], "oracle": metrics.min(axis=0)})
    return rows


def stats(rows: list[dict]) -> dict[str, dict]:
    """Per kind of query (and "all"): count, mean Spearman with each metric, mean metrics of
    our distance's top-1 and of the best candidate."""
    out = {}
    for kind in ("tone", "gm", "noisy", "all"):
        group = [r for r in rows if kind in ("all", r["kind"])]
        if group:
            out[kind] = {"n": len(group), "rho_mr": float(np.mean([r["rho_mr"] for r in group])),
                         "rho_mss": float(np.mean([r["rho_mss"] for r in group])),
                         "top1": np.mean([r["top1"] for r in group], axis=0).tolist(),
                         "oracle": np.mean([r["oracle"] for r in group], axis=0).tolist()}
    return out


def summary(current: dict[str, dict], baseline: dict[str, dict] | None, baseline_name: str) -> str:
    lines = ["| distance | queries | n | Spearman with MR-STFT (mean) | with MSS (mean) | top-1 by the distance: "
             "MR-STFT / MSS | best candidate: MR-STFT / MSS |", "|---|---|---|---|---|---|---|"]
    for name, table in (("this checkout", current), (baseline_name, baseline or {})):
        for kind, s in table.items():
            lines.append(f"| {name} | {kind} | {s['n']} | {s['rho_mr']:.3f} | {s['rho_mss']:.3f} | "
                         f"{s['top1'][0]:.3f} / {s['top1'][1]:.2f} dB | {s['oracle'][0]:.3f} / {s['oracle'][1]:.2f} dB |")
    return "\n".join(lines)


ABOUT = """Per query, the rank correlation (Spearman) of the re-ranker's distance (`distance.py`) with
MR-STFT and with MSS over the query's candidates; the mean over queries. Queries: the 18 held
tones of `scripts/tones.py`, every second General MIDI note of the out-of-domain list from each
SoundFont (56), and copies of every third of those 74 with white noise at -30 dB RMS (25). The
candidates are what retrieval hands the re-ranker (the nearest presets by vector and by sketch
on both synths, and the DX7 shortlist's extra ones: about 150-175 a query), each played from its preset file on a fresh
synth at the retrieved note, velocity 100, held as long as the input's note and as long as the
input, at 44.1 kHz: the same candidates for every distance compared. MR-STFT and MSS (as in
the out-of-domain section, `patchpilot/metrics.py`) are measured against the clean input (the
sound under a noisy copy's noise is what the user wants found); the distance hears the input
as `match` does (analysis rate, the note as analysed, a noisy copy with its noise). Target
(issue 19): >= 0.85 with each. MR-STFT and MSS themselves agree per query less well than the
distance agrees with each (their own mean Spearman: the line under the table). The distance's
term weights were chosen on these queries (tones and General MIDI notes), so they are not
held out; the out-of-domain, tones and held-out sections score answers, not this ranking.
Rows "at 44.1 kHz" (`--also-rate`): the same distance and candidates at the input's own rate
(the input as given, the renders not resampled), as `--refine` scores a full-band input;
`match` ranks at the analysis rate (22.05 kHz), deaf to the top octave MR-STFT measures."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("indexes/default"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--gm-step", type=int, default=2, help="every n-th General MIDI note of each SoundFont")
    parser.add_argument("--gm-offset", type=int, default=0,
                        help="start from this General MIDI note (1 with --gm-step 2: the notes the default leaves out)")
    parser.add_argument("--no-tones", action="store_true", help="leave out the held synthetic tones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--summary-out", type=Path, default=None, help="also write the summary as JSON")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a --summary-out file of another checkout's distance, shown beside this one")
    parser.add_argument("--baseline-name", default="baseline", help="what the baseline's rows are called")
    parser.add_argument("--rate", type=int, default=ANALYSIS_SAMPLE_RATE_HZ,
                        help=f"the distance's rate (default the analysis rate; {RATE}: the input as given)")
    parser.add_argument("--also-rate", type=int, default=None,
                        help="also show this checkout's distance at this rate, as the baseline's rows")
    args = parser.parse_args()
    build(args.cache, args.index, args.gm_step, args.seed, args.gm_offset, not args.no_tones)
    entries = load(args.cache)
    rows = agreement(entries, PerceptualDistance(args.rate))
    current = stats(rows)
    if args.summary_out:
        args.summary_out.write_text(json.dumps(current, indent=1))
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    if args.also_rate:
        baseline = stats(agreement(entries, PerceptualDistance(args.also_rate)))
        args.baseline_name = f"this checkout at {args.also_rate / 1000:g} kHz"
    between = np.mean([spearman(e["metrics"][:, 0], e["metrics"][:, 1]) for e in entries])
    command = f"python -m scripts.bench_distance --gm-step {args.gm_step} --seed {args.seed}"
    if args.gm_offset:
        command += f" --gm-offset {args.gm_offset}"
    if args.no_tones:
        command += " --no-tones"
    if args.rate != ANALYSIS_SAMPLE_RATE_HZ:
        command += f" --rate {args.rate}"
    if args.also_rate:
        command += f" --also-rate {args.also_rate}"
    elif args.baseline:
        command = (f"git worktree add /tmp/baseline {args.baseline_name} && PYTHONPATH=/tmp/baseline "
                   f"{command} --no-report --summary-out {args.baseline.name}\n{command} --baseline "
                   f"{args.baseline.name} --baseline-name {args.baseline_name}")
    detail = ["| query | candidates | Spearman MR-STFT | Spearman MSS |", "|---|---|---|---|"]
    detail += [f"| {r['name']} | {r['n']} | {r['rho_mr']:.2f} | {r['rho_mss']:.2f} |" for r in rows]
    body = (header("Distance agreement: the re-ranker's distance against MR-STFT and MSS", command) + "\n"
            + ABOUT + "\n\n" + summary(current, baseline, args.baseline_name)
            + f"\n\nMR-STFT against MSS over the same candidates: mean Spearman {between:.3f}."
            + "\n\n<details><summary>per query</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")
    if args.no_report:
        print(body)
    else:
        write_section("distance", body)
    print(json.dumps({k: (v["rho_mr"], v["rho_mss"]) for k, v in current.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
