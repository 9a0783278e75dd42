"""The page's HTTP routes, as FastAPI routers over the :class:`Server` the app holds (a
dependency, so that a test can mount them on any server): the page itself, and the JSON API
(results, their files, refinements). Every answer that is data has a response model;
errors are ``{"error": "one line"}`` (``app.py``'s handlers)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel

from patchpilot import __version__
from patchpilot.constants import DEFAULT_REFINE_BUDGET
from patchpilot.errors import InputAudioError, UsageError
from patchpilot.serve.server import (
    KEYBOARD_NOTES,
    MAX_PAGE_BUDGET,
    MAX_UPLOAD_SECONDS,
    STATIC_DIR,
    Server,
    error_response,
    safe_label,
)


def current_server(request: Request) -> Server:
    """The server of the application handling the request."""
    return request.app.state.server


class Info(BaseModel):
    version: str
    index: dict
    max_upload_mb: float
    max_upload_seconds: float
    default_budget: int
    keyboard: list[int]


class Status(BaseModel):
    work: int
    work_limit: int
    renders: int
    refinements_running: int
    refinements_kept: int
    results_kept: int


class RefineStarted(BaseModel):
    job: str
    events_url: str
    cancel_url: str


class Cancelled(BaseModel):
    cancelled: bool


pages = APIRouter()
api_routes = APIRouter(prefix="/api")
ServerDep = Depends(current_server)
#: Downloads of keyboard notes and pictures may be cached by the browser (they never change).
CACHED = {"Cache-Control": "private, max-age=3600"}


@pages.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@api_routes.get("/info", response_model=Info)
def info(server: Server = ServerDep) -> Info:
    with server.work_lock:
        index_info = server.pilot.index_info()
    return Info(version=__version__, index=index_info, max_upload_mb=server.max_upload_mb,
                max_upload_seconds=MAX_UPLOAD_SECONDS, default_budget=DEFAULT_REFINE_BUDGET,
                keyboard=[KEYBOARD_NOTES[0], KEYBOARD_NOTES[-1]])


@api_routes.get("/status", response_model=Status)
def status(server: Server = ServerDep) -> Status:
    """The page's load now (no lock taken: it answers while work runs)."""
    return Status(work=server.work_gate.admitted, work_limit=server.work_gate.limit,
                  renders=server.render_gate.admitted, refinements_running=server.jobs.running(),
                  refinements_kept=len(server.jobs), results_kept=len(server.results))


@api_routes.post("/match")
def match(request: Request, file: UploadFile | None = None, url: str | None = Form(None),
          server: Server = ServerDep) -> dict:
    if file is None and not url:
        raise UsageError("choose an audio file, or give a link")
    if file is None:
        return server.result_json(server.match_link(url.strip()))
    limit, limit_text = server.max_upload_bytes, f"{server.max_upload_mb:g} MB"
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + 1_000_000:
        return error_response(f"the file is over the page's limit of {limit_text}", 413)
    label = safe_label(file.filename)
    with tempfile.TemporaryDirectory(prefix="patchpilot-upload-") as folder:
        # a fixed name: the browser's file name only labels the result
        path = Path(folder) / "upload"
        size = 0
        with path.open("wb") as out:
            while chunk := file.file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    return error_response(f"{label} is over the page's limit of {limit_text}", 413)
                out.write(chunk)
        if size == 0:
            raise InputAudioError(f"{label}: the file is empty")
        rid = server.match_file(path, label)
    return server.result_json(rid)


@api_routes.post("/text")
def text(text: str = Form(...), server: Server = ServerDep) -> dict:
    if not text.strip():
        raise UsageError("type a few words about the sound")
    return server.result_json(server.match_text(text.strip()))


@api_routes.post("/results/{rid}/matches/{rank}/similar")
def similar(rid: str, rank: int, server: Server = ServerDep) -> dict:
    """Presets like a match: a new result, as a match's."""
    return server.result_json(server.match_similar(rid, rank))


@api_routes.post("/results/{rid}/matches/{rank}/tweak")
def tweak(rid: str, rank: int, words: str = Form(...), server: Server = ServerDep) -> dict:
    """A match's preset moved the way ``words`` ask: a new result with that one answer."""
    if not words.strip():
        raise UsageError("say how to move it: brighter, darker, shorter attack, more reverb...")
    return server.result_json(server.match_tweak(rid, rank, words.strip()))


@api_routes.get("/results/{rid}")
def result(rid: str, server: Server = ServerDep) -> dict:
    return server.result_json(rid)


