"""Embedders: audio (and, for CLAP, text) to vectors for the index."""

from __future__ import annotations

from patchpilot.embed.base import Embedder
from patchpilot.errors import UsageError

EMBEDDERS = ("timbre",)
DEFAULT_EMBEDDER = "timbre"

__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "get_embedder"]


def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """An embedder by name."""
    if name == "timbre":
        from patchpilot.embed.timbre import TimbreEmbedder

        return TimbreEmbedder()
    raise UsageError(f"unknown embedder {name!r}; available: {', '.join(EMBEDDERS)}")
