"""Refinement: CMA-ES refinement of the top-1 match on a subset of the General MIDI notes at
several budgets, an ablation from the init patch, wall time and evaluations per second.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.synths import Preset, get_engine
from scripts.bench_match.gm import GM_NOTE_SECONDS, both_metrics, gm_notes, gm_target, ood_soundfonts
from scripts.bench_match.report import header


def refinement(index: Path, seed: int, notes: int, budgets: tuple[int, ...], workers: int,
               discrete: bool = False, hold: bool = False, hold_check: bool = False, fx: bool = True,
               full_band: bool = True) -> str:
    """CMA-ES refinement on a subset of the General MIDI notes: MR-STFT and MSS of the top-1
    match before and after refining at each budget, from the init patch at the largest budget,
    with wall time and evaluations per second against the synth's bare render rate."""
    import torch

    from patchpilot.audio.analysis import compare_window
    from patchpilot.refine import DEFAULT_STARTS, RefineOptions, StartPoint, fit_notes_for, refiner_for

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
            refiner = refiner_for(pilot.matcher, analysis, full_band)  # the refinement loss, as `match --refine` uses
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
    command = (f"python -m scripts.bench_match --only refine --refine-notes {notes} --budgets "
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
