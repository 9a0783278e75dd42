"""The page's JSON API without a browser (FastAPI's TestClient on the tiny index): every
route's answer, one-line errors with the right status, a 503 with Retry-After when the page
is full, refinements that report at once and end, and the bounds that keep a long-running
page from growing (jobs forgotten or cancelled, caches of fixed size)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="httpx is not installed (the test extra brings it)")
pytest.importorskip("matplotlib", reason="the plot extra is not installed")

from fastapi.testclient import TestClient

from patchpilot.api import PatchPilot
from patchpilot.serve import server as server_module
from patchpilot.serve.app import create_app
from patchpilot.serve.jobs import ABANDON_SECONDS, JOB_TTL_SECONDS, BoundedCache, JobRegistry, WorkGate


@pytest.fixture(scope="module")
def client(tiny_index: Path) -> TestClient:
    with TestClient(create_app(pilot=PatchPilot(tiny_index), max_upload_mb=1)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def matched(client: TestClient, pluck_wav: Path) -> dict:
    with pluck_wav.open("rb") as handle:
        response = client.post("/api/match", files={"file": ("my pluck.wav", handle, "audio/wav")})
    assert response.status_code == 200, response.text
    return response.json()


def _events(client: TestClient, url: str, events: list[dict] | None = None) -> list[dict]:
    """The job's events until its last, appended to ``events`` as they come."""
    events = [] if events is None else events
    with client.stream("GET", url) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
                if events[-1]["type"] in ("done", "cancelled", "error"):
                    break
    return events


def test_a_match_answers_with_every_link_of_its_matches(client: TestClient, matched: dict) -> None:
    assert matched["input"] == "my pluck.wav" and matched["labelled"] and matched["can_refine"]
    assert matched["matches"] and matched["input_url"].endswith("/input.wav")
    top = matched["matches"][0]
    assert top["preset_filename"].endswith((".vital", ".syx")) and top["groups"]
    for key, kind in (("picture_url", "image/png"), ("audio_url", "audio/wav"), ("preset_url", "application/octet-stream")):
        response = client.get(top[key])
        assert response.status_code == 200 and response.headers["content-type"] == kind and response.content
    assert client.get(matched["input_url"]).content[:4] == b"RIFF"
    assert client.get(f"{top['audio_url']}?note=72").content[:4] == b"RIFF"
    download = client.get(top["preset_url"])
    assert top["preset_filename"] in download.headers["content-disposition"]
    assert client.get(f"/api/results/{matched['id']}").json() == matched


def test_similar_presets_of_a_match_are_a_new_result(client: TestClient, matched: dict) -> None:
    top = matched["matches"][0]
    response = client.post(f"/api/results/{matched['id']}/matches/{top['rank']}/similar")
    assert response.status_code == 200, response.text
    similar = response.json()
    assert similar["id"] != matched["id"] and similar["input"] == f"presets like {top['name']}"
    assert similar["matches"] and top["preset_id"] not in [m["preset_id"] for m in similar["matches"]]
    assert [m["rank"] for m in similar["matches"]] == list(range(1, len(similar["matches"]) + 1))
    assert client.get(similar["input_url"]).content[:4] == b"RIFF"  # the match as it was played
    missing = client.post(f"/api/results/{matched['id']}/matches/99/similar")
    assert missing.status_code == 400 and "no match #99" in missing.json()["error"]


