"""Work spread over a Ray cluster (``build-index --ray``). Ray is imported only here, and only
when a command asks for a cluster: without it nothing changes."""

from patchpilot.cluster.ray_pool import RayCluster, RayRenderPool, connect

__all__ = ["RayCluster", "RayRenderPool", "connect"]
