"""The CLAP embedder: the offline error from the adapter, and the glue around the model
tested with a small stand-in of CLAP's interface (laion-clap cannot run here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from patchpilot.cli import app
from patchpilot.embed import clap as clap_module
from patchpilot.embed.clap import (
    AUDIO_BATCH,
    CLAP_SAMPLE_RATE_HZ,
    TEXT_BATCH,
    ClapEmbedder,
    ClapUnavailableError,
    load_clap_model,
)
from patchpilot.index.builder import BuildPlan, IndexBuilder
from patchpilot.index.index import PresetIndex
from patchpilot.matching.text import TextMatcher

from conftest import TEST_NOTES

#: Edges of the stand-in's eight log-spaced bands (Hz at 48 kHz).
BAND_EDGES_HZ = np.geomspace(50.0, 20000.0, 9)
#: Words of the stand-in's text encoder and the band each one points at.
WORD_BANDS = {"low": 0, "deep": 0, "sub": 1, "mid": 3, "bright": 5, "high": 6, "air": 7}


class TinyClap:
    """CLAP's interface with a model anyone can reason about: an audio clip embeds as its
    energy in eight log-spaced bands (read at 48 kHz), a text as the bands its words name.
    Outputs are deliberately not unit length, and every call is recorded."""

    def __init__(self) -> None:
        self.audio_calls: list[tuple[int, int]] = []
        self.text_calls: list[int] = []

    def get_audio_embedding_from_data(self, x: np.ndarray, use_tensor: bool = False) -> np.ndarray:
        assert not use_tensor and x.ndim == 2 and x.dtype == np.float32
        self.audio_calls.append(x.shape)
        power = np.abs(np.fft.rfft(x, axis=1)) ** 2
        freqs = np.fft.rfftfreq(x.shape[1], 1.0 / CLAP_SAMPLE_RATE_HZ)
        bands = [power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(BAND_EDGES_HZ, BAND_EDGES_HZ[1:])]
        return 7.0 * np.sqrt(np.stack(bands, axis=1))

    def get_text_embedding(self, x: list[str], use_tensor: bool = False) -> np.ndarray:
        assert not use_tensor and isinstance(x, list)
        self.text_calls.append(len(x))
        out = np.full((len(x), len(BAND_EDGES_HZ) - 1), 1e-3)
        for row, text in enumerate(x):
            for word in text.lower().split():
                if word in WORD_BANDS:
                    out[row, WORD_BANDS[word]] += 3.0
        return out


def _sine(hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_audio_is_resampled_to_48k_quantised_and_unit_length() -> None:
    model = TinyClap()
    embedder = ClapEmbedder(model, input_rate=22050)
    vectors = embedder.features([_sine(1500.0, 0.5, 22050)])
    assert model.audio_calls == [(1, int(round(0.5 * CLAP_SAMPLE_RATE_HZ)))]
    assert vectors.shape == (1, 8) and np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    # read at 48 kHz, the tone is at 1.5 kHz (unresampled it would read as 3.3 kHz, a band higher)
    assert int(np.argmax(vectors[0])) == int(np.searchsorted(BAND_EDGES_HZ, 1500.0)) - 1
    assert int(np.searchsorted(BAND_EDGES_HZ, 1500.0 * CLAP_SAMPLE_RATE_HZ / 22050)) - 1 != int(np.argmax(vectors[0]))
    clip = clap_module.to_clap_input(np.array([0.5, -2.0], np.float32), CLAP_SAMPLE_RATE_HZ)
    assert clip.tolist() == pytest.approx([round(0.5 * 32767) / 32767, -1.0])


def test_audio_and_text_are_batched() -> None:
    model = TinyClap()
    embedder = ClapEmbedder(model, input_rate=CLAP_SAMPLE_RATE_HZ)
    clips = [_sine(200.0 * (i + 1), 0.2, CLAP_SAMPLE_RATE_HZ) for i in range(AUDIO_BATCH + 3)]
    clips.append(_sine(300.0, 0.3, CLAP_SAMPLE_RATE_HZ))  # another length: its own pass
    vectors = embedder.features(clips)
    assert sorted(model.audio_calls) == sorted([(AUDIO_BATCH, 9600), (3, 9600), (1, 14400)])
    single = ClapEmbedder(TinyClap(), input_rate=CLAP_SAMPLE_RATE_HZ).features([clips[4]])
    np.testing.assert_allclose(vectors[4], single[0], atol=1e-6)  # batching changes nothing
    texts = embedder.embed_text(["low"] * (TEXT_BATCH + 6))
    assert model.text_calls == [TEXT_BATCH, 6]
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-6)


@pytest.fixture(scope="module")
def clap_index(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny banks indexed with the stand-in CLAP: the real builder, flat cosine vectors."""
    out = tmp_path_factory.mktemp("clap") / "tiny-clap"
    plan = BuildPlan(output=out, factory_root=tiny_banks, size_per_synth=8, notes=TEST_NOTES, embedder="clap")
    IndexBuilder(plan, workers=2, embedder=ClapEmbedder(TinyClap())).build()
    return out


