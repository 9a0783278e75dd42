"""Reading input audio (files, stdin bytes) and writing WAV files.

WAV, FLAC, MP3, OGG and AIFF are read by soundfile or pedalboard everywhere; AAC (M4A,
MP4, ADTS) and the rest only by pedalboard where the platform has the codec (macOS,
Windows) or by an ``ffmpeg`` binary on the PATH.

Inputs are bounded before anything large is allocated: a byte cap on files and stdin
(``$PATCHPILOT_MAX_INPUT_BYTES``, 1 GB by default), sample rates and channel counts a
recording can have, and at most :data:`MAX_INPUT_SECONDS` (and :data:`MAX_DECODED_SAMPLES`)
decoded: longer input is trimmed, with a :class:`~patchpilot.errors.PatchPilotWarning`.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, EXPORT_SAMPLE_RATE_HZ
from patchpilot.errors import InputAudioError, PatchPilotWarning, UsageError

#: Longest input analysed (a long song); anything beyond is trimmed, with a warning.
MAX_INPUT_SECONDS = 600.0
#: Default cap on the bytes of an input file or stdin (an hour of CD-quality WAV is 635 MB);
#: ``$PATCHPILOT_MAX_INPUT_BYTES`` overrides it.
DEFAULT_MAX_INPUT_BYTES = 1_000_000_000
MAX_INPUT_BYTES_ENV = "PATCHPILOT_MAX_INPUT_BYTES"
#: Sample rates real recordings use lie well inside this range; outside it a header is
#: corrupt (a "1 Hz" file would be resampled into millions of samples per frame).
SAMPLE_RATE_RANGE_HZ = (4000, 768_000)
#: More channels than third-order ambisonics and surround formats use: a corrupt header.
MAX_CHANNELS = 64
#: Decoded samples held at most (frames x channels; 800 MB of float32). Ten minutes of 44.1 kHz
#: stereo are 53 million; a small compressed file with many channels at a high rate could
#: otherwise decode to tens of gigabytes, so it is cut shorter.
MAX_DECODED_SAMPLES = 200_000_000
#: Samples beyond +120 dBFS are corruption, not audio, and overflow float32 sums to inf.
MAX_SAMPLE_MAGNITUDE = 1e6
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples with their rate and a name for messages."""

    samples: np.ndarray
    sample_rate: int
    name: str

    @property
    def duration(self) -> float:
        return self.samples.size / self.sample_rate


def max_input_bytes() -> int:
    """The byte cap on one input: ``$PATCHPILOT_MAX_INPUT_BYTES`` or 1 GB."""
    value = os.environ.get(MAX_INPUT_BYTES_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UsageError(f"{MAX_INPUT_BYTES_ENV}={value!r}: expected a positive whole number of bytes")
    return limit


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def _too_large(name: str, limit: int) -> InputAudioError:
    return InputAudioError(f"{name}: larger than {_size(limit)}, the input size cap "
                           f"(set {MAX_INPUT_BYTES_ENV} to a number of bytes to raise it)")


def read_capped(stream: BinaryIO, name: str = "<stdin>") -> bytes:
    """All of a stream (stdin, a pipe) in chunks, stopping with an error as soon as it
    passes :func:`max_input_bytes`, before the whole stream is in memory."""
    limit = max_input_bytes()
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_CHUNK_BYTES, limit + 1 - total))  # one byte past the cap tells
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_large(name, limit)


class _Unsupported(Exception):
    """A stream any decoder would read the same way but that is not usable audio (an absurd
    sample rate or channel count): reported as it is, without trying the other decoders."""


