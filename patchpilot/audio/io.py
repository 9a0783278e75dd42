"""Reading input audio (files, stdin bytes) and writing WAV files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import InputAudioError

#: Longest input analysed; anything beyond is ignored (full songs are issue-5 territory).
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

    samples, rate = soundfile.read(data, dtype="float32", always_2d=True)
    return samples.T, int(rate)


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


def load_audio(source: str | Path | bytes, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, name: str | None = None) -> Audio:
    """Load a file path or raw file bytes as mono float32 at ``sample_rate``."""
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
    mono = np.asarray(samples, dtype=np.float32).mean(axis=0)[: int(MAX_INPUT_SECONDS * rate)]
    if not np.all(np.isfinite(mono)):
        raise InputAudioError(f"{label}: the audio holds NaN or infinite samples (corrupt file?)")
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
    return Audio(np.ascontiguousarray(mono), sample_rate, label)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """32-bit float WAV: keeps synth output exactly, including peaks above 0 dBFS."""
    import soundfile

    soundfile.write(str(path), np.asarray(samples, dtype=np.float32), sample_rate, subtype="FLOAT")
