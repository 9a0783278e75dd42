#!/usr/bin/env python
"""Render factory-bank presets and print sound descriptors, to review a bank while designing it.

    python -m scripts.preset_report presets/vital/bass.toml [--notes 36 60 84]

For each preset and note: level (dBFS RMS of the note), spectral centroid, attack time
(to within 3 dB of the peak), level 0.5 s after the peak relative to it, the level at the
end of the held note, spectral flatness (noisiness) and the detected pitch vs the played note.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from patchpilot.audio.dsp import amplitude_to_db, power_spectrogram, rms_envelope
from patchpilot.audio.pitch import estimate_pitch
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ as SR
from patchpilot.library.bank import load_bank_file
from patchpilot.synths import get_engine


def describe(audio: np.ndarray, note: int, note_seconds: float) -> str:
    env = amplitude_to_db(rms_envelope(audio, 512, 128))
    hop_s = 128 / SR
    peak = int(np.argmax(env))
    attack = float(np.argmax(env >= env.max() - 3) * hop_s)
    after = env[min(env.size - 1, peak + int(0.5 / hop_s))] - env.max()
    held_end = env[min(env.size - 1, int(note_seconds / hop_s))] - env.max()
    spec = power_spectrogram(audio, 2048, 512)
    freqs = np.linspace(0, SR / 2, spec.shape[1])
    weights = spec.sum(axis=1)
    centroid = float(((spec @ freqs) / np.maximum(weights, 1e-12) * weights).sum() / max(weights.sum(), 1e-12))
    loud = spec[weights > weights.max() * 1e-3] + 1e-12
    flatness = float(np.mean(np.exp(np.mean(np.log(loud), axis=1)) / np.mean(loud, axis=1)))
    pitch = estimate_pitch(audio, SR)
    detected = "none" if pitch.midi is None else f"{pitch.midi - note:+.1f}st"
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio[: int(note_seconds * SR)] ** 2)) + 1e-12)
    return (f"n{note:<3d} lvl {rms_db:6.1f} dB  cent {centroid:6.0f} Hz  atk {attack:5.2f}s  "
            f"+0.5s {after:6.1f}dB  end {held_end:6.1f}dB  flat {flatness:4.2f}  pitch {detected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("banks", nargs="+", type=Path)
    parser.add_argument("--notes", nargs="+", type=int, default=[36, 60, 84])
    parser.add_argument("--seconds", type=float, default=1.0, help="note length")
    args = parser.parse_args()
    for bank in args.banks:
        for preset in load_bank_file(bank):
            engine = get_engine(preset.synth)
            print(f"== {preset.name} [{preset.category}] {', '.join(preset.tags)}")
            for note in args.notes:
                audio = engine.render(preset, note, 100, args.seconds, args.seconds + 1.0)
                print("   " + describe(audio, note, args.seconds))


if __name__ == "__main__":
    main()
