"""``patchpilot serve``: a local page to drop a sound, see and hear its matches.

The page (``static/``: plain HTML, JS and CSS, nothing from a CDN) talks to a small JSON API
(``app.py``) over one :class:`patchpilot.api.PatchPilot`: matching, refining, rendering and
the pictures are the library's, as for the CLI. FastAPI and uvicorn are the optional extra
``patchpilot[serve]``, imported only by this command.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from patchpilot.constants import SERVE_HOST, SERVE_PORT
from patchpilot.errors import MissingExtraError


def check_available() -> None:
    """One line when the serve extra is missing."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401 - for uploads
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"the page needs {exc.name}: pip install 'patchpilot[serve]'") from None


def serve(*, host: str = SERVE_HOST, port: int = SERVE_PORT, index: Path | None = None, workers: int = 2,
          max_upload_mb: float | None = None, fx_plugins: Sequence[str] = (),
          on_ready=None) -> None:  # noqa: ANN001 - on_ready(url) is called once the socket listens
    """Run the page until interrupted (blocking); ``fx_plugins``: VST3 effects the answers'
    effect chains may use (loaded before the page opens)."""
    check_available()
    import uvicorn

    from patchpilot.api import PatchPilot
    from patchpilot.serve.app import DEFAULT_MAX_UPLOAD_MB, create_app
    from patchpilot.serve.memory import limit_arenas

    limit_arenas()  # before the server's threads allocate (serve/memory.py)
    pilot = PatchPilot(index, workers=workers, fx_plugins=fx_plugins)
    app = create_app(pilot=pilot, max_upload_mb=max_upload_mb or DEFAULT_MAX_UPLOAD_MB,
                     on_ready=lambda: on_ready(f"http://{host}:{port}/") if on_ready else None)
    # uvicorn's access log would print every keyboard note; errors still show
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
