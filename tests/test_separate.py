"""Songs: Demucs separation with tiny local models, the stem reaching the matcher, missing
models, and no musical content in any output.

The models are real demucs classes, saved the way demucs' local repositories expect
(``{name}.th`` holding klass/args/kwargs/state) and loaded by ``demucs.pretrained.get_model``:
a randomly initialised HTDemucs (the class of the default model) and a Demucs whose weights
copy the mix into the "other" stem, so that a song's synth notes survive "separation".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("demucs", reason="separation tests need demucs (pip install -e '.[test]')")
import torch

from patchpilot.api import PatchPilot
from patchpilot.audio import separate
from patchpilot.audio.io import load_audio, write_wav
from patchpilot.audio.separate import SeparationOptions, StemSeparator, weights_available
from patchpilot.cli import app
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, TRACK_MIN_SECONDS
from patchpilot.errors import InputAudioError

SOURCES = ["drums", "bass", "other", "vocals"]
RATE = 44100
runner = CliRunner()


def _save(model: torch.nn.Module, path: Path) -> None:
    """The package format of demucs' LocalRepo (``demucs.states.load_model`` reads it)."""
    args, kwargs = model._init_args_kwargs  # recorded by demucs' @capture_init
    torch.save({"klass": type(model), "args": args, "kwargs": kwargs, "state": model.state_dict()}, path)


def _passthrough_demucs(stem: str = "other") -> torch.nn.Module:
    """A one-layer demucs.Demucs that copies the mix into ``stem`` and leaves the rest silent.

    The encoder splits each block of 4 samples into +x and -x channels (exact through the
    ReLU), the GLU gates are held open by a large bias, and the transposed convolution adds
    the two halves back into the chosen source's channels.
    """
    from demucs.demucs import Demucs

    model = Demucs(SOURCES, audio_channels=2, channels=16, depth=1, kernel_size=4, stride=4, context=0,
                   gelu=False, glu=True, rewrite=True, lstm_layers=0, dconv_mode=0, resample=False, rescale=0,
                   normalize=True, segment=4)
    encode, decode = model.encoder[0], model.decoder[0]
    conv, rewrite_in, rewrite_out, unconv = encode[0], encode[3], decode[0], decode[3]
    target = SOURCES.index(stem)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for half, sign in enumerate((1.0, -1.0)):
            for channel in range(2):
                for k in range(4):
                    j = half * 8 + channel * 4 + k
                    conv.weight[j, channel, k] = sign
                    unconv.weight[j, target * 2 + channel, k] = sign
        rewrite_in.weight[:16, :, 0] = torch.eye(16)
        rewrite_in.bias[16:] = 30.0
        rewrite_out.weight[:16, :, 0] = 0.5 * torch.eye(16)  # its input is the layer's output plus the skip
        rewrite_out.bias[16:] = 30.0
    return model.eval()


@pytest.fixture(scope="module")
def demucs_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    repo = tmp_path_factory.mktemp("demucs")
    torch.manual_seed(0)
    from demucs.htdemucs import HTDemucs

    _save(HTDemucs(sources=SOURCES, channels=8, depth=4, t_layers=1, t_heads=2, nfft=4096, segment=2), repo / "tinyht.th")
    _save(_passthrough_demucs(), repo / "passthrough.th")
    return repo


def _stereo_mix(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.stack([np.sin(2 * np.pi * 220 * t), np.sign(np.sin(2 * np.pi * 331 * t))])).astype(np.float32)


def test_a_tiny_htdemucs_separates_into_four_stereo_stems(demucs_repo: Path) -> None:
    separator = StemSeparator("tinyht", demucs_repo)
    assert separator.sample_rate == RATE and separator.sources == tuple(SOURCES)
    progress: list[tuple[str, int, int]] = []
    stems = separator.separate(_stereo_mix(3.0), progress=lambda *p: progress.append(p))
    assert list(stems) == SOURCES
    for audio in stems.values():
        assert audio.shape == (2, 3 * RATE) and audio.dtype == np.float32 and np.isfinite(audio).all()
    assert progress[-1][0] == "separate" and progress[-1][1] == progress[-1][2] > 1
    assert not np.allclose(stems["other"], stems["bass"])


