"""Confidence labels: the thresholds of close / similar / rough from the benchmark's own distances.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scripts.bench_match.report import header
from scripts.bench_match.tones import CLOSE_MSS_DB, false_close


#: An out-of-domain answer is "rough" when its MSS is at least this fraction of what a preset
#: drawn at random scores on average (MSS, not MR-STFT: the re-ranker's distance follows MSS,
#: rank correlation about 0.7, while MR-STFT's ratio to the init patch hardly relates to either).
ROUGH_OUTCOME_SHARE = 0.75


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
    command = (f"python -m scripts.bench_match --only ood --only calibrate --queries {queries} --seed {seed} "
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
