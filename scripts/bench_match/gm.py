"""General MIDI notes as benchmark inputs: standard MIDI files, fluidsynth renders from the
SoundFonts, the note list and its targets, and how an answer is timed and scored
(MR-STFT and MSS of the top-1 and of two baselines).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from patchpilot.api import PatchPilot
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.metrics import mr_stft, mss
from patchpilot.synths import get_engine


GM_PROGRAMS = (
    (0, "Acoustic Grand Piano"), (4, "Electric Piano 1"), (6, "Harpsichord"), (11, "Vibraphone"),
    (12, "Marimba"), (16, "Drawbar Organ"), (19, "Church Organ"), (21, "Accordion"), (24, "Nylon Guitar"),
    (33, "Finger Bass"), (38, "Synth Bass 1"), (40, "Violin"), (42, "Cello"), (48, "String Ensemble 1"),
    (56, "Trumpet"), (57, "Trombone"), (61, "Brass Section"), (65, "Alto Sax"), (71, "Clarinet"),
    (73, "Flute"), (80, "Square Lead"), (81, "Saw Lead"), (88, "New Age Pad"), (89, "Warm Pad"),
    (98, "Crystal"), (104, "Sitar"), (108, "Kalimba"), (112, "Tinkle Bell"),
)
BASS_PROGRAMS = {33, 38, 42, 57}
SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "/usr/share/sounds/sf3/MuseScore_General.sf3",
              "/usr/share/sounds/sf2/FluidR3_GM.sf2")
GM_NOTE_SECONDS = 1.2
#: The out-of-domain benchmark's banks: MuseScore's and Frank Wen's FluidR3 (Debian packages
#: musescore-general-soundfont-small and fluid-soundfont-gm).
OOD_SOUNDFONTS = ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
GM_TOTAL_SECONDS = 2.4


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file(path: Path, events: list[tuple[float, bytes]], end: float) -> None:
    """A format-0 standard MIDI file (480 ticks per beat, 120 bpm) of ``(seconds, message)``
    events (any channels; stable order at equal times), the track ending at ``end`` seconds."""
    ticks = lambda seconds: round(seconds * 960)  # noqa: E731
    body, now = b"", 0
    for seconds, message in [*sorted(events, key=lambda e: e[0]), (end, b"\xff\x2f\x00")]:
        body += _vlq(ticks(seconds) - now) + message
        now = ticks(seconds)
    track = b"MTrk" + len(body).to_bytes(4, "big") + body
    path.write_bytes(b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
                     + (480).to_bytes(2, "big") + track)


def midi_note_file(path: Path, program: int, note: int, velocity: int = 100) -> None:
    """A one-note standard MIDI file (channel 1)."""
    midi_file(path, [(0.0, bytes([0xC0, program])), (0.0, bytes([0x90, note, velocity])),
                     (GM_NOTE_SECONDS, bytes([0x80, note, 0]))], GM_TOTAL_SECONDS)


def fluidsynth_render(mid: Path, wav: Path, what: str = "the ood benchmark", soundfont: str | None = None,
                      wet: bool = False) -> None:
    """Render a MIDI file with fluidsynth and ``soundfont`` (else the first General MIDI
    SoundFont found), at 44.1 kHz, with the SoundFont's reverb and chorus off (dry notes) or,
    ``wet``, on (fluidsynth's defaults: a note in a room, as a user would record it)."""
    fluidsynth = shutil.which("fluidsynth")
    soundfont = soundfont or next((s for s in SOUNDFONTS if Path(s).exists()), None)
    if fluidsynth is None or soundfont is None or not Path(soundfont).exists():
        raise SystemExit(f"{what} needs fluidsynth and a GM SoundFont: "
                         "apt-get install fluidsynth musescore-general-soundfont-small fluid-soundfont-gm")
    effects = "1" if wet else "0"
    subprocess.run([fluidsynth, "-ni", "-q", "-g", "0.8", "-R", effects, "-C", effects, "-r", str(EXPORT_SAMPLE_RATE_HZ),
                    "-F", str(wav), soundfont, str(mid)], check=True, capture_output=True)


def gm_note_list() -> list[tuple[str, int, int]]:
    """The benchmark's General MIDI notes: (label, program, note), 28 programs x 2 pitches."""
    return [(f"{name} ({note})", program, note) for program, name in GM_PROGRAMS
            for note in ((36, 43) if program in BASS_PROGRAMS else (57, 67))]


def gm_note_wav(folder: Path, program: int, note: int, soundfont: str | None = None, wet: bool = False) -> Path:
    """One General MIDI note rendered from ``soundfont`` into ``folder`` (``wet``: with the
    SoundFont's reverb and chorus)."""
    mid = folder / f"p{program:03d}_{note}.mid"
    wav = folder / f"{Path(soundfont or 'default').stem}_p{program:03d}_{note}{'_wet' if wet else ''}.wav"
    midi_note_file(mid, program, note)
    fluidsynth_render(mid, wav, soundfont=soundfont, wet=wet)
    return wav


def gm_notes(folder: Path, soundfont: str | None = None) -> list[tuple[str, Path]]:
    """The benchmark's General MIDI notes rendered from one SoundFont."""
    return [(label, gm_note_wav(folder, program, note, soundfont)) for label, program, note in gm_note_list()]


def gm_target(wav: Path) -> tuple[np.ndarray, int]:
    """A General MIDI note as the metrics compare it: mono, the MIDI file's 2.4 s (fluidsynth
    writes two more seconds of silence, which would dilute every distance)."""
    import soundfile

    samples, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    return samples.mean(axis=1)[: int(GM_TOTAL_SECONDS * rate)], rate


#: The two published measures every answer is scored with (``patchpilot/metrics.py``; the
#: tests hold them to auraloss' MultiResolutionSTFTLoss and to librosa).
mrstft_distance = mr_stft
mss_distance = mss


def both_metrics(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(MR-STFT, MSS dB) of ``other`` against ``reference`` (44.1 kHz, mono)."""
    return mrstft_distance(reference, other), mss_distance(reference, other)


def ood_soundfonts() -> list[str]:
    """Two General MIDI banks from different makers, so that no single bank is tuned to."""
    fonts = [f for f in OOD_SOUNDFONTS if Path(f).exists()]
    if not fonts:
        raise SystemExit("the ood benchmark needs General MIDI SoundFonts: "
                         "apt-get install fluidsynth musescore-general-soundfont-small fluid-soundfont-gm")
    return fonts


def timed_match(pilot: PatchPilot, wav: Path, row: dict, label: str, **options: object):
    """``pilot.match`` with its wall time in ``row["seconds"]``; a refused input (one line of
    error, as the CLI prints it) goes to ``row["refused"]`` and gives None: it is a result too."""
    try:
        started = time.perf_counter()
        result = pilot.match(wav, **options)
        row["seconds"] = time.perf_counter() - started
        return result
    except Exception as error:  # noqa: BLE001
        row["refused"] = str(error)
        print(f"  {label}: refused: {error}", file=sys.stderr)
        return None


def score_answer(pilot: PatchPilot, best, target: np.ndarray, rate: int, hold: float,
                 rng: np.random.Generator, rows_by_synth: dict[str, list[int]]) -> dict[str, tuple[float, float]]:
    """(MR-STFT, MSS) of a match's top-1 and of two baselines treated exactly like it: the
    synth's init patch and a random preset of the index, each played from its file on a fresh
    synth at the pitch the top-1 sounds at (a preset's pitch offset moves its key), with the
    top-1's velocity, ``hold`` and the target's length, then through the top-1's effect chain."""
    engine = get_engine(best.preset.synth)
    pitch = best.render.note + ((best.stored.pitch_offset or 0.0) if best.stored else 0.0)
    random_row = int(rng.choice(rows_by_synth[best.preset.synth]))
    random_sp = pilot.index.presets([random_row])[random_row]
    played = {
        "top1": (best.preset, best.render.note),
        "init": (engine.init_preset(), int(round(pitch))),
        "random": (random_sp.preset, int(np.clip(round(pitch - (random_sp.pitch_offset or 0.0)), 0, 127))),
    }
    # the top-1's effect chain runs on all three: the same rendering path
    return {key: both_metrics(target, best.fx.apply(engine.render(preset, key_note, best.render.velocity, hold,
                                                                  target.size / rate, sample_rate=rate), rate))
            for key, (preset, key_note) in played.items()}