def test_long_songs_go_through_in_cross_faded_blocks(demucs_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mix = _stereo_mix(3.0)
    monkeypatch.setattr(separate, "SEPARATION_BLOCK_SECONDS", 1.0)
    monkeypatch.setattr(separate, "SEPARATION_BLOCK_OVERLAP_SECONDS", 0.25)
    stems = StemSeparator("passthrough", demucs_repo).separate(mix, ["other", "drums"])
    assert list(stems) == ["other", "drums"]
    assert np.abs(stems["other"] - mix).max() < 1e-4  # no seam where blocks meet
    assert np.abs(stems["drums"]).max() < 1e-3  # silent, but for the DC demucs adds per segment


def test_a_folder_with_only_the_weight_files_of_a_named_model_is_enough(demucs_repo: Path, tmp_path: Path) -> None:
    # htdemucs is the bag of one model, 955717e8: its .th alone (no YAML) must load, here
    # with the tiny model's weights standing in for the real ones.
    (tmp_path / "955717e8.th").write_bytes((demucs_repo / "tinyht.th").read_bytes())
    assert weights_available("htdemucs", tmp_path)
    separator = StemSeparator("htdemucs", tmp_path)
    assert type(separator.model).__name__ == "BagOfModels"
    np.testing.assert_allclose(separator.separate(_stereo_mix(2.0), ["other"])["other"],
                               StemSeparator("tinyht", demucs_repo).separate(_stereo_mix(2.0), ["other"])["other"],
                               atol=1e-5)
    # a file whose checksum (the name's suffix, verified by demucs) does not match: one line
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "955717e8-8726e21a.th").write_bytes((demucs_repo / "tinyht.th").read_bytes())
    with pytest.raises(separate.DemucsModelMissingError, match="Invalid checksum") as error:
        StemSeparator("htdemucs", corrupt).model  # noqa: B018 - loading the model is what raises
    assert "--no-separate" in str(error.value) and error.value.exit_code == 2


