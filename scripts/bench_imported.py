#!/usr/bin/env python
"""Recovery of imported presets: our own .vital presets and a DX7 bank, added to a copy of
the shipped index as a user adds them, then found again from notes played off the grid.

    python -m scripts.bench_imported                    # 48 Vital presets + 32 DX7 voices
    python -m scripts.bench_imported --count 12 --no-report --keep /tmp/imported   # a quick look
    python -m scripts.bench_imported --vital-dir DIR --dx7-bank BANK.syx   # a real-world set instead

With ``--vital-dir`` every ``.vital`` file under DIR (and with ``--dx7-bank`` that bank) is
imported instead of our own presets, the import is counted (files vita loads against files
the index took) and the section is written as "Recovery of imported presets, a real-world set".

1. ``make_user_presets.py`` writes the presets (own wavetables, LFO shapes, modulations,
   macros, FX) and a 32-voice DX7 bank.
2. The index (``indexes/default`` unless ``--index``) is copied to a temporary folder and
   ``patchpilot build-index --index COPY --presets VITAL_DIR --presets BANK.syx`` runs as a
   subprocess, as a user would run it.
3. Each preset file is played as a user plays it, in a fresh ``vita.Synth`` (or
   ``DexedSynth``) with nothing of Patch Pilot in between: a note 3-6 semitones from every
   indexed note, a velocity other than 100, held 0.5-1.6 s plus 0.8 s, white noise at
   -30 dB RMS (of the mono mix the matcher hears), written as a 44.1 kHz WAV (stereo for
   Vital), and matched with ``PatchPilot(index).match(path, top_k=5)``.
4. Reported: top-1, top-5 and MRR (ranks past 5 count 0) of finding the preset itself, per
   sound type, the match time, and the misses with what came first. For every miss the
   script also looks at why: the true preset's rank among the retrieved candidates, its
   re-ranker distance against the winner's, and how far Patch Pilot's render of the stored
   preset is from plain vita's render of the file (next to two plain renders, whose
   difference is the oscillators' random phase).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy's first import

import numpy as np

from scripts.bench_match.report import NOISE_DB, REPORT, ROOT, header, write_section
from scripts.make_user_presets import make_dx7_bank, make_presets

from patchpilot.api import PatchPilot
from patchpilot.audio.io import write_wav
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, EXPORT_SAMPLE_RATE_HZ
from patchpilot.distance import PerceptualDistance
from patchpilot.errors import PatchPilotError
from patchpilot.index.gather import user_presets
from patchpilot.synths import get_engine

#: Query notes 3-6 semitones from every indexed note (36, 48, 60, 72, 84), by register.
NOTES = {"low": (41, 42, 43, 53, 54), "mid": (53, 54, 55, 65, 66, 67), "high": (65, 66, 67, 77, 78)}
REGISTER = {"bass": "low", "bell": "high"}
TAIL_SECONDS = 0.8
TARGETS = {"vital": 0.95, "dexed": 0.97}
TOP_K = 5
#: Candidates looked at when diagnosing a miss (the matcher's own default re-ranks 24).
DIAGNOSE_K = 24
#: Diagnostic variants of every Vital query (same note, velocity, length): the file with its
#: oscillators' random phase off (as the importer stores it), and/or played as the second
#: note after loading (as pooled voices played every preset before a user's files were
#: played as their first note after loading everywhere).
ABLATIONS = {"phase off": (True, False), "second note": (False, True), "second note, phase off": (True, True)}
#: Length of the note played before a "second note" (that of the pooled voices' warm-up).
WARMUP_SECONDS = 0.1
KINDS_SHOWN = ("bass", "bell", "keys", "lead", "pad", "pluck")
RANDOM_PHASE_PROTOCOL = (
    "Random phase protocol (issue 19): a file that leaves an oscillator's random phase on never plays the same "
    "note twice, and two plain vita renders of one such file are as far apart as different presets often are "
    "(render check below). Its query counts as found again when the preset itself comes first, or when the "
    "first answer, played as the user gets it (its file on a fresh synth at its note and velocity through its "
    "effect chain, the query's hold and length), is no further from the query without its noise than the file "
    "itself played once more in plain vita (the same note, velocity and hold; a new random phase) on both "
    "MR-STFT and MSS: then no listener, and no measure, can tell the answer from the preset by this recording.")
NOT_REPRODUCIBLE = ("The Vital figures move between runs of the same command: the queries are not reproducible "
                    "(the random phase the files leave on).")


@dataclass
class Query:
    """One played note of an imported preset and what the matcher made of it."""

    synth: str
    kind: str
    preset_id: str
    source: Path
    index_in_file: int
    note: int
    velocity: int
    held: float
    wav: Path
    rank: int | None = None
    seconds: float = 0.0
    first: str = ""
    first_distance: float = float("nan")
    true_distance: float | None = None
    #: "" for the file as a user plays it; else one of ABLATIONS
    variant: str = ""
    #: The query without its noise (mono, 44.1 kHz; Vital's main queries): what the random
    #: phase protocol compares with.
    clean: np.ndarray | None = None
    #: The first answer (a ``Match``), kept for the random phase protocol.
    answer: object = None
    #: Random phase protocol (a miss of a file with random phase on): whether the answer is
    #: as close to the query as the file itself played again (RANDOM_PHASE_PROTOCOL).
    as_close_as_itself: bool | None = None


# ---- playing the files as a user does ---------------------------------------------------
def pinned_phase(text: str) -> str:
    """The preset with every oscillator's random phase off, as the importer stores it."""
    doc = json.loads(text)
    doc["settings"].update({f"osc_{n}_random_phase": 0.0 for n in (1, 2, 3)})
    return json.dumps(doc)


