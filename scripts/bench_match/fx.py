"""The effect chain: matches with it against matches without it on General MIDI notes recorded
wet and dry, and a user's VST3 effect (``--fx-plugin``) in the chain.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.synths import get_engine
from scripts.bench_match.gm import (GM_NOTE_SECONDS, both_metrics, gm_note_list, gm_note_wav, gm_target, ood_soundfonts,
                                    timed_match)
from scripts.bench_match.report import header


def scored_top1(pilot: PatchPilot, wav: Path, target: np.ndarray, rate: int, row: dict, name: str,
                label: str):  # the top-1 Match, or None where the input was refused
    """Match ``wav`` (top-1) and score the answer as the user hears it (its preset on a
    fresh synth at its note and velocity, then its chain) against ``target``: ``row[name]``
    gets (MR-STFT, MSS), ``row[name + "_chain"]`` the chain, ``row[name + "_seconds"]`` the time."""
    result = timed_match(pilot, wav, row, label, top_k=1)
    if result is None:
        return None
    best = result.matches[0]
    audio = best.fx.apply(get_engine(best.preset.synth).render(
        best.preset, best.render.note, best.render.velocity, GM_NOTE_SECONDS, target.size / rate, sample_rate=rate), rate)
    row[name] = both_metrics(target, audio)
    row[f"{name}_chain"] = best.fx.describe()
    row[f"{name}_seconds"] = row.pop("seconds")
    return best


def fx_section(index: Path, seed: int, step: int) -> str:
    """Matches with the effect chain against matches without it, on General MIDI notes
    recorded wet (the SoundFont's reverb and chorus on) and dry."""
    import torch

    torch.set_num_threads(1)
    soundfont = ood_soundfonts()[0]
    notes = gm_note_list()[::step]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index) as with_fx, PatchPilot(index, fx=False) as dry_only:
        for label, program, key in notes:
            for wet in (True, False):
                wav = gm_note_wav(Path(tmp), program, key, soundfont, wet=wet)
                target, rate = gm_target(wav)
                row: dict = {"note": label, "wet": wet}
                for name, pilot in (("fx", with_fx), ("dry", dry_only)):
                    best = scored_top1(pilot, wav, target, rate, row, name, label)
                    if best is None:
                        break
                    row[f"{name}_synth"] = best.preset.synth
                rows.append(row)
                if "fx" in row and "dry" in row:
                    print(f"  {label} {'wet' if wet else 'dry'}: {row['fx_chain']}: MR-STFT {row['dry'][0]:.3f} -> "
                          f"{row['fx'][0]:.3f}, MSS {row['dry'][1]:.2f} -> {row['fx'][1]:.2f}", file=sys.stderr)
    scored = [r for r in rows if "fx" in r and "dry" in r]
    lines = ["| notes | synth of the answer | n | MR-STFT without / with chain | ratio | MSS dB without / with | ratio | "
             "answers with a chain | match time without / with (median) |", "|---|---|---|---|---|---|---|---|---|"]
    verdicts = {}
    for wet in (True, False):
        for synth in ("all", "vital", "dexed"):
            group = [r for r in scored if r["wet"] == wet and (synth == "all" or r["fx_synth"] == synth)]
            if not group:
                continue
            dry = np.array([r["dry"] for r in group]).mean(axis=0)
            fx = np.array([r["fx"] for r in group]).mean(axis=0)
            ratio = fx / dry
            if synth == "all":
                verdicts[wet] = ratio
            chains = sum(r["fx_chain"] != "none" for r in group)
            times = (statistics.median(r["dry_seconds"] for r in group), statistics.median(r["fx_seconds"] for r in group))
            lines.append(f"| {'wet (reverb + chorus)' if wet else 'dry'} | {synth} | {len(group)} | {dry[0]:.3f} / "
                         f"{fx[0]:.3f} | {ratio[0]:.2f} | {dry[1]:.2f} / {fx[1]:.2f} | {ratio[1]:.2f} | {chains} | "
                         f"{times[0]:.1f} s / {times[1]:.1f} s |")
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    wet, dry = verdicts.get(True, np.ones(2)), verdicts.get(False, np.ones(2))
    targets = (f"Targets (issue 11): on wet notes the chain lowers both distances by >= 10 %: MR-STFT x{wet[0]:.3f}, "
               f"MSS x{wet[1]:.3f} ({verdict(wet[0] <= 0.9 and wet[1] <= 0.9)}); on dry notes it never raises the "
               f"distance by more than 2 %: MR-STFT x{dry[0]:.3f}, MSS x{dry[1]:.3f} "
               f"({verdict(dry[0] <= 1.02 and dry[1] <= 1.02)}).")
    detail = ["| note | recorded | answer without chain (synth) | chain found | MR-STFT without / with | MSS without / with |",
              "|---|---|---|---|---|---|"]
    for r in scored:
        detail.append(f"| {r['note']} | {'wet' if r['wet'] else 'dry'} | {r['dry_synth']} | {r['fx_chain']} | "
                      f"{r['dry'][0]:.2f} / {r['fx'][0]:.2f} | {r['dry'][1]:.1f} / {r['fx'][1]:.1f} |")
    command = f"python -m scripts.bench_match --only fx --fx-step {step} --seed {seed} --index {index}"
    return (header("Effect chain: matches with it against matches without it", command)
            + f"\n{len(notes)} General MIDI notes (every {step}th of the out-of-domain list, {Path(soundfont).name}), "
            "each rendered twice by fluidsynth: wet (the SoundFont's reverb and chorus on, fluidsynth's defaults: "
            "a note in a room) and dry. Each is matched by `match` (top-1, both synths) with the effect chain "
            "(default) and with `--no-fx`; each answer is scored as the user hears it: the preset file on a fresh "
            "synth at the answer's note and velocity, held 1.2 s, then through its chain. MR-STFT and MSS as in "
            "the out-of-domain section. The search and its constants were set on Dexed renders of our own through "
            "pedalboard effects, never on these notes.\n\n" + "\n".join(lines) + "\n\n" + targets
            + "\n\n<details><summary>per note</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")