def test_a_tweak_of_a_match_is_a_result_with_its_moves(client: TestClient, matched: dict) -> None:
    top = matched["matches"][0]
    response = client.post(f"/api/results/{matched['id']}/matches/{top['rank']}/tweak", data={"words": "darker"})
    assert response.status_code == 200, response.text
    tweaked = response.json()
    [answer] = tweaked["matches"]
    assert tweaked["tweak"]["moves"][0]["descriptor"] == "brightness" and tweaked["tweak"]["moves"][0]["asked"] == "less"
    assert answer["name"].endswith("(darker)") and not tweaked["labelled"] and not tweaked["can_refine"]
    assert client.get(f"{answer['audio_url']}?note=64").content[:4] == b"RIFF"  # the keyboard plays the tweak
    again = client.post(f"/api/results/{tweaked['id']}/matches/1/tweak", data={"words": "longer release"})
    assert again.status_code == 200 and again.json()["matches"][0]["name"].endswith("(longer release)")
    empty = client.post(f"/api/results/{matched['id']}/matches/1/tweak", data={"words": " "})
    assert empty.status_code == 400 and "say how to move it" in empty.json()["error"]


def test_the_ab_player_hears_both_sides_at_one_level() -> None:
    t = np.arange(44100) / 44100
    loud = (0.9 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    quiet = (0.01 * np.sign(np.sin(2 * np.pi * 110 * t))).astype(np.float32)
    a, b = server_module.level_matched(loud), server_module.level_matched(quiet)
    rms = [20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))) for x in (a, b)]
    assert abs(rms[0] - server_module.LEVEL_DBFS) < 0.2 and abs(rms[1] - server_module.LEVEL_DBFS) < 0.2, rms
    assert np.max(np.abs(a)) <= 0.99 and np.max(np.abs(b)) <= 0.99
    assert not server_module.level_matched(np.zeros(100, np.float32)).any()