def play_vital(text: str, note: int, velocity: int, held: float, second: bool = False) -> np.ndarray:
    """A fresh vita.Synth, the file's JSON loaded, one note: (2, N) float32 at 44.1 kHz.
    ``second``: a short note (WARMUP_SECONDS) is played first and this is the second note."""
    import vita

    synth = vita.Synth()
    synth.set_sample_rate(EXPORT_SAMPLE_RATE_HZ)
    if not synth.load_json(text):
        raise RuntimeError("vita refused the preset")
    if second:
        synth.render(note, velocity / 127.0, WARMUP_SECONDS / 2, WARMUP_SECONDS)
    return np.asarray(synth.render(note, velocity / 127.0, held, held + TAIL_SECONDS), dtype=np.float32)


def random_phase_on(text: str) -> bool:
    """Whether any oscillator that plays starts at a random phase (Vital's default: on)."""
    settings = json.loads(text).get("settings", {})
    return any(settings.get(f"osc_{n}_on", 1.0 if n == 1 else 0.0) and settings.get(f"osc_{n}_random_phase", 1.0)
               for n in (1, 2, 3))


def play_dx7(patch: object, note: int, velocity: int, held: float) -> np.ndarray:
    """A fresh DexedSynth with the bank's voice loaded, one note: (N,) float32 at 44.1 kHz."""
    import dexed

    synth = dexed.DexedSynth(sample_rate=EXPORT_SAMPLE_RATE_HZ)
    synth.load_patch(patch)
    return np.asarray(synth.render(note, velocity, held, held + TAIL_SECONDS), dtype=np.float32)


