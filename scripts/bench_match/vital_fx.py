"""Effects inside a .vital file: how close the `.with-fx.vital` export (the effect chain in
Vital's own effects) comes to the preset through the pedalboard chain, against the dry preset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.synths import get_engine
from scripts.bench_match.gm import both_metrics
from scripts.bench_match.report import header


def vital_fx_section(index: Path, seed: int, trials: int) -> str:
    """How close ``<name>.with-fx.vital`` (the chain set in Vital's own effects) comes to the
    preset played through the pedalboard chain, against the dry preset, per effect."""
    from patchpilot.fx import EFFECT_KINDS, Effect, FxChain
    from patchpilot.index.index import PresetIndex
    from patchpilot.synths.vital.fx import VITAL_EFFECT

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
                   f"python -m scripts.bench_match --only vital-fx --vital-fx-trials {trials} --seed {seed} "
                   f"--index {index}")
            + f"\n{trials} draws (seed {seed}): a random Vital preset of the index and one effect of the chain with "
            "random settings in its searched ranges, taking each effect Vital has a stand-in for in turn "
            f"(`synths/vital/fx.py`; {busy} draws skipped where the preset already used that Vital effect). The "
            "reference is the preset file played fresh at note 60, velocity 100, held 1 s, 2.5 s in all, through "
            "pedalboard's effect (what the exported WAV plays); against it, MR-STFT and MSS of the dry preset and of "
            "the `.with-fx.vital` file played the same way. Lower is closer; the stand-in helps where the second "
            "figure is below the first.\n\n" + "\n".join(lines) + "\n")
