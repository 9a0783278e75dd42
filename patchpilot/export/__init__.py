"""Exporting matches: a native preset file the real synth loads, and a WAV of the match.

The WAV is rendered on a fresh synth instance at 44.1 kHz at the input's pitch, with the
note held EXPORT_NOTE_SECONDS and EXPORT_RENDER_SECONDS long in all, so loading the
preset file and playing that note gives exactly the same audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchpilot.audio.io import write_wav
from patchpilot.constants import EXPORT_SAMPLE_RATE_HZ
from patchpilot.errors import UsageError
from patchpilot.library.bank import slug
from patchpilot.synths import Preset, get_engine

EXPORT_NOTE_SECONDS = 1.5
EXPORT_RENDER_SECONDS = 3.0


@dataclass(frozen=True)
class ExportedFiles:
    preset_file: Path
    audio_file: Path


def prepare_directory(directory: Path) -> Path:
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--export {directory}: exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def export_preset(preset: Preset, directory: Path, stem: str, *, note: int, velocity: int) -> ExportedFiles:
    """Write ``<stem>.<suffix>`` (the preset) and ``<stem>.wav`` (it played at ``note``)."""
    engine = get_engine(preset.synth)
    base = directory / slug(stem)
    preset_file = base.with_suffix(engine.preset_suffix)
    audio_file = base.with_suffix(".wav")
    engine.write_preset(preset, preset_file)
    audio = engine.render(preset, note, velocity, EXPORT_NOTE_SECONDS, EXPORT_RENDER_SECONDS,
                          sample_rate=EXPORT_SAMPLE_RATE_HZ)
    write_wav(audio_file, audio, EXPORT_SAMPLE_RATE_HZ)
    return ExportedFiles(preset_file, audio_file)
