"""Shared fixtures: tiny factory banks, a tiny index built by the real builder, test audio.

Everything is generated locally (renders of our own presets); nothing is downloaded.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

from patchpilot.audio.io import write_wav
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, EXPORT_SAMPLE_RATE_HZ
from patchpilot.index.builder import BuildPlan, IndexBuilder
from patchpilot.index.index import PresetIndex
from patchpilot.synths import get_engine

REPO = Path(__file__).resolve().parents[1]

#: Four clearly different sounds per synth, in the bank format.
VITAL_BANK = """
category = "pluck"

[[preset]]
name = "Test Pluck"
tags = ["bright", "plucky"]
[preset.params]
osc_1_wavetable = "Saw"
filter_1_on = true
filter_1_cutoff = 900
env_1_decay = 0.35
env_1_sustain = 0.0
env_1_release = 0.2
mod_env_2_to_filter_1_cutoff = 0.4
env_2_decay = 0.25
env_2_sustain = 0.0

[[preset]]
name = "Test Pad"
category = "pad"
tags = ["soft", "wide"]
[preset.params]
osc_1_wavetable = "Sine to Saw"
osc_1_wave_frame = 60
osc_1_unison_voices = 4
env_1_attack = 0.4
env_1_release = 0.8
chorus_on = true

[[preset]]
name = "Test Square Lead"
category = "lead"
tags = ["hollow", "buzzy"]
[preset.params]
osc_1_wavetable = "Square"
distortion_on = true
distortion_drive = 12

[[preset]]
name = "Test Sine Bass"
category = "bass"
tags = ["sub", "dark"]
[preset.params]
osc_1_wavetable = "Sine"
osc_1_transpose = -12
env_1_decay = 0.6
env_1_sustain = 0.5
"""

DEXED_BANK = """
category = "keys"

[[preset]]
name = "Test Tine"
tags = ["glassy", "percussive"]
[preset.params]
algorithm = "5"
op1_eg_rate_2 = 40
op1_eg_level_3 = 0
op1_eg_rate_3 = 30
op2_output_level = 75
op2_coarse = 14
op2_eg_rate_2 = 60
op2_eg_level_3 = 0

[[preset]]
name = "Test Organ"
category = "organ"
tags = ["sustained", "clean"]
[preset.params]
algorithm = "32"
op2_output_level = 80
op2_coarse = 2
op3_output_level = 70
op3_coarse = 4

[[preset]]
name = "Test Brass"
category = "brass"
tags = ["bright", "fm"]
[preset.params]
algorithm = "22"
feedback = 6
op2_output_level = 88
op2_eg_rate_1 = 40

[[preset]]
name = "Test Bell"
category = "bell"
tags = ["metallic", "bright"]
[preset.params]
algorithm = "5"
op1_eg_rate_2 = 25
op1_eg_level_2 = 0
op1_eg_level_3 = 0
op2_output_level = 80
op2_coarse = 3
op2_fine = 50
op2_eg_rate_2 = 25
op2_eg_level_3 = 0
"""

TEST_NOTES = (48, 60, 72)


@pytest.fixture(scope="session")
def tiny_banks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("banks")
    (root / "vital").mkdir()
    (root / "dexed").mkdir()
    (root / "vital" / "test.toml").write_text(VITAL_BANK)
    (root / "dexed" / "test.toml").write_text(DEXED_BANK)
    return root


@pytest.fixture(scope="session")
def tiny_index(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index: 4 designed presets per synth plus one variant each, 3 notes."""
    out = tmp_path_factory.mktemp("indexes") / "tiny"
    plan = BuildPlan(output=out, factory_root=tiny_banks, size_per_synth=8, notes=TEST_NOTES)
    IndexBuilder(plan, workers=2).build()
    return out


def wav_bytes(data: bytes, *, rate: int = 44100, channels: int = 1, bits: int = 16, fmt: int = 1) -> bytes:
    """A WAV file's bytes with whatever header values are given, however absurd (fmt 1: PCM,
    3: float); sizes that do not fit the header's fields wrap, as a corrupt file's would."""
    block = channels * bits // 8
    fields = struct.pack("<IHHIIHH", 16, fmt, channels & 0xFFFF, rate & 0xFFFFFFFF, (rate * block) & 0xFFFFFFFF,
                         block & 0xFFFF, bits)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + fields
            + b"data" + struct.pack("<I", len(data)) + data)


