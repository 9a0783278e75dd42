"""Neural proposals: General MIDI notes matched per synth with and without the proposal networks.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.synths import get_engine
from scripts.bench_match.gm import (GM_NOTE_SECONDS, GM_TOTAL_SECONDS, both_metrics, gm_note_list, gm_note_wav, gm_target,
                                    ood_soundfonts)
from scripts.bench_match.report import header


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
    command = f"python -m scripts.train_proposals && python -m scripts.bench_match --only proposals --index {index}"
    return (header("Neural proposals", command)
            + f"\nThe proposal networks (`patchpilot/proposal.py`, trained by `scripts/train_proposals.py` on the "
            f"shipped index's vectors and presets, {PROPOSALS_PER_SYNTH} proposals per synth and query) against "
            f"the same matcher without them, on every {step}th General MIDI note of both SoundFonts, per synth "
            "(`match --synth S`). Scored like the out-of-domain section (top-1 from its file on a fresh synth; "
            "MR-STFT and MSS against the note's 2.4 s). Rank: where the best proposal lands among the re-ranked "
            "candidates (1 = it is the answer). `python -m scripts.train_proposals --holdout 0.15` trains without 15 % of "
            "the preset families and reports, on renders of those, how often a proposal sounds closer than the "
            "nearest library preset by vector (one of the 24 candidates the re-ranker weighs).\n\n" + "\n".join(lines) + "\n")