@api_routes.get("/results/{rid}/input.wav")
def input_audio(rid: str, level: str | None = None, server: Server = ServerDep) -> Response:
    """The input; ``?level=matched`` at the A/B player's level."""
    return Response(server.input_audio(rid, matched=level == "matched"), media_type="audio/wav")


@api_routes.get("/results/{rid}/convergence.png")
def convergence(rid: str, server: Server = ServerDep) -> Response:
    data = server.entry(rid).convergence
    if data is None:
        raise UsageError("this result was not refined")
    return Response(data, media_type="image/png")


@api_routes.get("/results/{rid}/matches/{rank}/picture.png")
def picture(rid: str, rank: int, server: Server = ServerDep) -> Response:
    return Response(server.picture(rid, rank), media_type="image/png", headers=CACHED)


@api_routes.get("/results/{rid}/matches/{rank}/audio.wav")
def audio(rid: str, rank: int, note: int | None = None, level: str | None = None,
          server: Server = ServerDep) -> Response:
    """An answer as its files play (at ``note``); ``?level=matched`` at the A/B player's level."""
    return Response(server.note_audio(rid, rank, note, matched=level == "matched"), media_type="audio/wav",
                    headers=CACHED)


@api_routes.get("/results/{rid}/matches/{rank}/before.wav")
def before(rid: str, rank: int, server: Server = ServerDep) -> Response:
    """A tweaked answer's preset before the tweak, level-matched (the A/B player's A)."""
    return Response(server.before_audio(rid, rank), media_type="audio/wav", headers=CACHED)


def download(server: Server, rid: str, rank: int, kind: str, position: int = 0) -> Response:
    """One of an answer's files (``export.Deliverables``), as an attachment."""
    _, found = server.match_of(rid, rank)
    deliverable = server.pilot.deliverables(found).get(kind, position)
    if deliverable is None:
        missing = {"preset-with-fx": "no effects its synth can hold", "fx": "no effect chain",
                   "fx-plugin": f"no effect {position} that is a VST3 effect"}
        raise UsageError(f"match {rank} has {missing.get(kind, 'no such file')}")
    media = "application/json" if kind == "fx" else "application/octet-stream"
    return Response(deliverable.data(), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{deliverable.name}"'})


@api_routes.get("/results/{rid}/matches/{rank}/preset")
def preset_file(rid: str, rank: int, server: Server = ServerDep) -> Response:
    return download(server, rid, rank, "preset")


@api_routes.get("/results/{rid}/matches/{rank}/preset-with-fx")
def preset_with_fx_file(rid: str, rank: int, server: Server = ServerDep) -> Response:
    return download(server, rid, rank, "preset-with-fx")


@api_routes.get("/results/{rid}/matches/{rank}/fx-plugin/{position}")
def fx_plugin_preset(rid: str, rank: int, position: int, server: Server = ServerDep) -> Response:
    return download(server, rid, rank, "fx-plugin", position)


@api_routes.get("/results/{rid}/matches/{rank}/fx.json")
def fx_file(rid: str, rank: int, server: Server = ServerDep) -> Response:
    return download(server, rid, rank, "fx")


@api_routes.post("/results/{rid}/refine", response_model=RefineStarted)
def refine(rid: str, budget: int = Form(DEFAULT_REFINE_BUDGET), seconds: float | None = Form(None),
           server: Server = ServerDep) -> RefineStarted:
    if not 1 <= budget <= MAX_PAGE_BUDGET:
        raise UsageError(f"budget: 1 to {MAX_PAGE_BUDGET} parameter sets")
    if server.entry(rid).result.analysis is None:
        raise UsageError("refinement needs an audio input (not a text query)")
    job = server.start_refine(rid, budget, seconds if seconds and seconds > 0 else None)
    return RefineStarted(job=job.id, events_url=f"/api/jobs/{job.id}/events", cancel_url=f"/api/jobs/{job.id}/cancel")


@api_routes.get("/jobs/{job_id}/events")
def events(job_id: str, request: Request, server: Server = ServerDep) -> StreamingResponse:
    job = server.jobs.get(job_id)
    if job is None:
        raise UsageError("no such refinement (it finished or was never started)")
    return StreamingResponse(server.events(job, request), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@api_routes.post("/jobs/{job_id}/cancel", response_model=Cancelled)
def cancel(job_id: str, server: Server = ServerDep) -> Cancelled:
    job = server.jobs.get(job_id)
    if job is not None:
        job.cancel.set()
    return Cancelled(cancelled=job is not None)
