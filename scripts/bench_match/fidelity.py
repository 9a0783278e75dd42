"""Export fidelity: the exported preset file loaded fresh in the synth package against the WAV
exported beside it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from scripts.bench_match.gm import both_metrics
from scripts.bench_match.report import header


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
    command = f"python -m scripts.bench_match --only fidelity --fidelity-presets {count} --seed {seed} --index {index}"
    return (header("Export fidelity: the exported file loaded fresh against the WAV beside it", command)
            + "\nPresets of the index exported as a match is (`export_preset`: the preset file and a WAV, at a "
            "random note 40-79, velocity 40-127, held 0.3-1.5 s, +1 s), then the preset file loaded in a new "
            "`vita.Synth` (`load_preset`) or `dexed.DexedSynth` (`Patch.from_sysex` of the file's voice) and "
            "played at the same note, velocity and length, as a user of those packages would. MR-STFT and MSS "
            "between that and the WAV. Targets: MR-STFT mean <= 0.05, max <= 0.15: "
            f"{'met' if all(verdicts) else 'MISSED'}.\n\n" + "\n".join(lines) + "\n")
