"""Input decoding: the decoder chain (soundfile, pedalboard, ffmpeg) and AAC/M4A errors."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import io
import re
import warnings

import numpy as np
import pytest
import soundfile
from conftest import wav_bytes

import patchpilot.audio.io as audio_io
from patchpilot.audio.io import (FFMPEG_SAMPLE_RATE_HZ, FULL_BAND_MAX_SECONDS, load_audio, load_clip, load_stereo,
                                 looks_like_aac, read_capped)
from patchpilot.errors import InputAudioError, PatchPilotWarning, UsageError

#: One silent AAC-LC stereo frame, the payload of an ADTS frame.
_SILENT_AAC_FRAME = bytes([0x21, 0x10, 0x04, 0x60, 0x8C, 0x1C])


def _adts(payload: bytes) -> bytes:
    """An ADTS header (MPEG-4 AAC-LC, 44.1 kHz, stereo, no CRC) in front of ``payload``."""
    length = 7 + len(payload)
    return bytes([0xFF, 0xF1, (1 << 6) | (4 << 2), (2 << 6) | (length >> 11) & 3, (length >> 3) & 0xFF,
                  ((length & 7) << 5) | 0x1F, 0xFC]) + payload


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _aac_files(folder: Path) -> list[Path]:
    """An ADTS .aac stream and an M4A container (its ftyp box) holding AAC frames."""
    frames = _adts(_SILENT_AAC_FRAME) * 40
    adts = folder / "tune.aac"
    adts.write_bytes(frames)
    m4a = folder / "tune.m4a"
    m4a.write_bytes(_box(b"ftyp", b"M4A \0\0\0\0M4A mp42isom") + _box(b"mdat", frames))
    return [adts, m4a]


@pytest.fixture
def no_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin-empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def fake_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``ffmpeg`` on the PATH that checks its arguments and prints a 440 Hz stereo tone
    as raw float32 (what the real one prints for the command the decoder runs), or fails
    like ffmpeg for files named ``bad*``."""
    folder = tmp_path / "bin-fake"
    folder.mkdir()
    script = folder / "ffmpeg"
    script.write_text(f"""#!{sys.executable}
import sys, numpy as np
args = sys.argv[1:]
source = args[args.index("-i") + 1]
assert source.startswith("file:"), source
source = source[len("file:"):]
if "bad" in source.rsplit("/", 1)[-1]:
    sys.stderr.write(source + ": Invalid data found when processing input\\n")
    sys.exit(1)
open(source, "rb").read()
assert args[-1] == "pipe:1" and args[args.index("-f") + 1] == "f32le", args
assert args[args.index("-ac") + 1] == "2" and args[args.index("-ar") + 1] == "{FFMPEG_SAMPLE_RATE_HZ}", args
t = np.arange(int(1.5 * {FFMPEG_SAMPLE_RATE_HZ})) / {FFMPEG_SAMPLE_RATE_HZ}
tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype("<f4")
sys.stdout.buffer.write(np.stack([tone, 0.5 * tone], axis=1).tobytes())
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def test_aac_is_recognised_by_name_or_first_bytes(tmp_path: Path) -> None:
    adts, m4a = _aac_files(tmp_path)
    assert looks_like_aac(adts.read_bytes()[:16], "<stdin>")
    assert looks_like_aac(m4a.read_bytes()[:16], "<stdin>")
    assert looks_like_aac(b"", "Song.M4A")
    mp3_frame_header = bytes([0xFF, 0xFB, 0x90, 0x64])  # MPEG-1 layer III
    assert not looks_like_aac(mp3_frame_header, "<stdin>")
    assert not looks_like_aac(b"RIFF\0\0\0\0WAVEfmt ", "x.wav")


@pytest.mark.usefixtures("no_ffmpeg")
def test_aac_without_ffmpeg_names_the_missing_decoder(tmp_path: Path) -> None:
    for path in _aac_files(tmp_path):
        for source, name in ((path, None), (path.read_bytes(), "<stdin>")):
            with pytest.raises(InputAudioError) as caught:
                load_audio(source, name=name)
            message = str(caught.value)
            assert "no decoder for AAC/M4A" in message and "ffmpeg is not installed" in message, message
            assert "apt install ffmpeg" in message and "\n" not in message
            assert caught.value.exit_code == 2


@pytest.mark.usefixtures("no_ffmpeg")
def test_other_undecodable_files_say_what_is_read_here_in_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"  # a text file renamed: no decoder's message, no path
    text.write_text("this is not audio\n" * 50)
    with pytest.raises(InputAudioError) as caught:
        load_audio(text, name="notes.wav")
    assert str(caught.value) == ("notes.wav: not a readable audio file (it is not WAV, FLAC, OGG, AIFF or MP3 that "
                                 "the decoders here can read; ffmpeg, which reads more formats, is not installed)")


def test_ffmpeg_decodes_what_the_others_cannot(tmp_path: Path, fake_ffmpeg: Path) -> None:
    adts, m4a = _aac_files(tmp_path)
    audio = load_audio(m4a, sample_rate=22050)
    assert audio.sample_rate == 22050 and audio.duration == pytest.approx(1.5, abs=0.01)
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert np.argmax(spectrum) * 22050 / audio.samples.size == pytest.approx(440, abs=2)
    # bytes (stdin) go through a temporary file: ffmpeg cannot seek in a pipe
    stereo = load_stereo(adts.read_bytes(), FFMPEG_SAMPLE_RATE_HZ, name="<stdin>")
    assert stereo.shape == (2, int(1.5 * FFMPEG_SAMPLE_RATE_HZ))
    assert np.allclose(stereo[1], 0.5 * stereo[0], atol=1e-6)


def test_files_the_others_read_never_reach_ffmpeg(tmp_path: Path, fake_ffmpeg: Path) -> None:
    wav = tmp_path / "bad-but-fine.wav"  # the fake ffmpeg would refuse it
    soundfile.write(wav, np.zeros(4410, np.float32) + 0.1, 44100)
    assert load_audio(wav, sample_rate=44100).samples.size == 4410


def test_ffmpeg_failure_is_reported_with_its_reason(tmp_path: Path, fake_ffmpeg: Path) -> None:
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"\0\0\0\x18ftypM4A " + bytes(100))
    with pytest.raises(InputAudioError, match=r"not a readable audio file .*ffmpeg could not read it either: "
                                              r"the file: Invalid data found"):
        load_audio(bad)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
def test_real_ffmpeg_reads_an_m4a(tmp_path: Path) -> None:
    m4a = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-c:a", "aac", "-b:a", "128k", str(m4a)], check=True)
    audio = load_audio(m4a, sample_rate=22050)
    assert audio.duration == pytest.approx(2.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert np.argmax(spectrum) * 22050 / audio.samples.size == pytest.approx(440, abs=2)


def _tone(seconds: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_inputs_past_the_byte_cap_stop_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_MAX_INPUT_BYTES", "10000")

    class Endless(io.RawIOBase):
        """A stdin that never ends: the reader must stop on its own."""
        served = 0

        def readinto(self, buffer) -> int:  # type: ignore[override]
            buffer[:] = bytes(len(buffer))
            self.served += len(buffer)
            return len(buffer)

    endless = Endless()
    with pytest.raises(InputAudioError, match="larger than 10 kB, the input size cap .*PATCHPILOT_MAX_INPUT_BYTES"):
        read_capped(endless)
    assert endless.served <= 10001
    assert read_capped(io.BytesIO(bytes(10000))) == bytes(10000)
    big = tmp_path / "big.wav"
    soundfile.write(big, _tone(2.0), 8000)  # 32 kB
    for source in (big, big.read_bytes()):
        with pytest.raises(InputAudioError, match="larger than 10 kB"):
            load_audio(source, name="big.wav")
    monkeypatch.setenv("PATCHPILOT_MAX_INPUT_BYTES", "lots")
    with pytest.raises(UsageError, match="PATCHPILOT_MAX_INPUT_BYTES='lots'"):
        read_capped(io.BytesIO(b"x"))


def test_a_named_pipe_is_read_through_the_cap(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    soundfile.write(wav, _tone(1.0), 8000)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'wb').write(open({str(wav)!r}, 'rb').read())"])
    try:
        assert load_audio(fifo, sample_rate=8000).samples.size == 8000
    finally:
        writer.wait(10)


def test_long_input_is_trimmed_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_io, "MAX_INPUT_SECONDS", 1.5)
    wav = tmp_path / "long.wav"
    soundfile.write(wav, _tone(3.0), 8000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = load_audio(wav, sample_rate=8000)
        stereo = load_stereo(wav, 8000, warn_trimmed=False)  # the caller warned already
    assert audio.duration == 1.5 and stereo.shape == (2, 12000)
    assert [str(w.message) for w in caught if w.category is PatchPilotWarning] == [
        f"{wav} is longer than 0.025 minutes: only the first 0.025 minutes are used"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_audio(wav.read_bytes()[: 44 + 2 * 12000], sample_rate=8000).duration == 1.5  # exactly the cap
    # many channels: the cap on decoded samples cuts sooner (6000 samples / 4 channels = 0.1875 s)
    monkeypatch.setattr(audio_io, "MAX_DECODED_SAMPLES", 6000)
    soundfile.write(wav, np.stack([_tone(3.0)] * 4, axis=1), 8000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_audio(wav, sample_rate=8000).duration == 0.1875
    assert "only the first 0.00313 minutes are used" in str(caught[0].message)


@pytest.mark.parametrize(("header", "data", "message"), [
    ({"rate": 1}, bytes(2000), "a sample rate of 1 Hz"),
    ({"rate": 10_000_000}, bytes(2000), "a sample rate of 1e+07 Hz"),
    ({"channels": 0}, bytes(2000), "not a readable audio file"),
    ({"channels": 200}, bytes(4000), "200 channels"),
    ({"channels": 65535}, bytes(2000 * 2), "channels"),
    ({"rate": 0}, bytes(2000), "not a readable audio file"),
    ({}, b"", "no audio frames"),
    ({"fmt": 3, "bits": 32}, np.full(500, np.nan, np.float32).tobytes(), "NaN or infinite"),
    ({"fmt": 3, "bits": 32}, np.full(500, np.inf, np.float32).tobytes(), "NaN or infinite"),
    ({"fmt": 3, "bits": 32}, np.full(500, 3e38, np.float32).tobytes(), "over 1e+06 times full scale"),
    ({"fmt": 3, "bits": 64}, np.full(500, 1e300).tobytes(), "NaN or infinite"),
])
def test_absurd_audio_is_one_clear_error(header: dict, data: bytes, message: str) -> None:
    with pytest.raises(InputAudioError, match=re.escape(message)) as caught:
        load_audio(wav_bytes(data, **header), name="odd.wav")
    text = str(caught.value)
    assert text.startswith("odd.wav: ") and "\n" not in text and "BytesIO" not in text


def test_a_clip_keeps_a_full_band_copy_only_where_asked_and_the_input_has_the_band(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = lambda rate, seconds: (0.1 * rng.standard_normal(int(rate * seconds))).astype(np.float32)  # noqa: E731
    # a 16 kHz recording written at 44.1 kHz (as ffmpeg decodes every file): nothing above 8 kHz
    low = audio_io.resample(noise(16000, 1.0), 16000, 44100)
    for label, samples, rate, kept in [("48k", noise(48000, 1.0), 48000, True), ("44k", noise(44100, 1.0), 44100, True),
                                       ("22k", noise(22050, 1.0), 22050, False), ("16k-in-44k", low, 44100, False),
                                       ("long", noise(44100, FULL_BAND_MAX_SECONDS + 1), 44100, False)]:
        path = tmp_path / f"{label}.wav"
        soundfile.write(path, samples, rate, subtype="FLOAT")
        audio, full = load_clip(path, full_band=True)
        assert np.array_equal(audio.samples, load_audio(path).samples)  # the analysis copy is unchanged
        assert load_clip(path)[1] is None  # only where asked
        if kept:
            assert full is not None and full.sample_rate == 44100
            assert full.samples.size == pytest.approx(samples.size * 44100 / rate, abs=2)
        else:
            assert full is None, label
