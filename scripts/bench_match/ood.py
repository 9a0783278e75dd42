"""Out-of-domain matching: single notes of General MIDI instruments rendered with fluidsynth
from the MuseScore General SoundFont (Debian: fluidsynth musescore-general-soundfont-small);
multi-resolution STFT distance (auraloss defaults, both RMS-normalised to 0.1, mono, same
length) between each note and its top-1 match rendered at the same pitch, next to the
synth's init patch and a random preset (``patchpilot/metrics.py``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from scripts.bench_match.gm import GM_NOTE_SECONDS, gm_notes, gm_target, score_answer, timed_match
from scripts.bench_match.report import header


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
    command = f"python -m scripts.bench_match --only ood --seed {seed} --index {index}"
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
