"""Embedders: audio (and, for CLAP, text) to vectors for the index."""

from __future__ import annotations

from pathlib import Path

from patchpilot.embed.base import Embedder
from patchpilot.errors import UsageError

EMBEDDERS = ("timbre", "clap")
DEFAULT_EMBEDDER = "timbre"

__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "get_embedder"]


def get_embedder(name: str = DEFAULT_EMBEDDER, *, clap_checkpoint: Path | str | None = None) -> Embedder:
    """An embedder by name. CLAP loads its model on first use (``embed/clap.py``)."""
    if name == "timbre":
        from patchpilot.embed.timbre import TimbreEmbedder

        return TimbreEmbedder()
    if name == "clap":
        from patchpilot.embed.clap import ClapEmbedder

        return ClapEmbedder(checkpoint=clap_checkpoint)
    raise UsageError(f"unknown embedder {name!r}; available: {', '.join(EMBEDDERS)}")