def test_errors_are_one_line_with_their_status(client: TestClient, matched: dict, tmp_path: Path) -> None:
    top = matched["matches"][0]
    cases = [
        (client.get(f"{top['audio_url']}?note=3"), 400, "outside the keyboard"),
        (client.get("/api/results/r999"), 400, "no longer kept"),
        (client.get(f"/api/results/{matched['id']}/matches/99/picture.png"), 400, "no match #99"),
        (client.get("/api/jobs/j999/events"), 400, "no such refinement"),
        (client.post("/api/text", data={"text": "  "}), 400, "type a few words"),
        (client.post("/api/match", files={"file": ("notes.wav", b"these are my notes, not audio\n" * 20, "audio/wav")}),
         422, "notes.wav"),
        (client.post("/api/match", files={"file": ("big.wav", b"\0" * (2 << 20), "audio/wav")}), 413, "limit"),
        (client.post("/api/match", files={"file": ("empty.wav", b"", "audio/wav")}), 422, "empty"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (words, response.text)
        error = response.json()["error"]
        assert words in error and "\n" not in error and "/tmp" not in error and "Traceback" not in error, error


def test_a_text_query_is_answered_without_input_audio(client: TestClient) -> None:
    result = client.post("/api/text", data={"text": "bright pluck"}).json()
    assert result["matches"] and not result["can_refine"] and result["input_url"] is None
    refused = client.post(f"/api/results/{result['id']}/refine", data={"budget": "10"})
    assert refused.status_code == 400 and "audio input" in refused.json()["error"]


def test_a_refinement_reports_at_once_and_ends_with_its_result(client: TestClient, matched: dict) -> None:
    job = client.post(f"/api/results/{matched['id']}/refine", data={"budget": "8"}).json()
    events = _events(client, job["events_url"])
    assert events[0]["type"] == "started" and events[-1]["type"] == "done", events
    assert events[-1]["result"]["matches"]
    assert client.post(job["cancel_url"]).json() == {"cancelled": True}  # kept a while after it ended


def test_a_full_page_says_so_with_retry_after(client: TestClient, matched: dict) -> None:
    server = client.app.state.server
    for _ in range(server.work_gate.limit):
        server.work_gate.enter()
    try:
        response = client.post("/api/text", data={"text": "dark pad"})
        assert response.status_code == 503 and response.headers["retry-after"].isdigit()
        assert "busy" in response.json()["error"]
        refine = client.post(f"/api/results/{matched['id']}/refine", data={"budget": "8"})
        assert refine.status_code == 503
    finally:
        for _ in range(server.work_gate.limit):
            server.work_gate.leave()
    assert server.work_gate.admitted == 0
    assert client.post("/api/text", data={"text": "dark pad"}).status_code == 200


def test_keyboard_notes_are_cached_within_bounds(client: TestClient, matched: dict, monkeypatch) -> None:
    monkeypatch.setattr(server_module, "MAX_CACHED_PER_RESULT", 3)
    result = client.post("/api/text", data={"text": "organ"}).json()
    url = result["matches"][0]["audio_url"]
    for note in (48, 50, 52, 53, 55):
        assert client.get(f"{url}?note={note}").status_code == 200
    assert len(client.app.state.server.entry(result["id"]).cache) == 3


def test_jobs_are_forgotten_when_stale_and_cancelled_when_nobody_listens() -> None:
    now = [0.0]
    registry = JobRegistry(clock=lambda: now[0])
    unheard, heard, done = registry.add(), registry.add(), registry.add()
    with registry.listening(heard):
        registry.finish(done)
        now[0] = ABANDON_SECONDS + 1
        assert registry.get(unheard.id) is unheard and unheard.cancel.is_set()  # nobody came for it
        assert not heard.cancel.is_set() and not done.cancel.is_set()
    assert heard.cancel.is_set()  # its listener left before it finished: its work stops
    now[0] = JOB_TTL_SECONDS + 2
    assert registry.get(done.id) is None and len(registry) == 2


def test_the_gate_and_the_cache_hold_their_bounds() -> None:
    gate = WorkGate(2, "things")
    with gate.admit(), gate.admit():
        with pytest.raises(Exception, match="busy with 2 things"):
            gate.enter()
    assert gate.admitted == 0
    cache: BoundedCache[int, str] = BoundedCache(2)
    cache.put(1, "a")
    cache.put(2, "b")
    assert cache.get(1) == "a"  # 1 is now the newest
    cache.put(3, "c")
    assert cache.get(2) is None and cache.get(1) == "a" and len(cache) == 2


def test_the_page_serves_the_files_export_writes_under_the_same_names(client: TestClient, matched: dict,
                                                                       tmp_path: Path) -> None:
    from patchpilot.export import export_preset

    server = client.app.state.server
    _, match = server.match_of(matched["id"], 1)
    files = server.pilot.deliverables(match)
    written = export_preset(match.preset, tmp_path, match.preset.name, note=60, velocity=100, fx=match.fx)
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    assert sorted(f.name for f in files.files) + [written.audio_file.name] == sorted(on_disk)
    top = matched["matches"][0]
    served = client.get(top["preset_url"])
    assert served.content == (tmp_path / top["preset_filename"]).read_bytes()
    assert f'filename="{top["preset_filename"]}"' in served.headers["content-disposition"]
    if top["fx_url"]:  # the chain's JSON is the file `render --fx` reads, as export writes it
        assert client.get(top["fx_url"]).content == written.fx_file.read_bytes()


def test_cancel_stops_a_long_refinement_between_renders(client: TestClient, matched: dict) -> None:
    import threading
    import time

    from patchpilot.refine import RefineCancelled

    server = client.app.state.server
    job = client.post(f"/api/results/{matched['id']}/refine", data={"budget": "20000"}).json()
    events = []

    listener = threading.Thread(target=_events, args=(client, job["events_url"], events))
    listener.start()
    while server.jobs.running() and not any(e["type"] == "progress" for e in events):
        time.sleep(0.02)
    assert client.post(job["cancel_url"]).json() == {"cancelled": True}
    listener.join(timeout=120)
    assert events[-1]["type"] == "cancelled" and server.jobs.running() == 0
    # the facade stops too when its switch is set (here before it starts)
    switch = threading.Event()
    switch.set()
    with pytest.raises(RefineCancelled):
        server.pilot.refine(server.entry(matched["id"]).result, cancel=switch)
