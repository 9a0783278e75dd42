"""Reading input audio (files, stdin bytes) and writing WAV files.

WAV, FLAC, MP3, OGG and AIFF are read by soundfile or pedalboard everywhere; AAC (M4A,
MP4, ADTS) and the rest only by pedalboard where the platform has the codec (macOS,
Windows) or by an ``ffmpeg`` binary on the PATH.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
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


class _DecoderMissing(Exception):
    """A decoder that is not installed (as opposed to one that cannot read the file)."""


#: ffmpeg's raw output carries no header, so it is asked for a fixed rate and layout; the
#: callers resample to the rate they need anyway.
FFMPEG_SAMPLE_RATE_HZ = 44100
_FFMPEG_CHANNELS = 2


def _decode_ffmpeg(data: BinaryIO | str) -> tuple[np.ndarray, int]:
    """Anything ffmpeg reads (AAC in M4A/MP4 or ADTS, Opus, WMA, video soundtracks), as
    stereo float32 at :data:`FFMPEG_SAMPLE_RATE_HZ`. Only where an ``ffmpeg`` binary exists."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise _DecoderMissing("not installed")
    with tempfile.TemporaryDirectory(prefix="patchpilot-ffmpeg-") as folder:
        if isinstance(data, str):
            path = data
        else:
            # From a pipe ffmpeg cannot seek, and an MP4 often keeps its index at the end.
            path = str(Path(folder) / "input")
            Path(path).write_bytes(data.read())
        # "file:" keeps a name such as "pipe:0" or "concat:a|b" from being read as a protocol.
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", f"file:{path}",
                   "-t", f"{MAX_INPUT_SECONDS:g}", "-map", "0:a:0", "-ac", str(_FFMPEG_CHANNELS),
                   "-ar", str(FFMPEG_SAMPLE_RATE_HZ), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if done.returncode != 0:
        complaint = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(complaint[-1] if complaint else f"exit status {done.returncode}")
    usable = len(done.stdout) // (4 * _FFMPEG_CHANNELS) * 4 * _FFMPEG_CHANNELS
    samples = np.frombuffer(done.stdout[:usable], dtype="<f4").reshape(-1, _FFMPEG_CHANNELS)
    return np.ascontiguousarray(samples.T, dtype=np.float32), FFMPEG_SAMPLE_RATE_HZ


#: Tried in turn: soundfile first (exact MP3 lengths, fastest), ffmpeg last (a subprocess).
_DECODERS = (("soundfile", _decode_soundfile), ("pedalboard", _decode_pedalboard), ("ffmpeg", _decode_ffmpeg))

#: File names of AAC audio, which neither soundfile nor pedalboard reads on Linux.
_AAC_SUFFIXES = (".m4a", ".aac", ".mp4", ".m4b", ".3gp", ".adts")


def looks_like_aac(head: bytes, name: str) -> bool:
    """Whether a file is AAC (or another MP4-family stream) by its name or first bytes:
    an ISO media ``ftyp`` box (M4A/MP4), an ADIF header, or an ADTS frame header (the MP3
    sync word with layer bits 00, which MP3 never uses)."""
    if Path(name).suffix.lower() in _AAC_SUFFIXES:
        return True
    if head[4:8] == b"ftyp" or head[:4] == b"ADIF":
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0


def _head(data: bytes | str | Path, size: int = 16) -> bytes:
    if isinstance(data, bytes):
        return data[:size]
    try:
        with open(data, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def decode(data: bytes | str | Path, name: str) -> tuple[np.ndarray, int]:
    """Decode with each backend in turn; one error listing every backend's complaint, or
    naming the missing decoder when the file is AAC/M4A and only ffmpeg could read it."""
    errors = []
    missing = []
    for backend, decoder in _DECODERS:
        source: BinaryIO | str = io.BytesIO(data) if isinstance(data, bytes) else str(data)
        try:
            samples, rate = decoder(source)
        except _DecoderMissing as exc:
            missing.append(backend)
            errors.append(f"{backend}: {exc}")
            continue
        except Exception as exc:  # decoders raise many types for "not audio"
            errors.append(f"{backend}: {' '.join(str(exc).split()) or type(exc).__name__}")
            continue
        return samples, rate
    if "ffmpeg" in missing and looks_like_aac(_head(data), name):
        raise InputAudioError(f"{name}: no decoder for AAC/M4A here: pedalboard cannot read it on this platform "
                              "and ffmpeg is not installed (apt install ffmpeg / brew install ffmpeg), "
                              "or convert it to WAV, FLAC, MP3 or OGG")
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