def _check_format(rate: float, channels: int) -> None:
    low, high = SAMPLE_RATE_RANGE_HZ
    if not low <= rate <= high:
        raise _Unsupported(f"a sample rate of {rate:g} Hz (expected {low}-{high} Hz: a corrupt header?)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise _Unsupported(f"{channels} channels (expected 1-{MAX_CHANNELS}: a corrupt header?)")


def _frames_kept(rate: float, channels: int) -> int:
    """Frames of an input that are used: :data:`MAX_INPUT_SECONDS`, or fewer when that many
    would pass :data:`MAX_DECODED_SAMPLES`."""
    return min(int(MAX_INPUT_SECONDS * rate), MAX_DECODED_SAMPLES // max(channels, 1))


def _frames_to_read(frames: int, rate: float, channels: int) -> int:
    # Read no more than is used (a long track decoded whole would take gigabytes), plus one
    # frame, which tells _read that the input went on and was trimmed.
    return min(frames, _frames_kept(rate, channels) + 1)


def _decode_soundfile(data: BinaryIO | str) -> tuple[np.ndarray, int]:
    import soundfile

    with soundfile.SoundFile(data) as handle:
        _check_format(handle.samplerate, handle.channels)
        frames = _frames_to_read(handle.frames, handle.samplerate, handle.channels) if handle.frames > 0 else -1
        samples = handle.read(frames, dtype="float32", always_2d=True)
        return samples.T, int(handle.samplerate)


def _decode_pedalboard(data: BinaryIO | str) -> tuple[np.ndarray, int]:
    from pedalboard.io import AudioFile

    with AudioFile(data) as handle:  # type: ignore[arg-type]
        _check_format(handle.samplerate, handle.num_channels)
        frames = _frames_to_read(handle.frames, handle.samplerate, handle.num_channels)
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
        # A second past the cap tells _read that the input went on and was trimmed.
        # "file:" keeps a name such as "pipe:0" or "concat:a|b" from being read as a protocol.
        command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", f"file:{path}",
                   "-t", f"{MAX_INPUT_SECONDS + 1:g}", "-map", "0:a:0", "-ac", str(_FFMPEG_CHANNELS),
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

#: Containers whose every codec libsndfile reads: pedalboard (JUCE) adds nothing there, and
#: JUCE's WAV reader segfaults on some damaged headers (an MS ADPCM fmt chunk with a zero
#: block size), so it is not tried on them.
_SOUNDFILE_CONTAINERS = (b"RIFF", b"RIFX", b"RF64", b"FORM")

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


#: What soundfile and pedalboard read here (ffmpeg, where installed, reads more).
READABLE_FORMATS = "WAV, FLAC, OGG, AIFF or MP3"


def decode(data: bytes | str | Path, name: str) -> tuple[np.ndarray, int]:
    """Decode with each backend in turn. A file none reads gets one line in the user's terms
    (the formats read here, and ffmpeg's own reason where it tried), never the decoders'
    messages about the file's path (a temporary one, for uploads and stdin); a file that is
    AAC/M4A with no ffmpeg says which decoder to install."""
    errors: dict[str, str] = {}
    missing = []
    head = _head(data)
    for backend, decoder in _DECODERS:
        if backend == "pedalboard" and head[:4] in _SOUNDFILE_CONTAINERS:
            continue
        source: BinaryIO | str = io.BytesIO(data) if isinstance(data, bytes) else str(data)
        try:
            samples, rate = decoder(source)
        except _Unsupported as exc:
            raise InputAudioError(f"{name}: {exc}") from None
        except _DecoderMissing:
            missing.append(backend)
            continue
        except Exception as exc:  # noqa: BLE001 - decoders raise many types for "not audio"
            errors[backend] = _complaint(exc, data)
            continue
        return samples, rate
    if "ffmpeg" in missing and looks_like_aac(head, name):
        raise InputAudioError(f"{name}: no decoder for AAC/M4A here: pedalboard cannot read it on this platform "
                              "and ffmpeg is not installed (apt install ffmpeg / brew install ffmpeg), "
                              "or convert it to WAV, FLAC, MP3 or OGG")
    if head[:4] in _SOUNDFILE_CONTAINERS and "soundfile" in errors:  # a WAV or AIFF, damaged or unusual
        raise InputAudioError(f"{name}: not a readable audio file (a WAV or AIFF header, but soundfile: "
                              f"{errors['soundfile']})")
    if "ffmpeg" in errors:
        why = f"ffmpeg could not read it either: {errors['ffmpeg']}"
    else:
        why = "ffmpeg, which reads more formats, is not installed" if "ffmpeg" in missing else ""
    raise InputAudioError(f"{name}: not a readable audio file (it is not {READABLE_FORMATS} that the decoders "
                          f"here can read{'; ' + why if why else ''})")


def _complaint(error: Exception, data: bytes | str | Path) -> str:
    """A decoder's reason in one short line, without the file's path or a buffer's repr."""
    text = " ".join(str(error).split())
    if not isinstance(data, bytes):
        text = text.replace(str(data), "the file")
    text = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the input", text)
    return (text[:160] + "...") if len(text) > 160 else (text or type(error).__name__)


def _read(source: str | Path | bytes, name: str | None, warn_trimmed: bool = True) -> tuple[np.ndarray, int, str]:
    """Decoded ``(channels, frames)`` float32 at the file's own rate, and a label for messages.
    Input past :func:`_frames_kept` is cut there, with a warning if ``warn_trimmed``."""
    label = name or ("<stdin>" if isinstance(source, bytes) else str(source))
    limit = max_input_bytes()
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.exists():
            raise InputAudioError(f"{label}: no such file")
        if path.is_dir():
            raise InputAudioError(f"{label}: is a folder, not an audio file")
        size = path.stat().st_size
        if not path.is_file():  # a named pipe or /dev/stdin: no size to check up front
            try:
                with open(path, "rb") as stream:
                    source = read_capped(stream, label)
            except OSError as exc:
                raise InputAudioError(f"{label}: cannot read ({exc.strerror or exc})") from None
        elif size == 0:
            raise InputAudioError(f"{label}: the file is empty")
        elif size > limit:
            raise _too_large(label, limit)
    if isinstance(source, bytes):
        if not source:
            raise InputAudioError(f"{label}: no data")
        if len(source) > limit:
            raise _too_large(label, limit)
    samples, rate = decode(source, label)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2 or samples.size == 0:
        raise InputAudioError(f"{label}: the file holds no audio frames")
    frames = _frames_kept(rate, samples.shape[0])
    if samples.shape[-1] > frames:
        samples = samples[:, :frames]
        if warn_trimmed:
            minutes = f"{frames / rate / 60:.3g}"
            warnings.warn(f"{label} is longer than {minutes} minutes: only the first {minutes} minutes are used",
                          PatchPilotWarning, stacklevel=3)
    if not np.all(np.isfinite(samples)):
        raise InputAudioError(f"{label}: the audio holds NaN or infinite samples (corrupt file?)")
    if np.abs(samples).max() > MAX_SAMPLE_MAGNITUDE:
        raise InputAudioError(f"{label}: the audio holds samples over {MAX_SAMPLE_MAGNITUDE:g} times full scale "
                              "(corrupt file?)")
    return samples, rate, label


def resample(x: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Resample the last axis of ``(frames,)`` or ``(channels, frames)``."""
    if rate == sample_rate:
        return x
    import soxr

    resampled = soxr.resample(x.T, rate, sample_rate, quality="HQ")  # soxr wants (frames, channels)
    return np.ascontiguousarray(resampled.T, dtype=np.float32)


def load_audio(source: str | Path | bytes, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ, name: str | None = None) -> Audio:
    """Load a file path or raw file bytes as mono float32 at ``sample_rate``."""
    samples, rate, label = _read(source, name)
    mono = resample(samples.mean(axis=0), rate, sample_rate)
    return Audio(np.ascontiguousarray(mono), sample_rate, label)


#: Inputs up to this long may keep a full-band copy (``load_clip``); longer ones are songs or
#: recordings whose notes are matched (and refined) at the analysis rate only.
FULL_BAND_MAX_SECONDS = 60.0
#: A full-band copy is kept only where this share of its power lies above the analysis band
#: (-120 dB, Hann-windowed; 16-bit dither alone is far above it): a file decoded at 44.1 kHz
#: from a lower rate (ffmpeg always decodes to 44.1 kHz) holds nothing there.
FULL_BAND_MIN_SHARE = 1e-12


def load_clip(source: str | Path | bytes, name: str | None = None, full_band: bool = False
              ) -> tuple[Audio, Audio | None]:
    """The input as mono float32 at ANALYSIS_SAMPLE_RATE_HZ, and with ``full_band`` a copy at
    EXPORT_SAMPLE_RATE_HZ (what ``RefineOptions.full_band`` scores against) where the input
    has sound above the analysis band and lasts at most FULL_BAND_MAX_SECONDS (else None).
    The file is decoded once."""
    samples, rate, label = _read(source, name)
    mono = np.ascontiguousarray(samples.mean(axis=0))
    audio = Audio(np.ascontiguousarray(resample(mono, rate, ANALYSIS_SAMPLE_RATE_HZ)), ANALYSIS_SAMPLE_RATE_HZ, label)
    return audio, full_band_copy(mono, rate, label) if full_band else None


def full_band_copy(mono: np.ndarray, rate: int, label: str) -> Audio | None:
    """A mono sound at EXPORT_SAMPLE_RATE_HZ where it was recorded at that rate or higher,
    lasts at most FULL_BAND_MAX_SECONDS and has sound above the analysis band (else None)."""
    if rate < EXPORT_SAMPLE_RATE_HZ or mono.size / rate > FULL_BAND_MAX_SECONDS:
        return None
    full = np.ascontiguousarray(resample(mono, rate, EXPORT_SAMPLE_RATE_HZ))
    power = np.abs(np.fft.rfft(full.astype(np.float64) * np.hanning(full.size))) ** 2
    above = power[int(power.size * ANALYSIS_SAMPLE_RATE_HZ / EXPORT_SAMPLE_RATE_HZ):].sum()
    if above < FULL_BAND_MIN_SHARE * max(power.sum(), 1e-30):
        return None
    return Audio(full, EXPORT_SAMPLE_RATE_HZ, label)


def load_stereo(source: str | Path | bytes, sample_rate: int, name: str | None = None,
                warn_trimmed: bool = True) -> np.ndarray:
    """Load as ``(2, frames)`` float32 at ``sample_rate`` (what source separation expects):
    mono is duplicated, channels beyond two are folded into the pair. ``warn_trimmed=False``
    when the caller loaded the same input before and has already said it was trimmed."""
    samples, rate, _ = _read(source, name, warn_trimmed)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    elif samples.shape[0] > 2:
        samples = np.stack([samples[0::2].mean(axis=0), samples[1::2].mean(axis=0)])
    return resample(np.ascontiguousarray(samples), rate, sample_rate)


def write_wav(path: Path | BinaryIO, samples: np.ndarray, sample_rate: int) -> None:
    """32-bit float WAV (to a file, or a binary buffer): keeps synth output exactly,
    including peaks above 0 dBFS."""
    import soundfile

    target = str(path) if isinstance(path, (str, Path)) else path
    soundfile.write(target, np.asarray(samples, dtype=np.float32), sample_rate, subtype="FLOAT", format="WAV")
