"""The page's running work, kept within bounds: refinements in a registry that forgets them,
a gate that turns work away (503) rather than queueing it without end, and caches of
bounded size.

* :class:`JobRegistry`: every refinement the page started, under one lock. A finished job is
  kept ``JOB_TTL_SECONDS`` for a late listener, then forgotten; a running job nobody listens
  to for ``ABANDON_SECONDS`` (the page was closed before it connected, or left) is cancelled,
  so that its work stops.
* :class:`WorkGate`: at most ``limit`` pieces of work running or waiting; one more is
  refused at once with :class:`ServerBusy` (the page answers 503 with Retry-After).
* :class:`BoundedCache`: the newest ``max_items`` items (pictures, keyboard notes).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from patchpilot.errors import PatchPilotError

#: A finished refinement's events stay this long for a listener that comes late.
JOB_TTL_SECONDS = 300.0
#: A running refinement with no listener for this long is cancelled.
ABANDON_SECONDS = 30.0
#: Seconds a client told "busy" is asked to wait before trying again.
RETRY_AFTER_SECONDS = 5

K = TypeVar("K")
V = TypeVar("V")


class ServerBusy(PatchPilotError):
    """More work than the page takes at once; try again in ``RETRY_AFTER_SECONDS``."""


@dataclass
class Job:
    """A refinement in a thread, its events for the page, and its cancel switch."""

    id: str
    events: queue.Queue = field(default_factory=queue.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: float | None = None
    listeners: int = 0
    #: When a listener last left (or the job started, before any came).
    unheard_since: float | None = None


class JobRegistry:
    """Refinements by id, under one lock, forgotten when stale (see the module's notes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.clock = clock

    def add(self) -> Job:
        now = self.clock()
        with self._lock:
            self._expire(now)
            job = Job(f"j{next(self._ids)}", unheard_since=now)
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._expire(self.clock())
            return self._jobs.get(job_id)

    def finish(self, job: Job) -> None:
        with self._lock:
            job.finished = self.clock()

    @contextmanager
    def listening(self, job: Job) -> Iterator[None]:
        """While a client streams the job's events; a client that leaves before the job
        finished cancels it (nobody is waiting for its answer any more)."""
        with self._lock:
            job.listeners += 1
            job.unheard_since = None
        try:
            yield
        finally:
            with self._lock:
                job.listeners -= 1
                if job.listeners == 0:
                    job.unheard_since = self.clock()
                    if job.finished is None:
                        job.cancel.set()

    def cancel_all(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def running(self) -> int:
        """Jobs whose thread has not ended yet."""
        with self._lock:
            return sum(job.finished is None for job in self._jobs.values())

    def _expire(self, now: float) -> None:
        for job_id, job in list(self._jobs.items()):
            if job.finished is not None and now - job.finished > JOB_TTL_SECONDS:
                del self._jobs[job_id]
            elif (job.finished is None and job.listeners == 0 and job.unheard_since is not None
                  and now - job.unheard_since > ABANDON_SECONDS):
                job.cancel.set()


class WorkGate:
    """At most ``limit`` pieces of work admitted (running or waiting for the lock behind it)."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what = limit, what
        self._admitted = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        """Admit one more, or raise :class:`ServerBusy`; every ``enter`` needs its ``leave``."""
        with self._lock:
            if self._admitted >= self.limit:
                raise ServerBusy(f"the page is busy with {self.limit} {self.what} already; "
                                 f"try again in {RETRY_AFTER_SECONDS} s")
            self._admitted += 1

    def leave(self) -> None:
        with self._lock:
            self._admitted -= 1

    @contextmanager
    def admit(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    @property
    def admitted(self) -> int:
        with self._lock:
            return self._admitted


class BoundedCache(Generic[K, V]):
    """The newest ``max_items`` items (least recently used dropped first); thread-safe."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
