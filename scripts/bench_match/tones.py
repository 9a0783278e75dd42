"""Held synthetic tones: the tones of ``scripts/tones.py`` (saws, squares, organs, filtered,
driven), matched and scored like the General MIDI notes; ``close`` answers that are not, counted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.audio.io import write_wav
from scripts.bench_match.gm import score_answer, timed_match
from scripts.bench_match.ood import metric_cells
from scripts.bench_match.report import header


#: A ``close`` answer must be within this MSS of the input (and no further than the init patch).
CLOSE_MSS_DB = 5.0


def tones_rows(index: Path, seed: int) -> list[dict]:
    """Match every held synthetic tone of ``scripts/tones.py`` with the default ``match`` and score the
    top-1 and the baselines as the General MIDI notes are scored (``score_answer``), with the
    tone's own hold and length."""
    from scripts import tones as tone_set

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
    command = f"python -m scripts.bench_match --only tones --seed {seed} --index {index}"
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
