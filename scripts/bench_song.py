#!/usr/bin/env python
"""Benchmark of matching in songs: a known synth part mixed with SoundFont drums and bass.

    python -m scripts.bench_song                    # songs + separation cost, default index
    python -m scripts.bench_song --songs 4 --track-seconds 60

Each song is 10 s at 120 bpm (plus a 0.5 s tail, so that the CLI treats it as a track):
a phrase of five notes of a preset drawn from the shipped index, played by our own synth
engines, over a General MIDI drum kit (channel 10) and a finger-bass line rendered with
fluidsynth. The synth part sits 3 dB (RMS) below the drums and bass together.

For each song the clean synth part alone (the reference) and the song are matched the way
`patchpilot match` does it: the song with Demucs where its weights are on this machine
(never downloaded here), and always without separation (`--no-separate`: track note
selection on the mix). The distance is the out-of-domain benchmark's: auraloss
multi-resolution STFT between the clean synth part and the phrase played by the top-1
match (at the pitch the match was rendered at), for the clean-part match and the song's.

Separation cost: the time and peak memory of `StemSeparator.stem_audio` (the code path the
CLI takes) on a 3-minute track, in a fresh process, with the htdemucs architecture at its
released size but randomly initialised where the weights are absent (time and memory do not
depend on the weight values). Needs fluidsynth, a GM SoundFont, demucs, torch and auraloss.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from scripts.bench_match.gm import fluidsynth_render, midi_file, mrstft_distance
from scripts.bench_match.report import ROOT, header, write_section

from patchpilot.api import PatchPilot
from patchpilot.audio.io import write_wav
from patchpilot.audio.separate import (
    SEPARATION_BLOCK_SECONDS,
    SeparationOptions,
    StemSeparator,
    weights_available,
)
from patchpilot.constants import DEFAULT_DEMUCS_MODEL, DEFAULT_STEM, EXPORT_SAMPLE_RATE_HZ
from patchpilot.errors import InputAudioError
from patchpilot.paths import default_index_dir
from patchpilot.synths import Preset, get_engine

RATE = EXPORT_SAMPLE_RATE_HZ
BEAT = 0.5  # seconds (120 bpm)
MUSIC_SECONDS = 10.0
#: The last notes ring on, and the CLI treats only inputs longer than 10 s as tracks.
SONG_SECONDS = 10.5
#: Synth part level (RMS) against drums and bass together: audible, not dominant.
SYNTH_DB = -3.0
#: Where each synth note starts (beats), how long it is held (beats) and its pitch offset
#: from the song's register: one phrase, five pitches.
PHRASE = ((1, 2.0, 0), (5, 1.5, 3), (9, 2.0, 7), (13, 1.0, 5), (16, 3.0, -2))
#: Categories of pitched, single-voice sounds; bells (inharmonic: never single notes to the
#: chord test), pads (attacks longer than a beat), fx and bass (the bass line's place) are left out.
CATEGORIES = ("lead", "keys", "pluck", "brass", "organ", "strings")
#: Bass roots per bar (E2, C2, G2, D2, E2), played on every beat.
BASS_ROOTS = (40, 36, 43, 38, 40)
BASS_PROGRAM = 33  # GM Electric Bass (finger)
KICK, SNARE, HIHAT = 36, 38, 42
#: The htdemucs release (demucs/remote/htdemucs.yaml: a bag of one model, 955717e8): the
#: HTDemucs defaults plus what the training grid (demucs/grids/mmi.py) set, and the
#: segment it was trained on (7.8 s).
HTDEMUCS_SIGNATURE = "955717e8"
HTDEMUCS_KWARGS = {"sources": ["drums", "bass", "other", "vocals"], "dconv_mode": 3, "t_dropout": 0.02,
                   "depth": 4, "t_layers": 5, "bottom_channels": 0, "segment": Fraction(39, 5)}


@dataclass(frozen=True)
class Song:
    label: str
    preset_id: str
    preset: Preset
    register: int  # MIDI note the phrase is built on
    #: Semitones the preset sounds above the note played (the index's pitch offset; 0 if unknown).
    offset: float
    clean: Path
    mix: Path
    clean_audio: np.ndarray  # mono, at RATE


# ---- making songs ---------------------------------------------------------------------------
def phrase_notes(register: int) -> list[tuple[float, float, int, float]]:
    """(start s, held s, MIDI note, sounding window s) of the synth phrase: a new note cuts
    the previous one, as on a monophonic lead (tails never overlap into chords)."""
    starts = [beat * BEAT for beat, _, _ in PHRASE] + [SONG_SECONDS]
    return [(starts[i], held * BEAT, register + step, starts[i + 1] - starts[i])
            for i, (_, held, step) in enumerate(PHRASE)]


def render_phrase(preset: Preset, register: int, velocity: int = 100) -> np.ndarray:
    """The phrase played by ``preset``, mono at RATE, SONG_SECONDS long."""
    engine = get_engine(preset.synth)
    out = np.zeros(int(SONG_SECONDS * RATE), dtype=np.float32)
    fade = np.linspace(1.0, 0.0, int(0.01 * RATE), dtype=np.float32)  # no click where a note is cut
    for start, held, note, window in phrase_notes(register):
        audio = engine.render(preset, int(np.clip(note, 0, 127)), velocity, held, window, sample_rate=RATE)
        audio = audio[: out.size - int(start * RATE)].copy()
        n = min(fade.size, audio.size)
        audio[audio.size - n:] *= fade[fade.size - n:]
        out[int(start * RATE): int(start * RATE) + audio.size] += audio
    return out


def accompaniment_midi(path: Path) -> None:
    """Drums (kick, snare, eighth hi-hats on channel 10) and a finger-bass line on every beat."""
    events: list[tuple[float, bytes]] = [(0.0, bytes([0xC0, BASS_PROGRAM]))]
    beats = int(MUSIC_SECONDS / BEAT)
    for beat in range(beats):
        t = beat * BEAT
        drum = KICK if beat % 2 == 0 else SNARE
        events += [(t, bytes([0x99, drum, 110])), (t + 0.1, bytes([0x89, drum, 0]))]
        for half in (0.0, BEAT / 2):
            events += [(t + half, bytes([0x99, HIHAT, 70])), (t + half + 0.05, bytes([0x89, HIHAT, 0]))]
        root = BASS_ROOTS[beat // 4 % len(BASS_ROOTS)] + (7 if beat % 4 == 3 else 0)  # a fifth to lead on
        events += [(t, bytes([0x90, root, 100])), (t + 0.9 * BEAT, bytes([0x80, root, 0]))]
    midi_file(path, events, SONG_SECONDS)


def accompaniment(folder: Path) -> np.ndarray:
    """Drums and bass as ``(2, frames)`` at RATE, SONG_SECONDS long."""
    import soundfile

    mid, wav = folder / "accompaniment.mid", folder / "accompaniment.wav"
    accompaniment_midi(mid)
    fluidsynth_render(mid, wav, "the song benchmark")
    samples, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    assert rate == RATE
    frames = int(SONG_SECONDS * RATE)
    out = np.zeros((2, frames), dtype=np.float32)
    out[:, : min(frames, len(samples))] = samples[:frames].T
    return out


def pick_presets(pilot: PatchPilot, count: int, seed: int) -> list[tuple[str, Preset, float]]:
    """``count`` factory presets (not variants), alternating Vital and Dexed, one category
    each, with their pitch offsets."""
    rng = np.random.default_rng(seed)
    listing = [p for p in pilot.list_presets() if "~" not in p["preset_id"]]
    chosen = []
    for i in range(count):
        synth, category = ("vital", "dexed")[i % 2], CATEGORIES[i % len(CATEGORIES)]
        pool = sorted(p["preset_id"] for p in listing if p["synth"] == synth and p["category"] == category)
        preset_id = pool[int(rng.integers(len(pool)))]
        stored = pilot.index.store.get_by_id(preset_id)
        assert stored is not None
        chosen.append((preset_id, stored.preset, stored.pitch_offset or 0.0))
    return chosen


def make_songs(pilot: PatchPilot, folder: Path, count: int, seed: int) -> list[Song]:
    backing = accompaniment(folder)
    backing_rms = float(np.sqrt(np.mean(backing.astype(np.float64) ** 2)))
    songs = []
    for i, (preset_id, preset, offset) in enumerate(pick_presets(pilot, count, seed)):
        register = 60 if i % 3 else 67  # the phrase's register varies between songs too
        part = render_phrase(preset, register)
        part_rms = float(np.sqrt(np.mean(part.astype(np.float64) ** 2)))
        part *= backing_rms * 10 ** (SYNTH_DB / 20) / max(part_rms, 1e-9)
        mix = backing + part[None, :]
        gain = 10 ** (-1 / 20) / max(float(np.abs(mix).max()), 1e-9)  # peak at -1 dBFS, like a master
        label = f"song {i + 1}"
        clean, mixed = folder / f"song{i + 1}-synth.wav", folder / f"song{i + 1}.wav"
        write_wav(clean, part * gain, RATE)
        write_wav(mixed, (mix * gain).T, RATE)
        songs.append(Song(label, preset_id, preset, register, offset, clean, mixed, part * gain))
    return songs


# ---- matching -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    top1: str | None
    known_in_top5: bool
    family_in_top5: bool
    mrstft: float | None
    seconds: float
    failure: str | None = None
    #: Whether the note the match was made on is one of the synth phrase's (not bass or drums).
    synth_note: bool | None = None


def family(preset_id: str) -> str:
    return preset_id.split("~", 1)[0]


def is_synth_note(song: Song, start: float, pitch: float | None) -> bool:
    """Whether a note found at ``start`` with ``pitch`` is one of the phrase's: it starts
    while a phrase note sounds (or up to 0.15 s before: onsets are placed at the quiet point
    before the rise), at that note's sounding pitch (within 0.6 semitone)."""
    return pitch is not None and any(
        begin - 0.15 <= start < begin + window and abs(pitch - (note + song.offset)) < 0.6
        for begin, _, note, window in phrase_notes(song.register))


