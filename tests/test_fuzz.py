"""Fuzzing: mutated audio through ``patchpilot match`` and mutated preset files through
``build-index`` and :func:`read_preset_files`, each in a child process so that a crash (a
signal such as a segfault) shows as one instead of ending the test run.

The corpora are generated from fixed seeds in ``tmp_path``: the same files on every run.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import wav_bytes

from patchpilot.synths import get_engine

pytestmark = pytest.mark.slow

AUDIO_SEED = 20261129
PRESET_SEED = 1129
#: Inputs per ``match`` call: one process start for many files (match goes on after a bad one).
BATCH = 100

# ---- audio ----------------------------------------------------------------------------------
_RATE = 22050


def _pluck(rng: np.random.Generator, seconds: float = 0.15, channels: int = 1) -> np.ndarray:
    """A short decaying square wave at a random pitch: ``(frames, channels)`` float32."""
    t = np.arange(int(seconds * _RATE)) / _RATE
    tone = 0.5 * np.sign(np.sin(2 * np.pi * rng.uniform(80, 1000) * t)) * np.exp(-t / 0.05)
    return np.repeat(tone[:, None], channels, axis=1).astype(np.float32)


def _encoded(samples: np.ndarray, rate: int = _RATE, fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _base(rng: np.random.Generator) -> bytes:
    return _encoded(_pluck(rng, channels=int(rng.integers(1, 3))))


def _flip(data: bytes, rng: np.random.Generator, low: int, high: int, count: int) -> bytes:
    mutable = bytearray(data)
    for _ in range(count):
        if len(mutable) > low:
            mutable[int(rng.integers(low, min(high, len(mutable))))] = int(rng.integers(0, 256))
    return bytes(mutable)


def _header_flip(rng: np.random.Generator) -> bytes:
    return _flip(_base(rng), rng, 0, 64, int(rng.integers(1, 4)))


def _truncated(rng: np.random.Generator) -> bytes:
    data = _encoded(_pluck(rng), fmt=str(rng.choice(["WAV", "FLAC", "OGG"])), subtype=None)
    # mostly inside or just past the header, where decoders are most fragile
    cut = int(rng.integers(0, 200)) if rng.random() < 0.75 else int(rng.integers(0, len(data)))
    return data[:cut]


def _non_finite(rng: np.random.Generator) -> bytes:
    samples = _pluck(rng)[:, 0]
    spots = rng.integers(0, samples.size, int(rng.integers(1, 50)))
    samples[spots] = rng.choice([np.nan, np.inf, -np.inf, 3e38], spots.size)
    return wav_bytes(samples.tobytes(), rate=_RATE, bits=32, fmt=3)


def _absurd_header(rng: np.random.Generator) -> bytes:
    rate = int(rng.choice([0, 1, 100, 3999, 768_001, 10_000_000, 2**31, 2**32 - 1, 22050]))
    channels = int(rng.choice([0, 1, 2, 65, 1000, 65535]))
    bits = int(rng.choice([0, 8, 16, 24, 32, 64, 7]))
    fmt = int(rng.choice([1, 3, 0, 2, 0xFFFE, 0x1234]))
    return wav_bytes(rng.integers(0, 256, int(rng.integers(0, 4000)), dtype=np.uint8).tobytes(),
                     rate=rate, channels=channels, bits=bits, fmt=fmt)


def _garbage(rng: np.random.Generator) -> bytes:
    body = rng.integers(0, 256, int(rng.integers(0, 5000)), dtype=np.uint8).tobytes()
    magic = [b"", b"RIFF\x00\x10\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3\x03\x00", b"FORM\x00\x00\x10\x00AIFF",
             b"\xff\xfb\x90\x64", b"\x00\x00\x00\x18ftypM4A "]
    return magic[int(rng.integers(0, len(magic)))] + body


def _odd_subtype(rng: np.random.Generator) -> bytes:
    subtype = str(rng.choice(["PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM",
                              "MS_ADPCM", "GSM610"]))
    compressed = subtype in ("IMA_ADPCM", "MS_ADPCM", "GSM610")  # libsndfile: mono or stereo, GSM mono at 8 kHz
    rate = 8000 if subtype == "GSM610" else int(rng.choice([8000, 11025, 44100, 96000, 192000]))
    channels = int(rng.integers(1, 2 if subtype == "GSM610" else 3 if compressed else 7))
    t = np.arange(int(0.15 * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * rng.uniform(100, 900) * t) * np.exp(-t / 0.05)).astype(np.float32)
    return _encoded(np.repeat(tone[:, None], channels, axis=1), rate, subtype=subtype)


def _body_flip(rng: np.random.Generator) -> bytes:
    data = _base(rng)
    return _flip(data, rng, 44, len(data), int(rng.integers(1, 200)))


def _extreme(rng: np.random.Generator) -> bytes:
    level = float(rng.choice([1.0, 1e-7, 1e5]))
    samples = np.full(int(0.15 * _RATE), level, np.float32) * np.sign(rng.normal(size=int(0.15 * _RATE)))
    return _encoded(samples.astype(np.float32), subtype="FLOAT")


#: (mutation, how many files); 500 in all.
AUDIO_MUTATIONS: tuple[tuple[Callable[[np.random.Generator], bytes], int], ...] = (
    (_header_flip, 110), (_truncated, 110), (_non_finite, 60), (_absurd_header, 60), (_garbage, 100),
    (_odd_subtype, 30), (_body_flip, 20), (_extreme, 10),
)


def _audio_corpus(folder: Path) -> list[Path]:
    rng = np.random.default_rng(AUDIO_SEED)
    paths = []
    for mutate, count in AUDIO_MUTATIONS:
        for number in range(count):
            path = folder / f"{mutate.__name__.strip('_')}-{number:03d}.wav"
            path.write_bytes(mutate(rng))
            paths.append(path)
    return paths


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "patchpilot", *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


def _no_crash(done: subprocess.CompletedProcess) -> None:
    assert done.returncode >= 0, f"killed by signal {-done.returncode}: {done.stderr[-2000:]}"
    # "internal error:" starts the CLI's line for a bug (libsndfile says "Unspecified internal error")
    bugs = [line for line in done.stderr.splitlines() if line.startswith("internal error:")]
    assert "Traceback" not in done.stderr and not bugs, bugs or done.stderr[-3000:]


def test_mutated_audio_never_crashes_match(tiny_index: Path, tmp_path: Path) -> None:
    paths = _audio_corpus(tmp_path)
    assert len(paths) >= 500
    batches = [paths[i : i + BATCH] for i in range(0, len(paths), BATCH)]
    options = ("--index", str(tiny_index), "--candidates", "1", "--top-k", "1", "--workers", "1", "--json")
    with ThreadPoolExecutor(2) as pool:  # two children at a time: two cores
        results = list(pool.map(lambda batch: _cli("match", *map(str, batch), *options), batches))
    matched = errors = 0
    for batch, done in zip(batches, results):
        _no_crash(done)
        assert done.returncode in (0, 2), done.stderr[-3000:]
        error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        named = [next((p for p in batch if f"error: {p}:" in line), None) for line in error_lines]
        assert None not in named, [line for line, p in zip(error_lines, named) if p is None]
        assert len(set(named)) == len(named), "an input with two error lines"
        documents = json.loads(done.stdout) if done.stdout.strip() else []
        succeeded = {Path(d["input"]) for d in documents}
        assert succeeded.isdisjoint(named) and succeeded | set(named) == set(batch)
        matched += len(succeeded)
        errors += len(named)
    assert matched >= 30 and errors >= 300, (matched, errors)  # the corpus exercises both paths


# ---- presets --------------------------------------------------------------------------------
def _vital_bases() -> list[dict]:
    engine = get_engine("vital")
    presets = [
        engine.make_preset("Base A", {"osc_1_wavetable": "Vowels", "filter_1_on": True, "lfo_1_shape": "Sine",
                                      "mod_lfo_1_to_filter_1_cutoff": 0.3}),
        engine.make_preset("Base B", {"osc_1_wavetable": "Square", "chorus_on": True, "reverb_on": True,
                                      "mod_env_3_to_voice_transpose": 0.1}),
    ]
    return [json.loads(engine.to_json(p)) for p in presets]


def _random_value(rng: np.random.Generator) -> object:
    choices = ["text", [1, 2], {"a": 1}, None, True, float("nan"), float("inf"), 1e308, -1e308, 10**30, -1, 0, 1e9]
    return choices[int(rng.integers(0, len(choices)))]


def _random_name(rng: np.random.Generator) -> str:
    names = ["", "lfo_1", "lfo_9", "env_7", "macro_control_5", "filter_1_cutoff", "osc_4_level", "nowhere",
             "random_9", "velocity", "\u00e9\u00e8", "lfo_1 ", "LFO_1"]
    return names[int(rng.integers(0, len(names)))]


def _nested_paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON value (keys and list indices), for picking one at random."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _nested_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:4]):
            paths += _nested_paths(item, (*prefix, index))
    return paths


def _mutated_vital(doc: dict, rng: np.random.Generator) -> bytes:
    doc = copy.deepcopy(doc)
    settings = doc["settings"]
    kind = int(rng.integers(0, 6))
    if kind == 0:  # deleted keys, anywhere
        for _ in range(int(rng.integers(1, 4))):
            paths = [p for p in _nested_paths(doc) if p]
            *parents, last = paths[int(rng.integers(0, len(paths)))]
            holder = doc
            for key in parents:
                holder = holder[key]
            del holder[last]
    elif kind == 1:  # a value of the wrong type, anywhere
        paths = _nested_paths(doc)
        *parents, last = paths[int(rng.integers(0, len(paths)))]
        holder = doc
        for key in parents:
            holder = holder[key]
        holder[last] = _random_value(rng)
    elif kind == 2:  # modulation names
        for _ in range(int(rng.integers(1, 4))):
            slot = settings["modulations"][int(rng.integers(0, len(settings["modulations"])))]
            slot[str(rng.choice(["source", "destination"]))] = _random_name(rng)
    elif kind == 3:  # too many or too few list entries
        key = str(rng.choice(["lfos", "modulations", "wavetables"]))
        settings[key] = settings[key] * int(rng.integers(0, 30))
    elif kind == 4:  # wavetable internals
        component = settings["wavetables"][int(rng.integers(0, 3))]["groups"][0]["components"][0]
        component[str(rng.choice(["type", "interpolation", "keyframes"]))] = _random_value(rng)
    text = json.dumps(doc).encode()
    if kind == 5:  # truncated or with flipped bytes (maybe no longer UTF-8)
        if rng.random() < 0.5:
            return text[: int(rng.integers(0, len(text)))]
        return _flip(text, rng, 0, len(text), int(rng.integers(1, 10)))
    return text


def _mutated_syx(voice: bytes, bank: bytes, rng: np.random.Generator) -> bytes:
    data = voice if rng.random() < 0.6 else bank
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return _flip(data, rng, 0, len(data), int(rng.integers(1, 4)))
    if kind == 1:
        return data[: int(rng.integers(0, len(data)))]
    if kind == 2:
        return data + rng.integers(0, 256, int(rng.integers(1, 50)), dtype=np.uint8).tobytes()
    return data[:6] + rng.integers(0, 128, len(data) - 6, dtype=np.uint8).tobytes()


def _preset_corpus(folder: Path, bank_path: Path) -> tuple[list[Path], list[Path]]:
    """Mutated files in ``folder``, and the undamaged files mixed in among them; the undamaged
    32-voice bank the mutated banks come from is written to ``bank_path``."""
    rng = np.random.default_rng(PRESET_SEED)
    folder.mkdir()
    dexed = get_engine("dexed")
    voice = dexed.preset_bytes(dexed.make_preset("FUZZ VOICE", {"algorithm": "5", "op2_output_level": 70}))
    import dexed as dexed_py

    dexed_py.Patch.save_to_bank(str(bank_path), [dexed_py.Patch(f"V{i:02d}") for i in range(32)])
    bank = bank_path.read_bytes()
    bases = _vital_bases()
    good = [bank_path]
    for number, doc in enumerate(bases):
        good.append(folder / f"good-{number}.vital")
        good[-1].write_text(json.dumps(doc))
    good.append(folder / "good-voice.syx")
    good[-1].write_bytes(voice)
    mutated = []
    for number in range(160):
        mutated.append(folder / f"mutated-{number:03d}.vital")
        mutated[-1].write_bytes(_mutated_vital(bases[number % len(bases)], rng))
    for number in range(80):
        mutated.append(folder / f"mutated-{number:03d}.syx")
        mutated[-1].write_bytes(_mutated_syx(voice, bank, rng))
    return mutated, good


_READ_AND_PLAY = """
import json, sys
from pathlib import Path
import numpy as np
from patchpilot.library.user_files import read_preset_files
from patchpilot.synths import get_engine
items, skipped = read_preset_files(map(Path, sys.argv[1:]), ("vital", "dexed"))
for path, presets in items:
    for preset in presets[:2]:
        audio = get_engine(preset.synth).render(preset, 60, 100, 0.1, 0.15)
        assert np.isfinite(audio).all(), path
