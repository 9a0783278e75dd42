"""Work spread over a Ray cluster (``build-index --ray``, ``corpus --ray``). Ray is imported
only here, and only when a command asks for a cluster: without it nothing changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from patchpilot.cluster.ray_pool import RayCluster, RayRenderPool, connect

if TYPE_CHECKING:
    from patchpilot.synths.base import RenderPool, SynthEngine


def render_pool(engine: SynthEngine, workers: int, cluster: RayCluster | None = None) -> RenderPool:
    """The engine's local pool of ``workers`` voices, or one actor per CPU of ``cluster``."""
    return engine.render_pool(workers) if cluster is None else RayRenderPool(engine, cluster)


__all__ = ["RayCluster", "RayRenderPool", "connect", "render_pool"]
