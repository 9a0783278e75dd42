"""``patchpilot serve`` in a real browser: Debian's chromium driven by Playwright.

The browser is ``/usr/bin/chromium`` (``.ci/run`` installs it with apt where it can), never
a download; without it, or without the serve extra or Playwright, the tests skip with the
reason. The server runs as the installed command would, in a subprocess on a free port,
against the tiny test index.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Start-up to the first page (the issue asks for under 3 s; the margin is for busy CI cores).
MAX_STARTUP_SECONDS = 3.0

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")
pytest.importorskip("matplotlib", reason="the plot extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not os.path.exists(CHROMIUM):
    pytest.skip("no chromium at /usr/bin/chromium (.ci/run installs Debian's with apt)", allow_module_level=True)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    def __init__(self, url: str, process: subprocess.Popen, startup_seconds: float, tmp: Path) -> None:
        self.url, self.process, self.startup_seconds, self.tmp = url, process, startup_seconds, tmp


@pytest.fixture(scope="module")
def served(tiny_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve-tmp")  # the server's TMPDIR: uploads must not stay
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, TMPDIR=str(tmp))
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "patchpilot", "serve", "--port", str(port),
                                "--index", str(tiny_index), "--max-upload-mb", "2"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"patchpilot serve exited: {process.stderr.read()}")
                if time.perf_counter() - began > 30:
                    pytest.fail("patchpilot serve did not answer within 30 s")
                time.sleep(0.05)
        startup = time.perf_counter() - began
        yield Served(url, process, startup, tmp)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where chromium's sandbox refuses to start
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_serve_starts_fast(served: Served) -> None:
    print(f"start-up to the first page: {served.startup_seconds:.2f} s")
    assert served.startup_seconds < MAX_STARTUP_SECONDS


def test_the_page_matches_plays_refines_and_searches(served: Served, browser, pluck_wav: Path,
                                                     tiny_index: Path, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(served.url)
    page.wait_for_function("document.getElementById('index-info').textContent.includes('presets')")
    assert re.search(r"\d+ presets \(\d+ (vital|dexed)", page.text_content("#index-info"))

    # upload: the matches appear, with their pictures, players and downloads
    began = time.perf_counter()
    page.set_input_files("#file", str(pluck_wav))
    page.wait_for_selector(".match", timeout=60_000)
    page_seconds = time.perf_counter() - began
    first = page.locator(".match").first
    assert "Test Pluck" in first.locator("h3").text_content()
    assert first.locator("img").get_attribute("src").endswith("/picture.png")
    page.wait_for_function("document.querySelector('.match img').naturalWidth > 600", timeout=30_000)
    assert first.locator("a[download]").first.get_attribute("download").endswith(".vital")
    assert page.locator("#input-audio").get_attribute("src").endswith("/input.wav")
    assert not list(served.tmp.glob("patchpilot-upload-*")), "the upload's folder stayed"

    # the CLI's time for the same match (a fresh process: it loads the index too)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "patchpilot", "match", str(pluck_wav), "--index", str(tiny_index),
                    "--top-k", "5", "--json"], check=True, capture_output=True)
    cli_seconds = time.perf_counter() - began
    print(f"match through the page: {page_seconds:.2f} s; the CLI: {cli_seconds:.2f} s")
    assert page_seconds < cli_seconds + 1.0

    # a keyboard note, by mouse: the audio element gets a WAV that decodes
    page.click(".key[data-note='60']")
    page.wait_for_function("document.getElementById('playing').textContent.startsWith('C4: #1')", timeout=30_000)
    src = page.locator("#note-audio").get_attribute("src")
    assert src.endswith("audio.wav?note=60")
    decoded = page.evaluate("""async (src) => {
        const data = await (await fetch(src)).arrayBuffer();
        const audio = await new OfflineAudioContext(1, 44100, 44100).decodeAudioData(data);
        let peak = 0;
        for (const x of audio.getChannelData(0)) peak = Math.max(peak, Math.abs(x));
        return {seconds: audio.duration, peak};
    }""", src)
    assert decoded["seconds"] > 0.5 and decoded["peak"] > 0.01, decoded

    # keyboard only: Enter on a focused key, then a computer key
    page.focus(".key[data-note='62']")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('playing').textContent.startsWith('D4: #1')", timeout=30_000)
    page.focus("#refine")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("g")  # G above the keyboard's first C (C3: the match plays at F3)
    page.wait_for_function("document.getElementById('playing').textContent.startsWith('G3: #1')", timeout=30_000)

    # refine: progress events, then the refined preset first
    page.fill("#budget", "16")
    page.focus("#refine")
    page.keyboard.press("Enter")
    page.wait_for_function("/^(Refined|No improvement)/.test(document.getElementById('refine-status').textContent)",
                           timeout=120_000)
    assert int(page.get_attribute("#refine-progress", "max")) == 16
    assert float(page.evaluate("document.getElementById('refine-progress').value")) > 0
    # the first card is the refined preset exactly when the status says it was refined
    improved = page.text_content("#refine-status").startswith("Refined: distance")
    assert improved == ("(refined)" in page.locator(".match h3").first.text_content())
    page.wait_for_function("document.getElementById('convergence').naturalWidth > 300", timeout=30_000)
    page.screenshot(path=str(tmp_path / "refined.png"), full_page=True)

    # a long refinement, cancelled from the keyboard once it reports progress
    page.fill("#budget", "20000")
    page.click("#refine")
    page.wait_for_function("document.getElementById('refine-status').textContent.includes('evaluations')",
                           timeout=60_000)
    page.focus("#cancel")
    page.keyboard.press("Space")
    page.wait_for_function("document.getElementById('refine-status').textContent === 'Refinement cancelled'",
                           timeout=30_000)
    assert page.locator("#refine").is_enabled()

    # a text query
    page.fill("#text", "bright pluck")
    page.press("#text", "Enter")
    page.wait_for_function("document.getElementById('status').textContent.includes('matches for bright pluck')",
                           timeout=30_000)
    assert page.locator(".match").count() >= 1
    assert page.locator("#refine-box").is_hidden()
    # the keyboard now names the text query's first answer, not the upload's
    first_name = page.locator(".match h3").first.text_content()
    playing = page.text_content("#playing")
    assert playing.startswith("keyboard plays #1 ") and playing.split("#1 ", 1)[1] in first_name, (playing, first_name)

    # an error is one readable line
    page.set_input_files("#file", [{"name": "notes.wav", "mimeType": "audio/wav", "buffer": b"not audio"}])
    page.wait_for_selector("#error:not([hidden])")
    message = page.text_content("#error")
    assert "notes.wav" in message and "\n" not in message.strip() and "/tmp" not in message, message
    assert page.locator(".match").count() == 0  # the previous answers do not stay under the error
    assert page.locator("#keyboard-box").is_hidden()
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_a_card_tweaks_its_preset_the_keyboard_plays_the_tweak_and_finds_similar_presets(served: Served, browser,
                                                                                          pluck_wav: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(served.url)
    page.set_input_files("#file", str(pluck_wav))
    page.wait_for_selector(".match", timeout=60_000)
    name = page.locator(".match h3 span:not(.label)").first.text_content()
    # a word button of the first card: the tweak replaces the results and says what moved
    page.locator(".match").first.locator("button.tweak-word", has_text="darker").click()
    page.wait_for_function("document.getElementById('status').textContent.includes('darker: ')", timeout=60_000)
    assert "steps of brightness" in page.text_content("#status")
    assert page.locator(".match").count() == 1 and "(darker)" in page.locator(".match h3").first.text_content()
    # the keyboard plays the tweaked preset
    page.click(".key[data-note='62']")
    page.wait_for_function("document.getElementById('playing').textContent.startsWith('D4: #1')", timeout=30_000)
    assert "(darker)" in page.text_content("#playing")
    assert page.locator("#note-audio").get_attribute("src").endswith("/matches/1/audio.wav?note=62")
    # A/B on one player: the preset before the tweak, then the tweak, at one level
    assert page.text_content("#ab-a") == "A: before the tweak" and "(darker)" in page.text_content("#ab-b")
    page.click("#ab-a")
    assert page.locator("#ab-audio").get_attribute("src").endswith("/matches/1/before.wav")
    assert page.get_attribute("#ab-a", "aria-pressed") == "true"
    page.click("#ab-b")
    assert page.locator("#ab-audio").get_attribute("src").endswith("/matches/1/audio.wav?level=matched")
    levels = page.evaluate("""async (urls) => {
        const out = [];
        for (const url of urls) {
            const data = await (await fetch(url)).arrayBuffer();
            const audio = await new OfflineAudioContext(1, 44100, 44100).decodeAudioData(data);
            const x = audio.getChannelData(0);
            let sum = 0, n = 0;
            for (let i = 0; i + 512 <= x.length; i += 512) {
                let p = 0;
                for (let j = i; j < i + 512; j++) p += x[j] * x[j];
                if (p / 512 > 1e-7) { sum += p; n += 512; }
            }
            out.push(10 * Math.log10(sum / n));
        }
        return out;
    }""", [page.evaluate("state.result.a_url"),
           page.evaluate("state.selected.audio_url + '?level=matched'")])
    assert abs(levels[0] - levels[1]) < 1.5 and abs(levels[0] + 20) < 3, levels
    # typed words chain a second tweak on the tweaked preset
    page.locator(".match .tweak input[type=text]").fill("longer release")
    page.locator(".match .tweak button[type=submit]").click()
    page.wait_for_function("document.getElementById('status').textContent.includes('longer release: ')",
                           timeout=60_000)
    assert "(darker) (longer release)" in page.locator(".match h3").first.text_content()
    # presets like the tweaked one
    page.locator(".match").first.locator("button.similar").click()
    page.wait_for_function("document.getElementById('status').textContent.includes('matches for presets like')",
                           timeout=60_000)
    tweaked_name = f"{name.split(' ', 1)[1]} (darker) (longer release)"  # "#1 Test Pluck" -> "Test Pluck"
    assert f"presets like {tweaked_name}" in page.text_content("#status")
    assert page.locator(".match").count() >= 1
    assert all(tweaked_name not in h for h in page.locator(".match h3").all_text_contents())


def test_uploads_are_capped_and_never_written_where_their_name_says(served: Served, browser, tmp_path: Path) -> None:
    request = browser.new_context().request
    big = request.post(served.url + "api/match", multipart={
        "file": {"name": "big.wav", "mimeType": "audio/wav", "buffer": b"\0" * (3 * 2**20)}})
    assert big.status == 413 and "limit of 2 MB" in big.json()["error"]
    target = served.tmp / "evil.wav"
    sneaky = request.post(served.url + "api/match", multipart={
        "file": {"name": f"../../../../../../{target}", "mimeType": "audio/wav", "buffer": b"RIFF junk"}})
    assert sneaky.status == 422 and "\n" not in sneaky.json()["error"]
    assert not target.exists() and not list(served.tmp.iterdir())
    assert request.get(served.url + "static/../../api.py").status == 404
