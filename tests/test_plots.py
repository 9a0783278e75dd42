"""``match --plot``: one PNG per match (and the refinement's), matplotlib only when asked."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchpilot.cli import app

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_a_png_per_match_and_the_refinement(tiny_index: Path, pluck_wav: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pictures = tmp_path / "pictures"
    result = runner.invoke(app, ["match", str(pluck_wav), "--index", str(tiny_index), "--top-k", "2", "--json",
                                 "--plot", str(pictures), "--refine", "--budget", "12"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    files = [Path(m["plot_file"]) for m in document["matches"]]
    assert len(files) == 2 and all(f.parent == pictures for f in files)
    for path in files + [Path(document["refine_plot_file"])]:
        width, height = _png_size(path)
        assert 600 <= width <= 2000 and 300 <= height <= 1200, (path, width, height)
        assert 10_000 < path.stat().st_size < 1_000_000
    assert sorted(p.name for p in pictures.iterdir()) == sorted(
        [f.name for f in files] + [Path(document["refine_plot_file"]).name])


def test_plot_of_a_text_query_shows_the_match_alone(tiny_index: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = runner.invoke(app, ["match", "--text", "bright pluck", "--index", str(tiny_index), "--top-k", "1",
                                 "--plot", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    (picture,) = tmp_path.glob("*.png")
    assert _png_size(picture)[0] >= 600
    assert "picture #1:" in result.stdout


def test_plot_without_matplotlib_is_one_line(tiny_index: Path, pluck_wav: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import raise ImportError, as on an install without it
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = runner.invoke(app, ["match", str(pluck_wav), "--index", str(tiny_index), "--plot", str(tmp_path / "p")])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'patchpilot[plot]'" in lines[0], result.stderr
    assert result.stdout == "" and not (tmp_path / "p").exists()
