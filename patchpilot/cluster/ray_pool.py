"""A render pool on a Ray cluster: the build's rendering and feature extraction spread over
every node, with the interface of :class:`~patchpilot.synths.base.RenderPool`.

One long-lived actor per CPU slot holds one voice of the synth (the synth, or a plugin,
loaded once) and plays chunks of presets on it. The driver keeps everything else: the order
of the results, the saved chunks, the assembly and the atomic publish, so a Ray build writes
what a local build writes and resumes the same way.

Faults: an actor lost with its worker process or its whole node costs its chunk in flight,
which is played again on another actor; a chunk that kills a second actor is played one item
at a time, and an item that kills its actor again is handed to ``on_crash`` (as
``synths/isolated.py`` does on one machine). A synth that cannot be loaded on a node stops
the pool before any work, with one line naming the node.
"""

from __future__ import annotations

import logging
import math
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import MissingExtraError, SynthError, UsageError
from patchpilot.synths.base import RenderPool, SynthEngine, Voice

CrashHandler = Callable[[Any, str], Any]

#: Chunks one ``map`` call is cut into per actor: enough to keep the nodes evenly busy, few
#: enough that Ray's cost per call (a millisecond or two) is noise next to the renders.
CHUNKS_PER_ACTOR = 4
#: How long joining waits for the cluster's address to answer.
CONNECT_TIMEOUT_SECONDS = 5.0
#: How long the pool waits for its actors to start (a cluster without a free CPU for each).
START_TIMEOUT_SECONDS = 120.0


def import_ray():  # noqa: ANN201 - the ray module
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("a Ray cluster needs Ray: pip install 'patchpilot[cluster]'") from None
    return ray


