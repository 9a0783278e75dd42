"""Keeping a long-running page's memory near what its work needs (glibc only; elsewhere
these do nothing).

The page serves from many threads, and glibc gives each thread that allocates its own malloc
arena: the synths' and numpy's buffers, freed by one thread after another, leave most arenas
holding memory that is free but not returned. Measured with ``scripts/load_serve.py`` (20
clients, 60 s): the server grew 1.45 GB over its warm-up with glibc's default arenas, 0.29 GB
with two. :func:`limit_arenas` sets that limit for the serving process, and
:func:`give_back_free_memory` returns free pages after each piece of work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

#: ``mallopt``'s parameter number for the arena limit (glibc's M_ARENA_MAX).
_M_ARENA_MAX = -8
ARENAS = 2


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc has it; musl and others may not
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap the malloc arenas of this process (call before the serving threads start)."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas))


def give_back_free_memory() -> None:
    """Return the free pages at the top of every arena to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
