"""Links as input: the audio of a web page or a direct link, fetched with yt-dlp.

The audio goes to a temporary folder that is removed when matching is done, whether it
succeeded or not. Downloads are capped in size and, where the site says, in duration.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from patchpilot.errors import InputAudioError

#: Largest download accepted (bytes): a ten-minute WAV at 48 kHz stereo is ~230 MB.
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
#: Longest audio accepted (seconds), where the site tells the duration before downloading.
MAX_DOWNLOAD_SECONDS = 20 * 60
#: Seconds without an answer before a connection counts as dead.
SOCKET_TIMEOUT_SECONDS = 20.0

#: Formats the decoders (soundfile, pedalboard) read without ffmpeg, best first. Without
#: ffmpeg, yt-dlp cannot turn a site's webm/m4a streams into one of these.
_DECODABLE_FORMATS = "bestaudio[ext=wav]/bestaudio[ext=flac]/bestaudio[ext=ogg]/bestaudio[ext=mp3]/bestaudio/best"

_URL = re.compile(r"^https?://", re.IGNORECASE)


class URLInputError(InputAudioError):
    """A link that cannot be fetched: unreachable, unsupported, too large or too long."""


def is_url(source: object) -> bool:
    """Whether ``source`` is an http(s) link rather than a file name."""
    return isinstance(source, str) and bool(_URL.match(source))


class _TooLarge(Exception):
    """Raised from the progress hook to stop a download past the size cap."""


@contextmanager
def fetched_audio(url: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES,
                  max_seconds: float = MAX_DOWNLOAD_SECONDS) -> Iterator[Path]:
    """Download the audio behind ``url`` and yield the file; the folder is removed afterwards."""
    try:
        import yt_dlp
    except ImportError:
        raise URLInputError(f"{url}: reading links needs yt-dlp (pip install yt-dlp)") from None

    folder = Path(tempfile.mkdtemp(prefix="patchpilot-url-"))
    try:
        yield _download(yt_dlp, url, folder, max_bytes, max_seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _download(yt_dlp: Any, url: str, folder: Path, max_bytes: int, max_seconds: float) -> Path:
    too_long: list[float] = []

    def duration_filter(info: dict, *, incomplete: bool = False) -> str | None:
        duration = info.get("duration")
        if duration and duration > max_seconds:
            too_long.append(float(duration))
            return "too long"
        return None

    def size_guard(status: dict) -> None:
        seen = max(status.get("downloaded_bytes") or 0, status.get("total_bytes") or 0)
        if seen > max_bytes:
            raise _TooLarge()

    options: dict[str, Any] = {
        "format": _DECODABLE_FORMATS,
        "outtmpl": str(folder / "audio.%(ext)s"),
        "noplaylist": True,
        "playlist_items": "1",
        "match_filter": duration_filter,
        "progress_hooks": [size_guard],
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "retries": 1,
        "fragment_retries": 1,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _SilentLogger(),
        "cachedir": False,
    }
    if shutil.which("ffmpeg"):
        # Where ffmpeg exists, any stream a site offers becomes a file the decoders read.
        options["format"] = "bestaudio/best"
        options["postprocessors"] = [{"key": "FFmpegExtractAudio", "preferredcodec": "flac"}]
    too_large = f"{url}: larger than {_size(max_bytes)}; link to a shorter excerpt"
    try:
        with yt_dlp.YoutubeDL(options) as downloader:
            downloader.extract_info(url, download=True)
    except _TooLarge:
        raise URLInputError(too_large) from None
    except yt_dlp.utils.DownloadError as exc:
        if exc.exc_info and isinstance(exc.exc_info[1], _TooLarge):
            raise URLInputError(too_large) from None
        raise URLInputError(f"{url}: {_reason(str(exc))}") from None
    if too_long:
        raise URLInputError(f"{url}: {too_long[0] / 60:.0f} minutes long, more than the "
                            f"{max_seconds / 60:.0f} accepted; link to a shorter excerpt")
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
    if not files:
        raise URLInputError(f"{url}: yt-dlp found no audio to download")
    return max(files, key=lambda p: p.stat().st_size)


def _reason(message: str) -> str:
    """yt-dlp's error on one line, without its prefixes and the repeated cause."""
    text = " ".join(message.split())
    text = re.sub(r"^(ERROR:\s*)?(\[[^\]]+\]\s*)*", "", text)
    if "Unsupported URL" in text:
        return "not a page or file with audio that yt-dlp can read (unsupported URL)"
    text = re.sub(r"^[^\s:]+: (?=Unable to)", "", text)  # the generic extractor's "<file name>: "
    text = re.sub(r"\s*\(caused by .*\)$", "", text)
    return f"cannot download ({text[:197] + '...' if len(text) > 200 else text})"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.0f} MB" if n_bytes >= 2**20 else f"{n_bytes} bytes"


class _SilentLogger:
    """yt-dlp prints to stdout by default; stdout is for results only, errors come back raised."""

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        pass