def with_noise(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White noise at NOISE_DB (RMS) of the mono mix; independent per channel, scaled so the
    mix the matcher hears carries it at that level."""
    mono = audio if audio.ndim == 1 else audio.mean(axis=0)
    level = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2)))
    scale = level * 10 ** (NOISE_DB / 20) * (1.0 if audio.ndim == 1 else np.sqrt(audio.shape[0]))
    return (audio + rng.normal(0, scale, audio.shape)).astype(np.float32)


def draw(rng: np.random.Generator, kind: str) -> tuple[int, int, float]:
    """Note (by the type's register), velocity (not 100) and hold time of one query."""
    note = int(rng.choice(NOTES[REGISTER.get(kind, "mid")]))
    velocity = int(rng.choice([v for v in range(40, 128) if v != 100]))
    return note, velocity, float(rng.uniform(0.5, 1.6))


def vita_loads(path: Path) -> bool:
    """Whether plain vita loads the file and plays a finite note, in a child process (a file
    may crash it)."""
    code = ("import sys, numpy, vita\ns = vita.Synth()\nok = s.load_json(open(sys.argv[1]).read())\n"
            "sys.exit(0 if ok and numpy.isfinite(numpy.asarray(s.render(60, 0.8, 0.5, 0.6))).all() else 1)")
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, check=False).returncode == 0


# ---- the benchmark ----------------------------------------------------------------------
def import_presets(index: Path, paths: list[Path], workers: int) -> float:
    """``patchpilot build-index --index COPY --presets ...`` as a subprocess; returns seconds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "patchpilot", "build-index", "--index", str(index), "--workers", str(workers)]
    for path in paths:
        command += ["--presets", str(path)]
    started = time.perf_counter()
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"build-index failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(f"  {done.stderr.strip()}", file=sys.stderr)
    return time.perf_counter() - started


def make_queries(work: Path, vital_files: list[Path], bank: Path | None, dx7_kinds: list[str], ids: dict[str, str],
                 seed: int, ablation: bool) -> list[Query]:
    """Render every query WAV (plain synths, noise added) and list them. With ``ablation``
    each Vital file is also played as the ABLATIONS say (same note, velocity, length)."""
    import dexed

    rng = np.random.default_rng([seed, 7])  # notes, velocities, lengths
    noise = np.random.default_rng([seed, 8])
    # the ablations draw their own noise: the main queries are the same with or without them
    ablation_noise = {name: np.random.default_rng([seed, 9 + i]) for i, name in enumerate(ABLATIONS)}
    folder = work / "queries"
    folder.mkdir()
    queries: list[Query] = []
    for path in vital_files:
        text = path.read_text()
        kind = str(json.loads(text).get("preset_style", "")).lower() or "other"
        note, velocity, held = draw(rng, kind)
        wav = folder / f"{path.stem}.wav"
        clean = play_vital(text, note, velocity, held)
        write_wav(wav, with_noise(clean, noise).T, EXPORT_SAMPLE_RATE_HZ)
        queries.append(Query("vital", kind, ids[path.name], path, 0, note, velocity, held, wav, clean=clean.mean(axis=0)))
        for name, (pinned, second) in (ABLATIONS.items() if ablation else ()):
            wav = folder / f"{path.stem}-{name.replace(',', '').replace(' ', '-')}.wav"
            audio = play_vital(pinned_phase(text) if pinned else text, note, velocity, held, second)
            write_wav(wav, with_noise(audio, ablation_noise[name]).T, EXPORT_SAMPLE_RATE_HZ)
            queries.append(Query("vital", kind, ids[path.name], path, 0, note, velocity, held, wav, variant=name))
    seen: set[bytes] = set()
    for number, (patch, kind) in enumerate(zip(dexed.Patch.load_bank(str(bank)) if bank else [], dx7_kinds), start=1):
        if patch.to_sysex() in seen:  # a bank's repeated voices (INIT VOICE fillers) are one preset
            continue
        seen.add(patch.to_sysex())
        note, velocity, held = draw(rng, kind)
        wav = folder / f"dx7-{number:02d}-{kind}.wav"
        write_wav(wav, with_noise(play_dx7(patch, note, velocity, held), noise), EXPORT_SAMPLE_RATE_HZ)
        queries.append(Query("dexed", kind, ids[f"{bank.name}#{number}"], bank, number, note, velocity, held, wav))
    return queries


def run_queries(pilot: PatchPilot, queries: list[Query]) -> None:
    for number, q in enumerate(queries, start=1):
        started = time.perf_counter()
        try:
            result = pilot.match(q.wav, top_k=TOP_K)
        except PatchPilotError as exc:  # the matcher refused the clip: a miss, with its reason
            q.seconds, q.first = time.perf_counter() - started, f"error: {exc}"
            continue
        q.seconds = time.perf_counter() - started
        found = [m.preset_id for m in result.matches]
        q.rank = found.index(q.preset_id) if q.preset_id in found else None
        if result.matches:
            q.first, q.first_distance = result.matches[0].preset_id, result.matches[0].distance
            q.answer = result.matches[0]
        if q.rank is not None:
            q.true_distance = result.matches[q.rank].distance
        if number % 10 == 0 or number == len(queries):
            done = queries[:number]
            print(f"  {number}/{len(queries)} top-1 {np.mean([x.rank == 0 for x in done]):.3f}", file=sys.stderr)


def summary(subset: list[Query]) -> tuple[int, float, float, float, float]:
    ranks = [q.rank for q in subset]
    top1 = float(np.mean([r == 0 for r in ranks]))
    top5 = float(np.mean([r is not None and r < TOP_K for r in ranks]))
    mrr = float(np.mean([0.0 if r is None else 1.0 / (r + 1) for r in ranks]))
    return len(subset), top1, top5, mrr, float(np.mean([q.seconds for q in subset]))


def as_close_as_itself(q: Query) -> bool:
    """RANDOM_PHASE_PROTOCOL for a Vital miss: the first answer as the user gets it against
    the file played once more, each scored against the query without its noise."""
    from patchpilot.metrics import mr_stft, mss

    match = q.answer
    total = q.held + TAIL_SECONDS
    audio = get_engine(match.preset.synth).render(match.preset, match.render.note, match.render.velocity, q.held,
                                                  total, sample_rate=EXPORT_SAMPLE_RATE_HZ)
    answer = match.fx.apply(audio, EXPORT_SAMPLE_RATE_HZ)
    again = play_vital(q.source.read_text(), q.note, q.velocity, q.held).mean(axis=0)
    return mr_stft(q.clean, answer) <= mr_stft(q.clean, again) and mss(q.clean, answer) <= mss(q.clean, again)


# ---- why a miss ---------------------------------------------------------------------------
def fidelity(pilot: PatchPilot, q: Query) -> tuple[float, float, float, float]:
    """Re-ranker distances (no noise, the query's note) from plain vita's render of the file
    to Patch Pilot's reference render of the stored preset and to a second plain render (what
    the random phase alone changes); from plain vita's render of the file with its random
    phase off to Patch Pilot's reference render (what the import carries over, phase aside)
    and to a pooled voice's render (how the index and the first re-ranking stages hear the
    preset)."""
    import soxr

    stored = pilot.index.store.get_by_id(q.preset_id)
    assert stored is not None
    text = q.source.read_text()

    def plain(preset_text: str) -> np.ndarray:
        stereo = play_vital(preset_text, q.note, q.velocity, q.held)
        return soxr.resample(stereo.mean(axis=0), EXPORT_SAMPLE_RATE_HZ, ANALYSIS_SAMPLE_RATE_HZ).astype(np.float32)

    engine = get_engine("vital")
    total = q.held + TAIL_SECONDS
    ours = engine.render(stored.preset, q.note, q.velocity, q.held, total)
    pooled = engine.new_voice().render(stored.preset, q.note, q.velocity, q.held, total)
    distance = PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ)
    to_plain = distance(plain(text), [ours, plain(text)])
    to_pinned = distance(plain(pinned_phase(text)), [ours, pooled])
    return float(to_plain[0]), float(to_plain[1]), float(to_pinned[0]), float(to_pinned[1])


def diagnose(pilot: PatchPilot, q: Query) -> str:
    """Where the true preset was lost: retrieval, re-ranking, or the render."""
    from patchpilot.audio.analysis import analyse_clip
    from patchpilot.audio.io import load_audio

    stored = pilot.index.store.get_by_id(q.preset_id)
    if stored is None:
        return "not in the index"
    matcher = pilot.matcher
    try:
        note = analyse_clip(load_audio(q.wav, ANALYSIS_SAMPLE_RATE_HZ)).best
    except PatchPilotError as exc:
        return f"the clip was refused: {exc}"
    vector = pilot.index.transform.apply(matcher.embedder.features([note.samples]))[0]
    found = pilot.index.search(vector, note.pitch.midi, k=10_000)
    rows = [c.row for c in found]
    retrieval = rows.index(stored.row) if stored.row in rows else None
    wide = pilot.match(q.wav, top_k=DIAGNOSE_K)
    ids = [m.preset_id for m in wide.matches]
    rerank = ids.index(q.preset_id) if q.preset_id in ids else None
    pitch = f"{note.pitch.midi:.1f}" if note.pitch.midi is not None else "none"
    parts = [f"pitch read {pitch}", "retrieval rank " + (f"{retrieval + 1} of {len(rows)}" if retrieval is not None
                                                          else f"> {len(rows)} (not retrieved)")]
    if rerank is not None:
        played = wide.matches[rerank].render
        parts.append(f"re-ranked {rerank + 1} at {wide.matches[rerank].distance:.3f} vs winner "
                     f"{wide.matches[0].distance:.3f}, played at note {played.note} velocity {played.velocity}")
    else:
        parts.append(f"re-ranked below {DIAGNOSE_K} (or not retrieved)")
    if q.synth == "vital":
        ours, floor, pinned, pooled = fidelity(pilot, q)
        parts.append(f"our render vs plain vita {ours:.3f} (plain vs plain {floor:.3f}); vs plain with the "
                     f"random phase off: ours {pinned:.3f}, pooled voice {pooled:.3f}")
    return "; ".join(parts)


# ---- the report ---------------------------------------------------------------------------
def results_table(queries: list[Query]) -> tuple[list[str], list[str]]:
    """Table rows per synth and sound type, and the verdicts on the targets."""
    lines = ["| synth | sound type | queries | top-1 | top-5 | MRR | match time / query |",
             "|---|---|---|---|---|---|---|"]
    verdicts = []
    for synth in ("vital", "dexed"):
        mine = [q for q in queries if q.synth == synth]
        if not mine:
            continue
        n, top1, top5, mrr, seconds = summary(mine)
        lines.append(f"| **{synth}** | **all** | {n} | **{top1:.3f}** | {top5:.3f} | {mrr:.3f} | {seconds:.2f} s |")
        for kind in sorted({q.kind for q in mine}):
            n, k1, k5, kmrr, ks = summary([q for q in mine if q.kind == kind])
            lines.append(f"| {synth} | {kind} | {n} | {k1:.3f} | {k5:.3f} | {kmrr:.3f} | {ks:.2f} s |")
        target = TARGETS[synth]
        judged = [q for q in mine if q.as_close_as_itself is not None]
        if judged:  # random phase protocol: the verdict is on it
            found = float(np.mean([q.rank == 0 or bool(q.as_close_as_itself) for q in mine]))
            lines.append(f"| {synth} | all, random phase protocol | {len(mine)} | **{found:.3f}** | | | |")
            verdicts.append(f"{synth} found again (random phase protocol) >= {target:.2f}: {found:.3f} "
                            f"({'met' if found >= target else 'MISSED'}; the preset itself first: {top1:.3f})")
        else:
            verdicts.append(f"{synth} top-1 >= {target:.2f}: {top1:.3f} ({'met' if top1 >= target else 'MISSED'})")
    return lines, verdicts


def our_set(counts: dict[str, int]) -> str:
    """What the default set holds."""
    return (f"Our own presets, written by `scripts/make_user_presets.py` (same seed): "
            f"{counts.get('vital', 0)} `.vital` files with wavetables made there (additive, formant, shape "
            "sweeps, bell spectra, phase warps; 3-6 keyframes, wave frame set and modulated), custom LFO shapes, "
            "6-10 modulations each (LFOs 3-6, envelopes 2-6, velocity, note, random, macros 1-4 with their values "
            "set), chorus/phaser/flanger/reverb/delay by type, oscillator random phase left on as Vital sets it; "
            f"and a {counts.get('dexed', 0)}-voice DX7 bank of random but musical voices (dexed-py "
            "`Patch.save_to_bank`).")


def real_world_set(vital_dir: Path, bank: Path | None, counts: dict[str, int], loads: int, files: int) -> str:
    """What a real-world set holds and how much of it imported."""
    text = (f"A real-world set, not made here and not shipped: the {files} `.vital` files under `{vital_dir.name}` "
            f"(vita loads {loads} of them; the index took {counts.get('vital', 0)})")
    if bank is not None:
        text += f" and the DX7 bank `{bank.name}` ({counts.get('dexed', 0)} voices taken)"
    return text + ". Their sound types come from each file's `preset_style` (\"other\" where it has none)."


def report(queries: list[Query], index: Path, counts: dict[str, int], import_seconds: float, command: str,
           diagnoses: dict[str, str], checks: list[tuple[float, float, float, float]], described: str,
           title: str = "Recovery of imported presets") -> str:
    main = [q for q in queries if not q.variant]
    vital_main = [q for q in main if q.synth == "vital"]
    ablations = [q for q in queries if q.variant]
    lines, verdicts = results_table(main)
    times = [q.seconds for q in main]
    misses = [q for q in main if q.rank != 0]
    miss_lines = ["| query | note, velocity, held | rank | first instead (distance) | true distance | as close as itself | why |",
                  "|---|---|---|---|---|---|---|"]
    for q in misses:
        rank = "—" if q.rank is None else str(q.rank + 1)
        true = "—" if q.true_distance is None else f"{q.true_distance:.3f}"
        itself = {None: "—", True: "yes", False: "no"}[q.as_close_as_itself]
        miss_lines.append(f"| `{q.preset_id}` ({q.kind}) | {q.note}, {q.velocity}, {q.held:.2f} s | {rank} | "
                          f"`{q.first}` ({q.first_distance:.3f}) | {true} | {itself} | "
                          f"{diagnoses.get(q.preset_id, '')} |")
    text = (header(title, command) + "\n" + described + " They were imported into a copy of "
            f"`{index}` with `patchpilot build-index --index COPY --presets DIR --presets BANK.syx` "
            f"({import_seconds:.0f} s). Each query: the file played in a fresh `vita.Synth` / `DexedSynth` (not "
            "through Patch Pilot), at a note 3-6 semitones from every indexed note (bass 41-54, bells 65-78, the "
            "rest 53-67), velocity 40-127 (not 100), held 0.5-1.6 s + 0.8 s, white noise at "
            f"{NOISE_DB:.0f} dB RMS of the mono mix, written as a 44.1 kHz WAV (stereo for Vital) and matched with "
            f"`PatchPilot(index).match(path, top_k={TOP_K})`. MRR counts ranks past {TOP_K} as 0. Match time: the "
            f"whole `match` call, WAV decoding included (median {statistics.median(times):.2f} s; the first query, "
            f"{times[0]:.2f} s, starts the render pools). {NOT_REPRODUCIBLE}\n\n"
            + "\n".join(lines) + "\n\nTargets: " + "; ".join(verdicts) + ".\n\n" + RANDOM_PHASE_PROTOCOL + "\n")
    if len(ablations) > 0:
        text += ("\nWhy Vital misses, ablations: the same Vital queries (same notes, velocities, lengths; their own "
                 "noise) played from the file with every oscillator's random phase off (as the importer stores "
                 "it), and/or as the second note after loading, a 0.05 s note at the same pitch played first (as "
                 "pooled voices played every preset until a user's files were played as their first note after "
                 "loading in the index and the re-ranker too). "
                 "Top-1 per sound type.\n\n"
                 "| Vital queries | top-1 | top-5 | MRR | " + " | ".join(KINDS_SHOWN) + " |\n"
                 "|---|---|---|---|" + "---|" * len(KINDS_SHOWN) + "\n")
        for name, subset in [("first note after loading, random phase on (the benchmark)", vital_main),
                             *((n, [q for q in ablations if q.variant == n]) for n in ABLATIONS)]:
            if not subset:
                continue
            _, top1, top5, mrr, _ = summary(subset)
            cells = [f"{summary(ks)[1]:.3f}" if (ks := [q for q in subset if q.kind == k]) else "" for k in KINDS_SHOWN]
            text += f"| {name} | {top1:.3f} | {top5:.3f} | {mrr:.3f} | " + " | ".join(cells) + " |\n"
    if checks:
        ours, floor, pin, pooled = np.array(checks).T
        def stat(x: np.ndarray) -> str:
            return f"median {np.median(x):.3f}, max {x.max():.3f}"

        text += ("\nRender check, every Vital query's note and velocity without noise (re-ranker distance; 0 is "
                 "the same sound): Patch Pilot's reference render of the stored preset (its file in a fresh "
                 f"synth) vs plain vita playing the user's file: {stat(ours)}; two plain vita renders of the file: "
                 f"{stat(floor)}; Patch Pilot's reference render vs plain vita playing the file with its random "
                 f"phase off: {stat(pin)}; a pooled voice's render (what the index and the first re-ranking "
                 f"stages hear; a user's file plays there as its first note after loading) vs the same: "
                 f"{stat(pooled)}.\n")
    text += (f"\nMisses ({len(misses)}). Why: the pitch the analysis read; the true preset's rank in retrieval "
             f"(embedding search); its rank and distance after re-ranking (the first {DIAGNOSE_K} looked at), against "
             "the winner's; for Vital the render check above for this query.\n\n" + "\n".join(miss_lines) + "\n"
             if misses else "\nNo misses.\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("indexes/default"))
    parser.add_argument("--count", type=int, default=48, help="Vital presets to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ablation", action="store_true", help="skip the diagnostic variants of the Vital queries")
    parser.add_argument("--keep", type=Path, default=None, help="work here (kept) instead of a temporary folder")
    parser.add_argument("--no-report", action="store_true", help="print the section instead of writing it")
    parser.add_argument("--vital-dir", type=Path, default=None, help="import these .vital files instead of ours")
    parser.add_argument("--dx7-bank", type=Path, default=None, help="with --vital-dir: this DX7 bank instead of ours")
    args = parser.parse_args()
    index = args.index if args.index.is_absolute() else (Path.cwd() / args.index)
    if args.vital_dir:
        command = (f"python -m scripts.bench_imported --vital-dir {args.vital_dir.name}"
                   + (f" --dx7-bank {args.dx7_bank.name}" if args.dx7_bank else "") + f" --seed {args.seed}")
    else:
        command = f"python -m scripts.bench_imported --count {args.count} --seed {args.seed} --index {args.index}"
    command += " --no-ablation" if args.no_ablation else ""
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        if work.exists() and any(work.iterdir()):
            raise SystemExit(f"{work} is not empty")
        work.mkdir(parents=True, exist_ok=True)
        if args.vital_dir:
            vital_dir, bank = args.vital_dir.resolve(), args.dx7_bank.resolve() if args.dx7_bank else None
            vital_files = sorted(vital_dir.rglob("*.vital"))
            dx7_kinds = ["other"] * 32 if bank else []
        else:
            vital_dir, bank = work / "presets" / "vital", work / "presets" / "dx7" / "pp-user-bank.syx"
            vital_files, _ = make_presets(vital_dir, args.count, args.seed)
            dx7_kinds, _ = make_dx7_bank(bank, args.seed)
        sources = [vital_dir] + ([bank] if bank else [])
        copy = work / "index"
        shutil.copytree(index, copy)
        import_seconds = import_presets(copy, sources, args.workers)
        # the ids the index builder gives these files (origin user:<file>, user:<bank>#<n>)
        ids = {p.origin.split(":", 1)[1]: pid for pid, p, _ in user_presets(sources).items}
        taken = [path for path in vital_files if path.name in ids]
        queries = make_queries(work, taken, bank, dx7_kinds, ids, args.seed, not args.no_ablation)
        diagnoses: dict[str, str] = {}
        with PatchPilot(copy, workers=args.workers) as pilot:
            counts = {s: sum(1 for q in queries if q.synth == s and not q.variant
                             and pilot.index.store.get_by_id(q.preset_id)) for s in ("vital", "dexed")}
            run_queries(pilot, queries)
            checks = [fidelity(pilot, q) for q in queries if q.synth == "vital" and not q.variant]
            for q in queries:
                if q.rank != 0 and not q.variant and q.synth == "vital" and q.answer is not None \
                        and random_phase_on(q.source.read_text()):
                    q.as_close_as_itself = as_close_as_itself(q)
                if q.rank != 0 and not q.variant:
                    diagnoses[q.preset_id] = diagnose(pilot, q)
                    print(f"  miss {q.preset_id} rank {q.rank} -> {q.first}: {diagnoses[q.preset_id]}", file=sys.stderr)
        if args.vital_dir:
            described = real_world_set(vital_dir, bank, counts, sum(map(vita_loads, vital_files)), len(vital_files))
            body = report(queries, args.index, counts, import_seconds, command, diagnoses, checks, described,
                          "Recovery of imported presets, a real-world set")
        else:
            body = report(queries, args.index, counts, import_seconds, command, diagnoses, checks, our_set(counts))
    if args.no_report:
        print(body)
    else:
        write_section("imported-real" if args.vital_dir else "imported", body)
        print(f"updated {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
