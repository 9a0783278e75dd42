"""A render pool whose voices live in worker processes, for synths that may crash.

Third-party plugins can take the process down (a segfault, an abort); in a build that would
lose every preset, and the build could not even record which one did it. Here each worker
process holds one voice. When a worker dies (``BrokenProcessPool``), the items whose results
had not come back are played again one at a time, each in a fresh pool: the one that kills
its pool again is reported through ``on_crash`` and the others render normally.

Workers are started with ``spawn``, never ``fork``: a process that has loaded a plugin runs
the plugin's threads (JUCE's message thread), and a forked copy of it can deadlock.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import SynthError
from patchpilot.synths.base import RenderPool, RenderRequest, SynthEngine, Voice, play_request

CrashHandler = Callable[[Any, str], Any]

#: The worker's voice, or why it could not be made.
_voice: Voice | None = None
_voice_error: str = ""


def _start_worker(record: dict, sample_rate: int) -> None:
    global _voice, _voice_error
    # Nothing of ours is printed in a worker; whatever a plugin prints outside our quiet
    # blocks (while loading, while exiting, while crashing) must not reach the user's terminal.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        from patchpilot.synths import get_engine, remember_engine  # the registry makes the engine again

        remember_engine(record["synth"], record, replace=True)
        _voice = get_engine(record["synth"]).new_voice(sample_rate)
    except Exception as error:  # noqa: BLE001 - reported on every task instead of a silent broken pool
        _voice_error = f"{type(error).__name__}: {error}" if not isinstance(error, SynthError) else str(error)


def _run(function: Callable[[Voice, Any], Any], item: Any) -> Any:
    if _voice is None:
        raise SynthError(_voice_error or "the plugin could not be loaded in a worker process")
    return function(_voice, item)


class IsolatedRenderPool(RenderPool):
    """:class:`RenderPool`'s interface with one voice per worker process. ``function``\\ s
    and items given to :meth:`map` must pickle (module-level functions, ``functools.partial``)."""

    in_process = False

    def __init__(self, engine: SynthEngine, workers: int = 2, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> None:
        record = engine.index_record()
        if record is None:
            raise SynthError(f"{engine.name}: cannot be re-created in a worker process")
        self.engine = engine
        self.sample_rate = sample_rate
        self.workers = max(1, int(workers))
        self._record = record
        self._executors = []
        self._processes: ProcessPoolExecutor | None = None
        #: Worker processes lost to crashes so far, and results that came back.
        self.crashes = 0
        self.successes = 0

    def _pool(self) -> ProcessPoolExecutor:
        if self._processes is None:
            context = multiprocessing.get_context("spawn")
            self._processes = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                                  initargs=(self._record, self.sample_rate))
        return self._processes

    def _restart(self) -> None:
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)
            self._processes = None

    def map(self, function: Callable[[Voice, Any], Any], items: Iterable, on_crash: CrashHandler | None = None
            ) -> Iterator:
        """``function(voice, item)`` for each item in the worker processes, in order. An item
        whose render killed its worker gives ``on_crash(item, reason)`` (or raises
        :class:`SynthError` without a handler)."""
        items = list(items)
        results: list[Any] = [None] * len(items)
        finished = [False] * len(items)
        futures: list[Future] = []
        try:
            pool = self._pool()
            futures = [pool.submit(_run, function, item) for item in items]
            for index, future in enumerate(futures):
                results[index] = future.result()
                finished[index] = True
                self.successes += 1
        except BrokenProcessPool:
            self.crashes += 1
            for index, future in enumerate(futures):  # results that came back before the crash
                if not finished[index] and future.done() and not future.cancelled() and future.exception() is None:
                    results[index], finished[index] = future.result(), True
            self._restart()
            for index in [i for i, done in enumerate(finished) if not done]:
                results[index] = self._alone(function, items[index], on_crash)
        return iter(results)

    def _alone(self, function: Callable[[Voice, Any], Any], item: Any, on_crash: CrashHandler | None) -> Any:
        """One item in its own pool: tells the item that crashes from those that were only
        in flight when another one did."""
        try:
            result = self._pool().submit(_run, function, item).result()
            self.successes += 1
            return result
        except BrokenProcessPool:
            self.crashes += 1
            self._restart()
            if self.successes == 0 and self.crashes >= 3:
                raise SynthError(f"{self.engine.name}: every worker process died before rendering anything (a "
                                 "script that builds an index must start under `if __name__ == '__main__':`, "
                                 "as worker processes import it again)") from None
            reason = f"the plugin crashed while rendering it (worker process of {self.engine.name} died)"
            if on_crash is None:
                raise SynthError(reason) from None
            return on_crash(item, reason)

    def reset(self) -> None:
        """Nothing to do: a plugin voice is reset before every render (``vst3.py``)."""

    def imap(self, requests: Iterable[RenderRequest]) -> Iterator[np.ndarray]:
        yield from self.map(play_request, requests)

    def render(self, requests: Sequence[RenderRequest]) -> list[np.ndarray]:
        return list(self.imap(requests))

    def close(self) -> None:
        self._restart()