def render_dry_and_wet(index: Path, folder: Path, fx_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """``patchpilot render`` of the tiny index's Test Bell, without and with ``--fx fx_file``
    (both must succeed), as read back from the WAVs it wrote."""
    import soundfile
    from typer.testing import CliRunner

    from patchpilot.cli import app

    runner = CliRunner()
    args = ["render", "dexed:test-bell", "--index", str(index), "--note", "60", "--seconds", "0.5", "--tail", "1"]
    dry = runner.invoke(app, [*args, "-o", str(folder / "dry.wav")])
    wet = runner.invoke(app, [*args, "-o", str(folder / "wet.wav"), "--fx", str(fx_file)])
    assert dry.exit_code == 0 and wet.exit_code == 0, (dry.stderr, wet.stderr)
    return (soundfile.read(folder / "dry.wav", dtype="float32")[0],
            soundfile.read(folder / "wet.wav", dtype="float32")[0])


def render_note(synth: str, preset_name: str, banks: Path, note: int, *, velocity: int = 100,
                seconds: float = 0.9, tail: float = 0.6, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> np.ndarray:
    from patchpilot.library.bank import load_factory_bank

    preset = next(p for p in load_factory_bank(synth, banks) if p.name == preset_name)
    return get_engine(synth).render(preset, note, velocity, seconds, seconds + tail, sample_rate=sample_rate)


@pytest.fixture(scope="session")
def pluck_wav(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Vital pluck at note 53 (5 semitones from the nearest indexed note), 44.1 kHz."""
    audio = render_note("vital", "Test Pluck", tiny_banks, 53, sample_rate=EXPORT_SAMPLE_RATE_HZ)
    path = tmp_path_factory.mktemp("audio") / "pluck.wav"
    write_wav(path, audio, EXPORT_SAMPLE_RATE_HZ)
    return path


@pytest.fixture(scope="session")
def organ_wav(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DX7 organ at note 66 (6 semitones from the indexed notes), 44.1 kHz."""
    audio = render_note("dexed", "Test Organ", tiny_banks, 66, velocity=80, seconds=1.2, sample_rate=EXPORT_SAMPLE_RATE_HZ)
    path = tmp_path_factory.mktemp("audio") / "organ.wav"
    write_wav(path, audio, EXPORT_SAMPLE_RATE_HZ)
    return path


# ---- a short "song": synth notes at several pitches, chords and drum hits -----------------
#: (what, MIDI notes) in order of time; a chord is several notes at once, drums have none.
TRACK_EVENTS = (("note", (57,)), ("kick", ()), ("note", (60,)), ("snare", ()), ("chord", (60, 64, 67)),
                ("note", (64,)), ("kick", ()), ("note", (67,)), ("note", (57,)), ("chord", (62, 65, 69)),
                ("note", (72,)), ("snare", ()), ("kick", ()), ("note", (62,)))
TRACK_GAP_SECONDS = 0.15


def drum_hit(kind: str, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A kick (a sine sweeping down from 155 to 45 Hz) or a snare (a noise burst)."""
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    if kind == "kick":
        hz = 45.0 + 110.0 * np.exp(-t / 0.04)
        return (0.9 * np.sin(2 * np.pi * np.cumsum(hz) / sample_rate) * np.exp(-t / 0.12)).astype(np.float32)
    noise = np.random.default_rng(seed).normal(size=t.size)
    return (0.5 * noise * np.exp(-t / 0.07)).astype(np.float32)


def make_track(banks: Path, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The test song (mono) and its events as (what, start, end) in seconds."""
    from patchpilot.library.bank import load_factory_bank

    lead = next(p for p in load_factory_bank("vital", banks) if p.name == "Test Square Lead")
    engine = get_engine("vital")
    parts: list[np.ndarray] = []
    events: list[tuple[str, float, float]] = []
    position = 0
    for i, (kind, notes) in enumerate(TRACK_EVENTS):
        if notes:
            sound = sum(engine.render(lead, n, 100, 0.7, 0.9, sample_rate=sample_rate) for n in notes)
            sound = (0.4 * sound / np.abs(sound).max()).astype(np.float32)
        else:
            sound = drum_hit(kind, sample_rate, seed=i)
        parts += [sound, np.zeros(int(TRACK_GAP_SECONDS * sample_rate), np.float32)]
        events.append((kind, position / sample_rate, (position + sound.size) / sample_rate))
        position += sound.size + parts[-1].size
    track = np.concatenate(parts)
    track += np.random.default_rng(1).normal(size=track.size).astype(np.float32) * 1e-4
    return track, events


@pytest.fixture(scope="session")
def track_wav(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test song as a 44.1 kHz stereo WAV, longer than TRACK_MIN_SECONDS."""
    track, _ = make_track(tiny_banks, EXPORT_SAMPLE_RATE_HZ)
    path = tmp_path_factory.mktemp("audio") / "song.wav"
    write_wav(path, np.stack([track, track]).T, EXPORT_SAMPLE_RATE_HZ)
    return path


def index_files(index: Path) -> Path:
    """The folder holding an index's files: its current version (``index/layout.py``)."""
    from patchpilot.index.layout import resolve_index

    return resolve_index(index)


def copy_index(source: Path, target: Path) -> Path:
    """Copy an index folder (every version) and return the copy's current version folder."""
    import shutil

    shutil.copytree(source, target)
    return index_files(target)


def index_contents(path: Path) -> dict[str, np.ndarray]:
    """preset id -> its vectors at every indexed note."""
    with PresetIndex.open(path) as index:
        ids = index.store.preset_ids(index._vectors["rows"].tolist())
        return {ids[int(r)]: v for r, v in zip(index._vectors["rows"], index._vectors["vectors"])}


def assert_same_index(path: Path, reference: dict[str, np.ndarray]) -> None:
    got = index_contents(path)
    assert sorted(got) == sorted(reference)
    # the vectors are stored as fp16 (a step of 2.4e-4 at 0.5); float32 sums in another order
    # (memory alignment, thread timing) move a value by up to a few 1e-5 before rounding
    for preset_id, vectors in reference.items():
        np.testing.assert_allclose(got[preset_id], vectors, atol=5e-4, err_msg=preset_id)


def assert_same_corpus(made: Path, expected: Path) -> None:
    """Two corpora hold the same patches, rendered alike (features within fp16 storage)."""
    from patchpilot.corpus import Corpus

    first, second = Corpus.open(made), Corpus.open(expected)
    assert first.synths == second.synths and first.manifest["counts"] == second.manifest["counts"]
    for synth in first.synths:
        a, b = first.load(synth), second.load(synth)
        for name in ("numbers", "params", "kind", "parent", "status", "failure", "audible"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert np.allclose(a.level_db, b.level_db, atol=1e-3)
        assert np.allclose(a.features.astype(np.float32), b.features.astype(np.float32), rtol=2e-3, atol=2e-3)
