"""Reading input audio (files, stdin bytes) and writing WAV files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import InputAudioError

#: Longest input analysed (a long song); anything beyond is ignored.
MAX_INPUT_SECONDS = 600.0


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples with their rate and a name for messages."""

    samples: np.ndarray
    sample_rate: int
    name: str

    @property
    def duration(self) -> float:
        return self.samples.size / self.sample_rate


def _decode_soundfile(data: BinaryIO | str) -> tuple[np.ndarray, int]:
    import soundfile

    with soundfile.SoundFile(data) as handle:
        # Read no more than is analysed: a long track decoded whole would take gigabytes.
        frames = min(handle.frames, int(MAX_INPUT_SECONDS * handle.samplerate)) if handle.frames > 0 else -1
        samples = handle.read(frames, dtype="float32", always_2d=True)
        return samples.T, int(handle.samplerate)


def _decode_pedalboard(data: BinaryIO | str) -> tuple[np.ndarray, int]:
    from pedalboard.io import AudioFile

    with AudioFile(data) as handle:  # type: ignore[arg-type]
        frames = min(handle.frames, int(MAX_INPUT_SECONDS * handle.samplerate))
        return handle.read(frames), int(handle.samplerate)


_DECODERS = (("soundfile", _decode_soundfile), ("pedalboard", _decode_pedalboard))


def decode(data: bytes | str | Path, name: str) -> tuple[np.ndarray, int]:
    """Decode with each backend in turn; one error listing every backend's complaint."""
    errors = []
    for backend, decoder in _DECODERS:
        source: BinaryIO | str = io.BytesIO(data) if isinstance(data, bytes) else str(data)
        try:
            samples, rate = decoder(source)
        except Exception as exc:  # decoders raise many types for "not audio"
            errors.append(f"{backend}: {' '.join(str(exc).split()) or type(exc).__name__}")
            continue
        return samples, rate
    raise InputAudioError(f"{name}: not a readable audio file ({'; '.join(errors)})")


def _read(source: str | Path | bytes, name: str | None) -> tuple[np.ndarray, int, str]:
    """Decoded ``(channels, frames)`` float32 at the file's own rate, and a label for messages."""
    if isinstance(source, bytes):
        label = name or "<stdin>"
        if not source:
            raise InputAudioError(f"{label}: no data")
        samples, rate = decode(source, label)
    else:
        path = Path(source)
        label = name or str(source)
        if not path.exists():
            raise InputAudioError(f"{label}: no such file")
        if path.is_dir():
            raise InputAudioError(f"{label}: is a folder, not an audio file")
        if path.stat().st_size == 0:
            raise InputAudioError(f"{label}: the file is empty")
        samples, rate = decode(path, label)
    if samples.size == 0 or samples.shape[-1] == 0:
        raise InputAudioError(f"{label}: the file holds no audio frames")
    samples = np.asarray(samples, dtype=np.float32)[:, : int(MAX_INPUT_SECONDS * rate)]
    if not np.all(np.isfinite(samples)):
        raise InputAudioError(f"{label}: the audio holds NaN or infinite samples (corrupt file?)")
    return samples, rate, label


def _resample(x: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Resample the last axis of ``(frames,)`` or ``(channels, frames)``."""
    if rate == sample_rate:
        return x
    import soxr

    resampled = soxr.resample(x.T, rate, sample_rate, quality="HQ")  # soxr wants (frames, channels)
    return np.ascontiguousarray(resampled.T, dtype=np.float32)


def load_audio(source: str | Path | bytes, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, name: str | None = None) -> Audio:
    """Load a file path or raw file bytes as mono float32 at ``sample_rate``."""
    samples, rate, label = _read(source, name)
    mono = _resample(samples.mean(axis=0), rate, sample_rate)
    return Audio(np.ascontiguousarray(mono), sample_rate, label)


def load_stereo(source: str | Path | bytes, sample_rate: int, name: str | None = None) -> np.ndarray:
    """Load as ``(2, frames)`` float32 at ``sample_rate`` (what source separation expects):
    mono is duplicated, channels beyond two are folded into the pair."""
    samples, rate, _ = _read(source, name)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    elif samples.shape[0] > 2:
        samples = np.stack([samples[0::2].mean(axis=0), samples[1::2].mean(axis=0)])
    return _resample(np.ascontiguousarray(samples), rate, sample_rate)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """32-bit float WAV: keeps synth output exactly, including peaks above 0 dBFS."""
    import soundfile

    soundfile.write(str(path), np.asarray(samples, dtype=np.float32), sample_rate, subtype="FLOAT")
