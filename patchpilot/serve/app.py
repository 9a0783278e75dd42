"""The page's application: the :class:`~patchpilot.serve.server.Server` over one facade, the
routers of ``routes.py``, and the handlers that turn errors into one line of JSON (a 503 with
Retry-After when the page is full)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from patchpilot import __version__
from patchpilot.api import PatchPilot
from patchpilot.errors import InputAudioError, PatchPilotError
from patchpilot.serve.jobs import RETRY_AFTER_SECONDS, ServerBusy
from patchpilot.serve.routes import api_routes, pages
from patchpilot.serve.server import DEFAULT_MAX_UPLOAD_MB, STATIC_DIR, Server, error_response

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "create_app"]


def create_app(*, index: Path | None = None, workers: int = 2, pilot: PatchPilot | None = None,
               max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """The page's application over ``pilot`` (a new facade on ``index`` by default);
    ``on_ready()`` is called once the server listens."""
    server = Server(pilot or PatchPilot(index, workers=workers), max_upload_mb)

    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=server.warm_up, name="warm-up", daemon=True).start()
        if on_ready is not None:
            on_ready()
        yield
        server.jobs.cancel_all()
        server.pilot.close()

    app = FastAPI(title="Patch Pilot", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.server = server

    @app.exception_handler(ServerBusy)
    async def busy(request: Request, error: ServerBusy) -> JSONResponse:
        response = error_response(str(error), 503)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(PatchPilotError)
    async def library_error(request: Request, error: PatchPilotError) -> JSONResponse:
        return error_response(str(error), 422 if isinstance(error, InputAudioError) else 400)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        return error_response(f"internal error: {type(error).__name__}: {error}", 500)

    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(api_routes)
    return app
