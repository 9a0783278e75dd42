"""Links as input: yt-dlp's generic extractor on files served from 127.0.0.1 (no outside
network), the temporary folder removed on success and on error, clear one-line errors."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("yt_dlp", reason="link tests need yt-dlp")

from patchpilot.audio.fetch import URLInputError, fetched_audio, is_url
from patchpilot.cli import app

runner = CliRunner()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(pluck_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """http://127.0.0.1:<port>/ serving pluck.wav and a page with no media."""
    root = tmp_path_factory.mktemp("site")
    (root / "pluck.wav").write_bytes(pluck_wav.read_bytes())
    (root / "page.html").write_text("<html><body><p>no audio here</p></body></html>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where tempfile creates folders during the test, to check nothing is left behind."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_links_are_told_from_files() -> None:
    assert is_url("https://example.com/a.mp3") and is_url("HTTP://x/y")
    assert not is_url("song.mp3") and not is_url(b"http://x") and not is_url("ftp://x/y.wav")


def test_a_served_file_is_downloaded_and_its_folder_removed(site: str, pluck_wav: Path, temp_root: Path) -> None:
    with fetched_audio(f"{site}/pluck.wav") as path:
        assert path.read_bytes() == pluck_wav.read_bytes()
        assert path.parent.parent == temp_root
    assert list(temp_root.iterdir()) == []
    with pytest.raises(RuntimeError), fetched_audio(f"{site}/pluck.wav"):
        raise RuntimeError("matching failed")
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize(("path", "kwargs", "message"), [
    ("page.html", {}, "unsupported URL"),
    ("missing.wav", {}, "404"),
    ("pluck.wav", {"max_bytes": 1000}, "larger than 1000 bytes"),
])
def test_bad_links_are_one_line_errors(site: str, temp_root: Path, path: str, kwargs: dict, message: str) -> None:
    with pytest.raises(URLInputError, match=message) as error, fetched_audio(f"{site}/{path}", **kwargs):
        pass
    assert "\n" not in str(error.value) and str(error.value).startswith(f"{site}/{path}: ")
    assert list(temp_root.iterdir()) == []


def test_match_reads_a_link(site: str, tiny_index: Path, temp_root: Path, tmp_path: Path) -> None:
    url = f"{site}/pluck.wav?download=1"
    result = runner.invoke(app, ["match", url, "--index", str(tiny_index), "--json", "--top-k", "1",
                                 "--export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["input"] == url and document["matches"][0]["preset_id"] == "vital:test-pluck"
    assert Path(document["matches"][0]["preset_file"]).name == "pluck-01-test-pluck.vital"
    assert list(temp_root.iterdir()) == []


def test_an_unreachable_link_is_one_line_and_exit_2(tiny_index: Path, temp_root: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/song.wav"
    result = runner.invoke(app, ["match", url, "--index", str(tiny_index)])
    assert result.exit_code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot download" in lines[0] and "Connection refused" in " ".join(result.stderr.split())
    assert result.stdout == "" and list(temp_root.iterdir()) == []
