#!/usr/bin/env python
"""Render the example clips in docs/examples/ from our own factory presets.

    python -m scripts.make_examples

crystal-pick.wav: the Vital "Crystal Pick" pluck, two notes with a little noise.
fm-keys.wav: the DX7 "Tine Glass Piano", one held note.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from patchpilot.audio.io import write_wav
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ as SR
from patchpilot.library.bank import load_factory_bank
from patchpilot.paths import factory_presets_dir
from patchpilot.synths import get_engine

OUT = Path(__file__).resolve().parents[1] / "docs" / "examples"


def designed(synth: str, name: str):
    return next(p for p in load_factory_bank(synth, factory_presets_dir()) if p.name == name)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    vital = get_engine("vital")
    pick = designed("vital", "Crystal Pick")
    notes = [vital.render(pick, note, 100, 0.5, 1.1, sample_rate=SR) for note in (64, 57)]
    clip = np.concatenate([np.zeros(SR // 10, np.float32), notes[0], notes[1]])
    clip += rng.normal(0, 2e-4, clip.size).astype(np.float32)
    write_wav(OUT / "crystal-pick.wav", clip, SR)

    dexed = get_engine("dexed")
    keys = designed("dexed", "Tine Glass Piano")
    note = dexed.render(keys, 62, 90, 1.2, 2.2, sample_rate=SR)
    write_wav(OUT / "fm-keys.wav", np.concatenate([np.zeros(SR // 20, np.float32), note]), SR)
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.wav"))))


if __name__ == "__main__":
    main()