@dataclass
class RayCluster:
    """A connection to a Ray cluster; closing it disconnects what :func:`connect` connected."""

    address: str
    owned: bool = True

    def nodes(self) -> list[dict]:
        """The nodes alive now: ``{"id", "ip", "cpus"}`` each."""
        ray = import_ray()
        return [{"id": n["NodeID"], "ip": n["NodeManagerAddress"], "cpus": int(n["Resources"].get("CPU", 0))}
                for n in ray.nodes() if n.get("Alive")]

    def cpus(self) -> int:
        return sum(node["cpus"] for node in self.nodes())

    def describe(self) -> str:
        nodes = self.nodes()
        return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}, {sum(n['cpus'] for n in nodes)} CPUs"

    def close(self) -> None:
        ray = import_ray()
        if self.owned and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(address: str = "auto") -> RayCluster:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine belongs to, or
    ``RAY_ADDRESS``). One line of error when there is none."""
    ray = import_ray()
    if ray.is_initialized():
        return RayCluster(address, owned=False)
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"could not join a Ray cluster at {address}: {first}") from None
    return RayCluster(address)


def _check_reachable(address: str) -> None:
    """Fail at once on a ``host:port`` nothing listens on (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as error:
        raise UsageError(f"could not join a Ray cluster at {address}: {error.strerror or error}") from None


class _Player:
    """Lives on a node: one voice of the synth, kept from chunk to chunk."""

    def __init__(self, synth: str, record: dict | None, sample_rate: int) -> None:
        import ray

        self.where = f"{ray.util.get_node_ip_address()} (node {ray.get_runtime_context().get_node_id()[:12]})"
        self.synth, self.sample_rate = synth, sample_rate
        self.voice: Voice | None = None
        self.error = ""
        try:
            from patchpilot.synths import get_engine, remember_engine

            if record is not None:
                remember_engine(synth, record, replace=True)
            self.engine = get_engine(synth)
            self.voice = self.engine.new_voice(sample_rate)
        except Exception as error:  # noqa: BLE001 - reported by ready(), naming the node
            self.error = str(error) if isinstance(error, SynthError) else f"{type(error).__name__}: {error}"

    def ready(self) -> tuple[str, str]:
        """Where this actor runs, and why its synth could not be loaded ("" when it was)."""
        return self.where, self.error

    def fresh(self) -> None:
        """A fresh voice: what it plays next does not depend on what it played before."""
        if self.voice is not None:
            self.voice = self.engine.new_voice(self.sample_rate)

    def run(self, function: Callable[[Voice, Any], Any], items: list) -> list:
        if self.voice is None:
            raise SynthError(f"{self.synth} cannot be loaded on {self.where}: {self.error}")
        return [function(self.voice, item) for item in items]


class RayRenderPool(RenderPool):
    """:class:`RenderPool`'s interface on a Ray cluster: ``actors`` actors (default: one per
    CPU of the cluster), each holding a voice of ``engine``. Functions and items given to
    :meth:`map` must pickle (module-level functions, ``functools.partial``)."""

    in_process = False

    def __init__(self, engine: SynthEngine, cluster: RayCluster, sample_rate: int = ANALYSIS_SAMPLE_RATE_HZ,
                 actors: int | None = None) -> None:
        ray = import_ray()
        self.engine, self.sample_rate = engine, sample_rate
        self.workers = max(1, actors or cluster.cpus())
        self._executors = []
        self._remote = ray.remote(num_cpus=1, max_restarts=0, max_concurrency=1)(_Player)
        self._record = engine.index_record()
        #: Actors lost (a worker process or a node) so far.
        self.crashes = 0
        self._actors: list = []
        self._where: dict = {}
        self._starting: dict = {}  # ready() reference -> replacement actor not yet started
        self._start([self._spawn() for _ in range(self.workers)])

    # -- actors ---------------------------------------------------------------------------
    def _spawn(self):  # noqa: ANN202 - a Ray actor handle
        return self._remote.options(scheduling_strategy="SPREAD").remote(self.engine.name, self._record,
                                                                         self.sample_rate)

    def _start(self, actors: list) -> None:
        """Wait for the first actors; any that cannot load the synth stops the pool, named."""
        ray = import_ray()
        references = [actor.ready.remote() for actor in actors]
        ready, waiting = ray.wait(references, num_returns=len(references), timeout=START_TIMEOUT_SECONDS)
        if waiting:
            self._kill(actors)
            raise SynthError(f"the Ray cluster found no free CPU for {len(waiting)} of {len(actors)} "
                             f"{self.engine.name} workers within {START_TIMEOUT_SECONDS:.0f} s")
        failures = []
        for actor, reference in zip(actors, references):
            where, error = ray.get(reference)
            self._where[actor] = where
            if error:
                failures.append(f"{self.engine.name} cannot be loaded on {where}: {error}")
        if failures:
            self._kill(actors)
            raise SynthError(failures[0] + (f" (and {len(failures) - 1} more workers)" if len(failures) > 1 else ""))
        self._actors = list(actors)

    def _replace(self) -> None:
        """Start an actor for one that was lost; it joins once it has started (a lost node's
        CPUs are not there to start it on, and nothing waits for it)."""
        actor = self._spawn()
        self._starting[actor.ready.remote()] = actor

    @staticmethod
    def _kill(actors: Iterable) -> None:
        ray = import_ray()
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass

    # -- work -----------------------------------------------------------------------------
    def map(self, function: Callable[[Voice, Any], Any], items: Iterable, on_crash: CrashHandler | None = None
            ) -> Iterator:
        """``function(voice, item)`` for each item on the cluster's actors, in order. An item
        that killed two actors gives ``on_crash(item, reason)`` (or raises :class:`SynthError`
        without a handler)."""
        ray = import_ray()
        items = list(items)
        results: list[Any] = [None] * len(items)
        if not items:
            return iter(results)
        size = max(1, math.ceil(len(items) / (CHUNKS_PER_ACTOR * max(1, len(self._actors)))))
        # (positions, strikes): strikes counts the actors the chunk was in flight on when they died
        queue = deque((list(range(first, min(first + size, len(items)))), 0) for first in range(0, len(items), size))
        shipped = ray.put(function)
        idle = list(self._actors)
        running: dict = {}
        while queue or running:
            while queue and idle:
                actor = idle.pop()
                positions, strikes = queue.popleft()
                running[actor.run.remote(shipped, [items[p] for p in positions])] = (actor, positions, strikes)
            waiting = list(running) + list(self._starting)
            if not waiting:
                raise SynthError(f"no {self.engine.name} worker is left on the Ray cluster")
            done, _ = ray.wait(waiting, num_returns=1, timeout=None if running else START_TIMEOUT_SECONDS)
            if not done:
                raise SynthError(f"no {self.engine.name} worker is left on the Ray cluster (none could be "
                                 f"started again within {START_TIMEOUT_SECONDS:.0f} s)")
            reference = done[0]
            if reference in self._starting:
                self._joined(reference, idle)
                continue
            actor, positions, strikes = running.pop(reference)
            try:
                for position, result in zip(positions, ray.get(reference)):
                    results[position] = result
                idle.append(actor)
            except ray.exceptions.RayActorError:
                self._lost(actor)
                if strikes == 0:
                    queue.appendleft((positions, 1))  # most likely its node or process, not its items
                elif len(positions) > 1:
                    queue.extendleft((([p], 1) for p in reversed(positions)))
                else:
                    reason = (f"the synth crashed while rendering it (two {self.engine.name} workers on the Ray "
                              "cluster died)")
                    if on_crash is None:
                        raise SynthError(reason) from None
                    results[positions[0]] = on_crash(items[positions[0]], reason)
        return iter(results)

    def _lost(self, actor) -> None:  # noqa: ANN001
        self.crashes += 1
        if actor in self._actors:
            self._actors.remove(actor)
        self._kill([actor])
        self._replace()

    def _joined(self, reference, idle: list) -> None:  # noqa: ANN001
        ray = import_ray()
        actor = self._starting.pop(reference)
        try:
            where, error = ray.get(reference)
        except ray.exceptions.RayActorError:
            return
        if error:
            self._kill([actor])
            return
        self._where[actor] = where
        self._actors.append(actor)
        idle.append(actor)

    def reset(self) -> None:
        """Fresh voices on every actor; an actor found lost is replaced, as in :meth:`map`."""
        ray = import_ray()
        for actor, reference in [(actor, actor.fresh.remote()) for actor in list(self._actors)]:
            try:
                ray.get(reference)
            except ray.exceptions.RayActorError:
                self._lost(actor)

    def nodes(self) -> int:
        """Nodes the pool's actors run on."""
        return len({self._where[actor] for actor in self._actors})

    def close(self) -> None:
        self._kill(self._actors + list(self._starting.values()))
        self._actors, self._starting = [], {}