def test_a_stem_comes_back_mono_at_the_analysis_rate(demucs_repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "mix.wav"
    write_wav(path, _stereo_mix(3.0).T, RATE)
    stem = StemSeparator("passthrough", demucs_repo).stem_audio(path, "other")
    expected = load_audio(path)
    assert stem.sample_rate == ANALYSIS_SAMPLE_RATE_HZ and stem.samples.shape == expected.samples.shape
    assert np.abs(stem.samples - (expected.samples - expected.samples.mean())).max() < 1e-3


def test_the_chosen_stem_is_what_reaches_the_matcher(demucs_repo: Path, tiny_index: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import patchpilot.api

    seen = []

    def spy(audio):  # stands in for the note selection, which a random model's stems may fail
        seen.append(audio)
        raise InputAudioError("stop here")

    monkeypatch.setattr(patchpilot.api, "select_track_notes", spy)
    path = tmp_path / "mix.wav"
    write_wav(path, _stereo_mix(3.0).T, RATE)
    separator = StemSeparator("tinyht", demucs_repo)
    with PatchPilot(tiny_index) as pilot:
        for stem in ("bass", "other"):
            options = SeparationOptions(separate=True, stem=stem, model="tinyht", repo=demucs_repo)
            with pytest.raises(InputAudioError, match="stop here"):
                pilot.match(path, separation=options)
    assert [a.name for a in seen] == [str(path)] * 2
    for audio, stem in zip(seen, ("bass", "other")):
        assert audio.sample_rate == ANALYSIS_SAMPLE_RATE_HZ and audio.duration == pytest.approx(3.0)
        np.testing.assert_allclose(audio.samples, separator.stem_audio(path, stem).samples, atol=1e-6)
    assert not np.allclose(seen[0].samples, seen[1].samples)


def _forbidden_keys(node: object, inside_params: bool = False) -> set[str]:
    """Keys anywhere in a JSON document that would reveal what was played. Synth parameter
    names (``params``/``units``) are settings of the sound and are skipped."""
    forbidden = ("note", "pitch", "midi", "onset", "time", "timing", "start", "end", "melody", "velocity",
                 "segment", "position", "duration", "chord")
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if any(word in key.lower() for word in forbidden):
                found.add(key)
            if key not in ("params", "units"):
                found |= _forbidden_keys(value)
    elif isinstance(node, list):
        for item in node:
            found |= _forbidden_keys(item)
    return found


def test_a_song_is_separated_matched_and_reported_without_musical_content(
        demucs_repo: Path, tiny_index: Path, track_wav: Path, tmp_path: Path) -> None:
    args = ["match", str(track_wav), "--index", str(tiny_index), "--json", "--top-k", "2", "--export", str(tmp_path),
            "--demucs-repo", str(demucs_repo), "--demucs-model", "passthrough"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"input", "matches"} and document["input"] == str(track_wav)
    assert document["matches"][0]["preset_id"] == "vital:test-square-lead"
    assert _forbidden_keys(document) == set()
    for match in document["matches"]:
        # no "audition": the key a song's note was played at is part of its melody
        assert set(match) - {"fx_file"} == {"rank", "synth", "preset_id", "name", "category", "tags", "distance",
                                            "confidence", "origin", "params", "units", "fx", "preset_file",
                                            "audio_file", "refined"}
    # only preset files (with their effect chains) and the presets played by us are written, never a piece of the song
    assert {"".join(p.suffixes[-2:]) if p.name.endswith(".fx.json") else p.suffix for p in tmp_path.iterdir()} \
        <= {".vital", ".syx", ".wav", ".fx.json"}
    assert all(p.name.startswith("song-0") for p in tmp_path.iterdir())

    unseparated = runner.invoke(app, ["match", str(track_wav), "--index", str(tiny_index), "--json", "--no-separate"])
    assert unseparated.exit_code == 0, unseparated.stderr
    assert _forbidden_keys(json.loads(unseparated.stdout)) == set()


def _one_line_error(result, fragments: tuple[str, ...]) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert all(f in " ".join(lines[0].split()) for f in fragments), lines[0]
    assert result.stdout == ""
    return lines[0]


def test_a_missing_model_is_one_actionable_line_and_exit_2(tiny_index: Path, track_wav: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    base = ["match", str(track_wav), "--index", str(tiny_index)]
    weights = "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/955717e8-8726e21a.th"
    _one_line_error(runner.invoke(app, [*base, "--demucs-repo", str(empty)]), ("'htdemucs'", weights, "--no-separate"))
    monkeypatch.setenv("PATCHPILOT_DEMUCS_REPO", str(tmp_path / "nowhere"))
    _one_line_error(runner.invoke(app, base), ("'htdemucs'", "nowhere", "--no-separate"))
    # No folder: demucs' own download, which must not be attempted from a test.
    monkeypatch.delenv("PATCHPILOT_DEMUCS_REPO")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(separate, "_in_huggingface_cache", lambda name: False)
    monkeypatch.setattr(separate, "_download_unreachable", lambda: "no connection to the download server")
    _one_line_error(runner.invoke(app, base), ("'htdemucs'", "internet", "--demucs-repo", "PATCHPILOT_DEMUCS_REPO",
                                               weights, "--no-separate"))
    _one_line_error(runner.invoke(app, [*base, "--demucs-model", "nosuchmodel"]), ("unknown Demucs model",))
    _one_line_error(runner.invoke(app, [*base, "--stem", "piano", "--demucs-repo", str(tmp_path), "--demucs-model", "x"]),
                    ("no Demucs model 'x'",))


def test_short_clips_are_not_separated_and_never_load_torch(tiny_index: Path, pluck_wav: Path) -> None:
    assert load_audio(pluck_wav).duration < TRACK_MIN_SECONDS
    code = ("import sys; from typer.testing import CliRunner; from patchpilot.cli import app;"
            f"r = CliRunner().invoke(app, ['match', {str(pluck_wav)!r}, '--index', {str(tiny_index)!r}, '--json']);"
            "print(r.exit_code, sorted({'torch', 'demucs', 'librosa', 'yt_dlp'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0 []"


@pytest.mark.needs_weights
@pytest.mark.skipif(not weights_available("htdemucs"), reason="htdemucs weights are not on this machine "
                    "($PATCHPILOT_DEMUCS_REPO, or demucs' download cache)")
def test_real_htdemucs_weights_separate_a_mix() -> None:
    separator = StemSeparator("htdemucs")
    stems = separator.separate(_stereo_mix(4.0))
    assert set(stems) == {"drums", "bass", "other", "vocals"}
    assert all(s.shape == (2, 4 * RATE) and np.isfinite(s).all() for s in stems.values())
    # the stems add up to (nearly) the mix
    assert np.abs(sum(stems.values()) - _stereo_mix(4.0)).mean() < 0.05