# ---- a user's VST3 effect in the chain -------------------------------------------------------------
def fx_plugin_section(index: Path, seed: int, step: int, plugin: str) -> str:
    """Matches allowed a user's VST3 EQ (``--fx-plugin``) against matches with the built-in
    chain only, on General MIDI notes recorded through that EQ at random settings, and on
    the same notes without it."""
    import soundfile
    import torch

    from patchpilot.audio.io import write_wav
    from patchpilot.fx import Effect, FxChain
    from patchpilot.fx.plugin import plugin_effect_kind

    torch.set_num_threads(1)
    kind = plugin_effect_kind(plugin)
    rng = np.random.default_rng(seed)
    soundfont = ood_soundfonts()[0]
    notes = gm_note_list()[::step]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, PatchPilot(index, fx_plugins=[plugin]) as with_plugin, \
            PatchPilot(index) as builtin_only:
        for label, program, key in notes:
            plain = gm_note_wav(Path(tmp), program, key, soundfont)
            # the user's EQ: one band boosted or cut 6-15 dB somewhere in 300 Hz-5 kHz, a high shelf -10..+6 dB
            gain = float(rng.uniform(6, 15) * rng.choice([-1, 1]))
            colour = FxChain((Effect(kind, (("boost_cut_1_db", round(gain, 1)), ("bandwidth_1", round(float(
                rng.uniform(0.5, 2.0)), 2)), ("frequency_1_hz", round(float(np.exp(rng.uniform(np.log(300), np.log(5000)))))),
                ("boost_cut_h_db", round(float(rng.uniform(-10, 6)), 1)))),))
            samples, rate = soundfile.read(plain, dtype="float32", always_2d=True)
            coloured = Path(tmp) / f"{plain.stem}_eq.wav"
            write_wav(coloured, colour.apply(samples.mean(axis=1), rate), rate)
            for through, wav in ((True, coloured), (False, plain)):
                target, rate = gm_target(wav)
                row: dict = {"note": label, "through": through, "colour": colour.describe() if through else "none"}
                for name, pilot in (("plugin", with_plugin), ("builtin", builtin_only)):
                    best = scored_top1(pilot, wav, target, rate, row, name, label)
                    if best is None:
                        break
                    row[f"{name}_uses_plugin"] = any(e.spec is kind for e in best.fx.effects)
                rows.append(row)
                if "plugin" in row and "builtin" in row:
                    print(f"  {label} {'through EQ' if through else 'plain'}: {row['plugin_chain']}: MR-STFT "
                          f"{row['builtin'][0]:.3f} -> {row['plugin'][0]:.3f}, MSS {row['builtin'][1]:.2f} -> "
                          f"{row['plugin'][1]:.2f}", file=sys.stderr)
    scored = [r for r in rows if "plugin" in r and "builtin" in r]
    lines = ["| notes | n | MR-STFT built-in chain / with the plugin | ratio | MSS dB built-in / with the plugin | ratio | "
             "answers using the plugin | match time built-in / with the plugin (median) |", "|---|---|---|---|---|---|---|---|"]
    for through in (True, False):
        group = [r for r in scored if r["through"] == through]
        if not group:
            continue
        builtin = np.array([r["builtin"] for r in group]).mean(axis=0)
        with_it = np.array([r["plugin"] for r in group]).mean(axis=0)
        ratio = with_it / builtin
        times = (statistics.median(r["builtin_seconds"] for r in group), statistics.median(r["plugin_seconds"] for r in group))
        lines.append(f"| {'through the EQ' if through else 'plain'} | {len(group)} | {builtin[0]:.3f} / {with_it[0]:.3f} | "
                     f"{ratio[0]:.3f} | {builtin[1]:.2f} / {with_it[1]:.2f} | {ratio[1]:.3f} | "
                     f"{sum(r['plugin_uses_plugin'] for r in group)} | {times[0]:.1f} s / {times[1]:.1f} s |")
    detail = ["| note | recorded through | chain with the plugin allowed | MR-STFT built-in / with | MSS built-in / with |",
              "|---|---|---|---|---|"]
    for r in scored:
        detail.append(f"| {r['note']} | {r['colour']} | {r['plugin_chain']} | {r['builtin'][0]:.2f} / {r['plugin'][0]:.2f} | "
                      f"{r['builtin'][1]:.1f} / {r['plugin'][1]:.1f} |")
    command = f"python -m scripts.bench_match --only fx-plugin --fx-plugin-name {plugin} --fx-plugin-step {step} --seed {seed} --index {index}"
    return (header(f"A user's VST3 effect in the chain ({Path(kind.path).stem})", command)
            + f"\n{len(notes)} General MIDI notes (every {step}th of the out-of-domain list, {Path(soundfont).name}, dry), "
            f"each also put through the VST3 EQ {Path(kind.path).name} at random settings (seed {seed}): one band "
            "boosted or cut 6-15 dB at 300 Hz-5 kHz, bandwidth 0.5-2, and its high shelf at -10..+6 dB, as a "
            "recording through a user's EQ. Each is matched by `match` (top-1) with the plugin allowed in the chain "
            f"(`--fx-plugin {plugin}`) and with the built-in effects only (the default), and scored as the user hears "
            "it (preset file on a fresh synth, then its chain), MR-STFT and MSS as in the out-of-domain section. "
            "No setting of the plugin search was chosen on these notes.\n\n" + "\n".join(lines)
            + "\n\n<details><summary>per note</summary>\n\n" + "\n".join(detail) + "\n\n</details>\n")
