"""Benchmarks of matching: preset recovery, out-of-domain matching, refinement, speed.

    python -m scripts.bench_match                       # all three, default index
    python -m scripts.bench_match --only recovery --queries 300
    python -m scripts.bench_match --only ood            # needs fluidsynth + a GM SoundFont
    python -m scripts.bench_match --only speed

Each section replaces its own part of docs/BENCHMARKS.md, with the command and the machine.

* recovery: presets drawn from the index are re-rendered 3-7 semitones from every note the
  index rendered, at another velocity and note length, with white noise at -30 dB (RMS),
  as 44.1 kHz files, and matched; top-1 and MRR of finding the same preset.
* ood: single notes of General MIDI instruments rendered with fluidsynth from the
  MuseScore General SoundFont (Debian: fluidsynth musescore-general-soundfont-small);
  multi-resolution STFT distance (auraloss defaults, both RMS-normalised to 0.1, mono, same
  length) between each note and its top-1 match rendered at the same pitch, next to the
  synth's init patch and a random preset (``patchpilot/metrics.py``).
* tones: the held synthetic tones of ``scripts/tones.py`` (saws, squares, organs, filtered, driven),
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
import json
import sys
from pathlib import Path

from patchpilot.paths import default_index_dir
from scripts.bench_match.calibrate import calibrate
from scripts.bench_match.fidelity import fidelity
from scripts.bench_match.fx import fx_plugin_section, fx_section
from scripts.bench_match.gm import ood_soundfonts
from scripts.bench_match.ood import ood, ood_rows
from scripts.bench_match.proposals import proposals
from scripts.bench_match.recovery import recovery, recovery_rows
from scripts.bench_match.refinement import refinement
from scripts.bench_match.report import REPORT, write_section
from scripts.bench_match.speed import speed
from scripts.bench_match.tones import tones_rows, tones_section
from scripts.bench_match.vital_fx import vital_fx_section


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_match", description=__doc__.splitlines()[0])
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