print(json.dumps({"read": [str(p) for p, _ in items], "skipped": {str(p): reason for p, reason in skipped}}))
"""


def test_mutated_presets_never_crash(tmp_path: Path) -> None:
    folder, bank = tmp_path / "presets", tmp_path / "bank.syx"
    mutated, good = _preset_corpus(folder, bank)
    assert len(mutated) >= 200
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with ThreadPoolExecutor(2) as pool:
        # The bank's 32 voices are left out of the build, which renders every preset it reads.
        reading = pool.submit(subprocess.run, [sys.executable, "-c", _READ_AND_PLAY, str(folder), str(bank)],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        building = pool.submit(_cli, "build-index", "--presets", str(folder), "--no-factory",
                               "--index", str(tmp_path / "index"), "--workers", "1")
        read, built = reading.result(), building.result()
    _no_crash(read)
    assert read.returncode == 0, read.stderr[-3000:]
    report = json.loads(read.stdout)
    assert set(report["read"]) | set(report["skipped"]) == {str(p) for p in mutated + good}
    assert set(report["read"]).isdisjoint(report["skipped"])
    assert {str(p) for p in good} <= set(report["read"])
    assert len(report["skipped"]) >= 150  # most mutations break a file
    assert all(reason and "\n" not in reason for reason in report["skipped"].values())
    # build-index reads the same folder: whether it skips bad files or stops at the first, no crash.
    _no_crash(built)
    assert built.returncode in (0, 1, 2, 3, 4, 5), built.stderr[-3000:]