def match_outcome(pilot: PatchPilot, song: Song, source: Path, separation: SeparationOptions) -> Outcome:
    """Match ``source`` as the CLI does and score its top-1 against the clean synth part."""
    started = time.perf_counter()
    try:
        result = pilot.match(source, top_k=5, separation=separation)
    except InputAudioError as exc:  # e.g. no clean single note in the mix: a real outcome
        return Outcome(None, False, False, None, time.perf_counter() - started, str(exc).split(": ", 1)[-1])
    seconds = time.perf_counter() - started
    ids = [m.preset_id for m in result.matches]
    top = result.matches[0]
    pitch = result.analysis.best.pitch.midi
    # The match was rendered at render.note for the input's pitch: the same shift applies
    # to every note of the phrase (it absorbs the presets' octave and pitch offsets).
    shift = top.render.note - int(round(pitch)) if pitch is not None else 0
    played = render_phrase(top.preset, song.register + shift, top.render.velocity)
    return Outcome(ids[0], song.preset_id in ids, family(song.preset_id) in {family(i) for i in ids},
                   mrstft_distance(song.clean_audio, played), seconds,
                   synth_note=is_synth_note(song, result.analysis.best.start, pitch))


def songs_section(index: Path, count: int, seed: int, model: str, repo: Path | None,
                  folder: Path) -> tuple[str, list[Song]]:
    separated = weights_available(model, repo)
    rows = []
    with PatchPilot(index) as pilot:
        songs = make_songs(pilot, folder, count, seed)
        for song in songs:
            engine = get_engine(song.preset.synth)
            row = {
                "song": song,
                "floor": mrstft_distance(song.clean_audio, render_phrase(song.preset, song.register)),
                "init": mrstft_distance(song.clean_audio, render_phrase(engine.init_preset(), song.register)),
                "clean": match_outcome(pilot, song, song.clean, SeparationOptions(separate=False)),
                "mix": match_outcome(pilot, song, song.mix, SeparationOptions(separate=False)),
            }
            if separated:
                row["stem"] = match_outcome(pilot, song, song.mix, SeparationOptions(
                    separate=True, stem=DEFAULT_STEM, model=model, repo=repo))
            rows.append(row)
            print(f"  {song.label} {song.preset_id}: " + "; ".join(
                f"{k} {o.top1} {o.mrstft if o.mrstft is None else round(o.mrstft, 3)}"
                for k, o in row.items() if isinstance(o, Outcome)), file=sys.stderr)

    paths = [("clean", "clean synth part"), ("mix", "song, `--no-separate` (notes picked in the mix)")]
    if separated:
        paths.append(("stem", f"song, separated (`{model}`, stem `{DEFAULT_STEM}`)"))

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    def mean_of(values: list[float | None]) -> float | None:
        scored = [v for v in values if v is not None]
        return float(np.mean(scored)) if scored else None

    clean_mean = mean_of([r["clean"].mrstft for r in rows])
    init_mean = float(np.mean([r["init"] for r in rows]))
    floor_mean = float(np.mean([r["floor"] for r in rows]))
    n = len(rows)
    summary = ["| input matched | MR-STFT of top-1 (mean) | / clean part | / init patch | known preset in top-5 | "
               "its family in top-5 | note matched is the synth's | no note found | match time (mean) |",
               "|---|---|---|---|---|---|---|---|---|"]
    for key, title in paths:
        outcomes = [r[key] for r in rows]
        mean = mean_of([o.mrstft for o in outcomes])
        summary.append(
            f"| {title} | {cell(mean)} | {'-' if mean is None or not clean_mean else f'{mean / clean_mean:.2f}'} | "
            f"{'-' if mean is None else f'{mean / init_mean:.2f}'} | {sum(o.known_in_top5 for o in outcomes)}/{n} | "
            f"{sum(o.family_in_top5 for o in outcomes)}/{n} | {sum(bool(o.synth_note) for o in outcomes)}/{n} | "
            f"{sum(o.failure is not None for o in outcomes)} | {np.mean([o.seconds for o in outcomes]):.1f} s |")
    if not separated:
        summary.append(f"| song, separated (`{model}`) | weights absent: not measured | | | | | | | |")
    summary += [f"| *baseline: the known preset itself, re-rendered* | {floor_mean:.3f} | | | | | | | |",
                f"| *baseline: the init patch of the known preset's synth* | {init_mean:.3f} | "
                f"{'-' if not clean_mean else f'{init_mean / clean_mean:.2f}'} | 1.00 | | | | | |"]

    detail = ["| song | known preset | input | top-1 | known / family in top-5 | note matched | MR-STFT | / clean |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        song = r["song"]
        clean = r["clean"].mrstft
        for key, _ in paths:
            o = r[key]
            if o.mrstft is None or clean is None:
                ratio = "-"
            else:  # the clean part's match is often the preset itself, at distance ~0
                ratio = f"{o.mrstft / clean:.2f}" if clean >= 0.01 else "(clean exact)"
            top = o.top1 if o.failure is None else f"none: {o.failure}"
            picked = "-" if o.synth_note is None else ("synth" if o.synth_note else "bass or drums")
            detail.append(f"| {song.label} | {song.preset_id} | {key} | {top} | "
                          f"{'yes' if o.known_in_top5 else 'no'} / {'yes' if o.family_in_top5 else 'no'} | "
                          f"{picked} | {cell(o.mrstft)} | {ratio} |")
        detail.append(f"| {song.label} | | known preset / init patch | | | | {r['floor']:.3f} / {r['init']:.3f} | |")
    weights_note = ("" if separated else
                    f"**Demucs weights were absent on this machine** (`{model}`: not in demucs' caches"
                    f"{'' if repo is None else f' nor in {repo}'}; nothing is downloaded), so the quality "
                    "of the separated path could not be measured here: the table holds the clean part and the "
                    "no-separation path on the same mixes. Where the weights are present the script adds the "
                    "separated stem's row.\n\n")
    text = (f"{len(rows)} songs, each {MUSIC_SECONDS:.0f} s at 120 bpm plus a {SONG_SECONDS - MUSIC_SECONDS:.1f} s "
            f"tail: a five-note phrase (held 0.5-1.5 s, a new note cuts the last) of a factory preset drawn "
            f"from the shipped index (seed {seed}; alternately Vital and Dexed, categories "
            f"{', '.join(CATEGORIES[:len(rows)])}), over General MIDI drums (kick, snare, eighth hi-hats) and "
            f"a finger-bass line rendered by fluidsynth from {Path(_soundfont()).name}; synth part "
            f"{SYNTH_DB:+.0f} dB RMS against drums and bass, mix peak at -1 dBFS, 44.1 kHz stereo files. "
            "Both the clean synth part (the reference) and the song are matched with `match --top-k 5` "
            "(no refinement) against both synths. MR-STFT: auraloss `MultiResolutionSTFTLoss()` defaults "
            "between the clean synth part (10.5 s, mono, both RMS-normalised to 0.1) and the same phrase "
            "played by the top-1 match at the pitch and velocity it was matched at, as in the out-of-domain "
            "table; lower is better, and \"/ clean part\" near 1 means the song costs the match nothing. "
            "Family: the preset or one of its index variants (`id~NNN`). Pooled synth voices keep "
            "free-running LFOs, so a rerun can pick a different top-1 among near-equal candidates. "
            "\"Note matched is the synth's\": the note the match was made on starts while a phrase note "
            "sounds, at its pitch (not a bass note or a drum).\n\n")
    return (text + weights_note + "\n".join(summary) + "\n\n<details><summary>per song</summary>\n\n"
            + "\n".join(detail) + "\n\n</details>\n"), songs


def _soundfont() -> str:
    from scripts.bench_match.gm import SOUNDFONTS

    return next((s for s in SOUNDFONTS if Path(s).exists()), "?")


# ---- separation cost --------------------------------------------------------------------------
def save_random_htdemucs(folder: Path, seed: int) -> int:
    """The htdemucs architecture at its released size, randomly initialised, saved where
    ``StemSeparator("htdemucs", folder)`` loads it as it would load the real weights."""
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    model = HTDemucs(**HTDEMUCS_KWARGS)
    args, kwargs = model._init_args_kwargs  # recorded by demucs' @capture_init, as in its checkpoints
    torch.save({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict()},
               folder / f"{HTDEMUCS_SIGNATURE}.th")
    return sum(p.numel() for p in model.parameters())


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (resident at its peak) of this process, in MB.

    Not ``getrusage().ru_maxrss``: Linux carries the parent's peak over a fork and exec into
    it, so a probe started from this (large) benchmark process would report the parent's.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe(track: Path, repo: Path, model: str, threads: int) -> dict:
    """Run in a fresh process: load the model and separate ``track`` the way `match` does."""
    import torch

    torch.set_num_threads(threads)
    separator = StemSeparator(model, repo)
    started = time.perf_counter()
    separator.model  # noqa: B018 - loads the weights (from disk, as on a user's machine)
    loaded = time.perf_counter() - started
    before, peak_before = _memory_mb("VmRSS"), _memory_mb("VmHWM")
    started, cpu = time.perf_counter(), time.process_time()
    stem = separator.stem_audio(track, DEFAULT_STEM)
    # CPU seconds next to wall seconds: on a shared machine, CPU / wall well under the
    # thread count means the run waited for cores.
    return {"load_s": loaded, "separate_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
            "rss_before_mb": before,
            "peak_before_mb": peak_before, "peak_mb": _memory_mb("VmHWM"),
            "seconds": stem.duration}


def run_probe(track: Path, repo: Path | None, model: str, threads: int) -> dict:
    """:func:`probe` in a fresh process, so that its peak memory is separation's alone."""
    command = [sys.executable, "-m", "scripts.bench_song", "--probe", str(track.resolve()), "--demucs-model", model,
               "--threads", str(threads)]
    if repo is not None:
        command += ["--demucs-repo", str(repo.resolve())]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def track_of(songs: list[Song], seconds: float, path: Path) -> None:
    """A track of ``seconds`` made of the songs' mixes one after another (repeated)."""
    import soundfile

    mixes = [soundfile.read(s.mix, dtype="float32", always_2d=True)[0] for s in songs]
    parts, total, i = [], 0, 0
    while total < seconds * RATE:
        parts.append(mixes[i % len(mixes)])
        total += len(parts[-1])
        i += 1
    write_wav(path, np.concatenate(parts)[: int(seconds * RATE)], RATE)


def separation_section(songs: list[Song], folder: Path, model: str, repo: Path | None, track_seconds: float,
                       threads: int, max_seconds: float, seed: int) -> str:
    real = weights_available(model, repo)
    if real:
        weights = repo
        label, params = f"`{model}`, released weights", 0
    elif model == DEFAULT_DEMUCS_MODEL:
        weights = folder / "random-htdemucs"
        weights.mkdir()
        params = save_random_htdemucs(weights, seed)
        label = (f"`{model}` architecture, **random weights** ({params / 1e6:.1f} M parameters, same "
                 "architecture: time and memory only)")
    else:
        return f"Separation cost: the weights of `{model}` are absent; only `{DEFAULT_DEMUCS_MODEL}` is rebuilt.\n"
    # A short run first: where a 3-minute track would take too long here, a shorter one is
    # measured and the time extrapolated (memory is bounded by the separation blocks).
    short = min(30.0, track_seconds)
    track_of(songs, short, folder / "short.wav")
    first = run_probe(folder / "short.wav", weights, model, threads)
    projected = first["separate_s"] * track_seconds / short
    measured = track_seconds if projected <= max_seconds else min(track_seconds, 60.0)
    if measured != short:
        track_of(songs, measured, folder / "track.wav")
        result = run_probe(folder / "track.wav", weights, model, threads)
    else:
        result = first
    per_second = result["separate_s"] / measured
    def row(title: str, run: dict, seconds: float) -> str:
        return (f"| {title} | {label} | {threads} | {run['load_s']:.1f} s | {run['separate_s']:.0f} s | "
                f"{run['cpu_s']:.0f} s | {run['separate_s'] / seconds:.2f} | {run['rss_before_mb']:.0f} MB | "
                f"{run['peak_before_mb']:.0f} MB | "
                f"{run['peak_mb']:.0f} MB | {run['peak_mb'] - run['rss_before_mb']:.0f} MB |")

    lines = ["| track | model | threads | load | separation (wall) | CPU time | wall x real time | RSS, model loaded | "
             "peak RSS before separation | peak RSS | added by separation |",
             "|---|---|---|---|---|---|---|---|---|---|---|",
             row(f"{measured / 60:.1f} min stereo 44.1 kHz", result, measured)]
    if measured < track_seconds:
        lines.append(f"| {track_seconds / 60:.1f} min, **extrapolated** (x {track_seconds / measured:.0f}) | "
                     f"{label} | {threads} | | {per_second * track_seconds:.0f} s | | {per_second:.2f} | | | | |")
    if result is not first:
        lines.append(row(f"{short / 60:.1f} min (first run, for the projection)", first, short))
    import demucs
    import torch

    return ("### Separation cost\n\n"
            f"torch {torch.__version__}, demucs {demucs.__version__}. "
            f"`StemSeparator.stem_audio` (what `match` runs on a track: decoding, Demucs in "
            f"{SEPARATION_BLOCK_SECONDS:.0f} s blocks, the `{DEFAULT_STEM}` stem kept mono, resampling) on a track "
            "made of the songs above one after another, in a fresh process "
            f"with `torch.set_num_threads({threads})`. "
            + ("" if real else "The weights are absent here, so the model is the htdemucs architecture "
               "(demucs' bundled `htdemucs.yaml`: a bag of one HTDemucs, `955717e8`; its hyper-parameters "
               "as demucs' training grid `grids/mmi.py` sets them for the run without bottom channels and "
               "with 8.8 s training segments, whence the released 7.8 s model segment: 4 sources, depth 4, "
               "48 channels, 5 cross-transformer layers, `dconv_mode=3`, the rest HTDemucs' defaults; "
               f"{params / 1e6:.1f} M parameters) randomly initialised and saved as `955717e8.th` in a folder "
               "given as `--demucs-repo`, so loading goes through the same code as real weights; compute "
               "and memory depend on the architecture, not on the weight values. ")
            + "Load: reading the weights and building the model. Memory, from /proc/self/status: the "
            "resident set (`VmRSS`) once the model is loaded, and the process' peak resident set (`VmHWM`) "
            "before and after separating (not `getrusage`'s `ru_maxrss`, which Linux carries over from the "
            "parent process across fork and exec); \"added\" is the peak minus the resident set with the "
            "model loaded (decoded input, Demucs' activations, the blocks' stems).\n\n" + "\n".join(lines) + "\n")


def shown(path: Path) -> str:
    """A path as the report shows it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--songs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demucs-model", default=DEFAULT_DEMUCS_MODEL)
    parser.add_argument("--demucs-repo", type=Path, default=None, help="local folder of Demucs weights")
    parser.add_argument("--track-seconds", type=float, default=180.0, help="length of the separation-cost track")
    parser.add_argument("--max-separation-seconds", type=float, default=600.0,
                        help="measure 60 s and extrapolate when the track would take longer than this")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for separation")
    parser.add_argument("--skip-separation-cost", action="store_true")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # internal: the fresh measuring process
    args = parser.parse_args()
    if args.probe is not None:
        print(json.dumps(probe(args.probe, args.demucs_repo, args.demucs_model, args.threads)))
        return

    import torch

    torch.set_num_threads(1)  # MR-STFT only; matching uses its own workers
    index = args.index or default_index_dir()
    with tempfile.TemporaryDirectory(prefix="bench-song-") as tmp:
        body, songs = songs_section(index, args.songs, args.seed, args.demucs_model, args.demucs_repo, Path(tmp))
        if not args.skip_separation_cost:
            body += "\n" + separation_section(songs, Path(tmp), args.demucs_model, args.demucs_repo,
                                              args.track_seconds, args.threads, args.max_separation_seconds,
                                              args.seed)
    command = (f"python -m scripts.bench_song --songs {args.songs} --seed {args.seed} --track-seconds "
               f"{args.track_seconds:g} --threads {args.threads} --index {shown(index)}"
               + (f" --demucs-repo {args.demucs_repo}" if args.demucs_repo else ""))
    write_section("song", header("Songs: a known synth part in a mix", command) + "\n" + body)
    print("updated docs/BENCHMARKS.md (song)", file=sys.stderr)


if __name__ == "__main__":
    main()