def test_a_clap_index_round_trips_and_answers_text_in_the_audio_space(clap_index: Path) -> None:
    index = PresetIndex.open(clap_index, embedder="clap")
    assert index.manifest.embedder == "clap/1+630k-audioset-best" and index.manifest.dim == 8
    vectors = index._vectors["vectors"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=2), 1.0, atol=1e-2)  # fp16 storage
    assert len(index) == 16  # no learned de-duplication on the CLAP path
    matcher = TextMatcher(index, clap=ClapEmbedder(TinyClap()))
    low = matcher.match_text("low deep", top_k=2)
    assert low.matches[0].preset_id.startswith("vital:test-sine-bass")
    assert low.query is None and low.matches[0].distance < low.matches[1].distance
    assert low.matches[0].preset_id.split("~")[0] != low.matches[1].preset_id.split("~")[0]
    index.close()


def test_missing_laion_clap_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, clap_index: Path) -> None:
    monkeypatch.setitem(sys.modules, "laion_clap", None)  # import fails as on a machine without it
    with pytest.raises(ClapUnavailableError, match=r'pip install "patchpilot\[clap\]"'):
        load_clap_model()
    result = CliRunner().invoke(app, ["match", "--text", "low", "--embedder", "clap", "--index", str(clap_index)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'pip install "patchpilot[clap]"' in lines[0], result.stderr


def test_a_missing_checkpoint_names_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_CLAP_CHECKPOINT", str(tmp_path / "nope.pt"))
    with pytest.raises(ClapUnavailableError, match="--clap-checkpoint"):
        ClapEmbedder().load()
    assert ClapEmbedder().identity == "clap/1+nope"


def test_cli_text_and_audio_through_the_adapter_boundary(monkeypatch: pytest.MonkeyPatch, clap_index: Path,
                                                          pluck_wav: Path, tiny_index: Path) -> None:
    monkeypatch.setattr(clap_module, "load_clap_model", lambda checkpoint=None: TinyClap())
    runner = CliRunner()
    text = runner.invoke(app, ["match", "--text", "low", "--embedder", "clap", "--index", str(clap_index), "--json"])
    assert text.exit_code == 0, text.stderr
    document = json.loads(text.stdout)
    assert document["input"] == "low" and document["matches"][0]["preset_id"].startswith("vital:test-sine-bass")
    audio = runner.invoke(app, ["match", str(pluck_wav), "--embedder", "clap", "--index", str(clap_index), "--json",
                                "--top-k", "1"])
    assert audio.exit_code == 0, audio.stderr
    assert json.loads(audio.stdout)["matches"][0]["synth"] == "vital"
    mismatch = runner.invoke(app, ["match", "--text", "low", "--embedder", "clap", "--index", str(tiny_index)])
    assert mismatch.exit_code == 3 and "embedder" in mismatch.stderr


@pytest.mark.needs_weights
def test_the_real_clap_model_embeds_audio_and_text() -> None:
    pytest.importorskip("laion_clap", reason="laion-clap is not installed (pip install \"patchpilot[clap]\")",
                        exc_type=ImportError)
    try:
        embedder = ClapEmbedder()
        embedder.load()
    except ClapUnavailableError as error:
        pytest.skip(f"CLAP weights are not available here: {error}")
    audio = embedder.features([_sine(440.0, 1.0, 22050), _sine(110.0, 1.0, 22050)])
    text = embedder.embed_text(["a pure sine tone", "a dog barking"])
    assert audio.shape == (2, 512) and text.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(np.concatenate([audio, text]), axis=1), 1.0, atol=1e-5)
    assert float(audio[0] @ text[0]) > float(audio[0] @ text[1])  # a sine is closer to "sine" than to a dog
