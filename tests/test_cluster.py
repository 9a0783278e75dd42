"""``build-index --ray`` and ``corpus --ray`` on a real Ray cluster of two nodes on this
machine, every node and the driver on 127.0.0.1: the index equals a local build's, after a
node lost mid-build too, and after the driver was killed and run again; a crashing preset is
named and skipped; a synth that cannot load on a node is named with the node; a corpus equals
the local one, after a node lost mid-run too."""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from patchpilot.errors import SynthError
from patchpilot.index.batches import ProgressCallback
from patchpilot.index.builder import BuildPlan, IndexBuilder

from conftest import TEST_NOTES, assert_same_corpus, assert_same_index, index_contents

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray (patchpilot[cluster])")

#: Dexed presets of the plan: two feature chunks (64 presets each), so a build can stop between them.
SIZE = 70

DRIVER_SCRIPT = """
import sys
from pathlib import Path
from patchpilot.cluster import connect
from patchpilot.index.builder import BuildPlan, IndexBuilder
out, banks, address = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
plan = BuildPlan(output=out, synths=("dexed",), factory_root=banks, size_per_synth=70, notes=(48, 60, 72))
with connect(address) as cluster:
    IndexBuilder(plan, cluster=cluster).build()
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[SimpleNamespace]:
    """Two nodes of one CPU each. Ray puts a node on the machine's outward address unless
    told that this is a one-machine cluster; here only loopback may be used."""
    before = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray.cluster_utils import Cluster

    ray_cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = ray_cluster.add_node(num_cpus=1)
    try:
        yield SimpleNamespace(cluster=ray_cluster, worker=worker, address=ray_cluster.address)
    finally:
        ray_cluster.shutdown()
        if before is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = before


@pytest.fixture(scope="module")
def local_build(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("local") / "index"
    IndexBuilder(_plan(out, tiny_banks), workers=2).build()
    return index_contents(out)


def _plan(out: Path, banks: Path) -> BuildPlan:
    assert TEST_NOTES == (48, 60, 72)  # the driver script builds at these notes
    return BuildPlan(output=out, synths=("dexed",), factory_root=banks, size_per_synth=SIZE, notes=TEST_NOTES)


def _ray_build(out: Path, banks: Path, address: str, progress=None):
    from patchpilot.cluster import connect

    with connect(address) as ray_cluster:
        return IndexBuilder(_plan(out, banks), cluster=ray_cluster, progress=progress).build()


def test_a_build_across_two_nodes_is_the_local_build(cluster: SimpleNamespace, tiny_banks: Path, tmp_path: Path,
                                                      local_build: dict) -> None:
    stages: set[str] = set()
    report = _ray_build(tmp_path / "index", tiny_banks, cluster.address,
                        progress=lambda stage, done, total: stages.add(stage))
    assert report.cluster == "2 nodes, 2 CPUs"
    assert {f"{stage} on a Ray cluster (2 nodes, 2 CPUs)" for stage in ("render", "describe")} <= stages
    assert_same_index(tmp_path / "index", local_build)


@contextmanager
def a_node_removed_mid_run(cluster: SimpleNamespace, stage: str = "") -> Iterator[ProgressCallback]:
    """A progress callback that removes the worker node once a run of ``stage`` is under way
    (its actor dies with the node); the node is added back afterwards, and the run must
    have removed it."""
    removed: list[bool] = []

    def progress(name: str, done: int, total: int) -> None:
        if name.startswith(stage) and 0 < done < total and not removed:
            cluster.cluster.remove_node(cluster.worker)
            removed.append(True)

    try:
        yield progress
        assert removed
    finally:
        if removed:
            cluster.worker = cluster.cluster.add_node(num_cpus=1)
            cluster.cluster.wait_for_nodes()


def test_a_node_lost_mid_build_costs_only_its_chunks(cluster: SimpleNamespace, tiny_banks: Path, tmp_path: Path,
                                                     local_build: dict) -> None:
    with a_node_removed_mid_run(cluster, "render") as progress:
        _ray_build(tmp_path / "index", tiny_banks, cluster.address, progress)
    assert_same_index(tmp_path / "index", local_build)


def test_a_killed_driver_resumes_from_what_was_stored(cluster: SimpleNamespace, tiny_banks: Path, tmp_path: Path,
                                                      local_build: dict) -> None:
    out = tmp_path / "index"
    env = dict(os.environ, PATCHPILOT_TEST_KILL_AT="render")  # killed once the first chunk is saved
    killed = subprocess.run([sys.executable, "-c", DRIVER_SCRIPT, str(out), str(tiny_banks), cluster.address],
                            capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    saved = list((out / "build").rglob("chunk-*.npz"))
    assert len(saved) == 1  # the first chunk was kept ...
    _ray_build(out, tiny_banks, cluster.address)
    assert_same_index(out, local_build)  # ... and the second build finished from it


def test_an_item_that_kills_its_worker_is_named_and_the_others_play(cluster: SimpleNamespace) -> None:
    from patchpilot.cluster import RayRenderPool, connect
    from patchpilot.synths import get_engine

    def double_or_die(_voice: object, item: int) -> int:
        if item == 3:
            os._exit(1)  # as a plugin that segfaults takes its process down
        return 2 * item

    with connect(cluster.address) as ray_cluster, RayRenderPool(get_engine("dexed"), ray_cluster) as pool:
        results = list(pool.map(double_or_die, range(8), on_crash=lambda item, why: f"skipped {item}: {why}"))
        assert results[:3] == [0, 2, 4] and results[4:] == [8, 10, 12, 14]
        assert results[3].startswith("skipped 3: the synth crashed")
        assert pool.crashes >= 2
        with pytest.raises(SynthError, match="crashed"):
            list(pool.map(double_or_die, [3]))
        assert list(pool.map(double_or_die, [5])) == [10]  # the pool goes on


def test_a_synth_that_cannot_load_on_a_node_names_the_node(cluster: SimpleNamespace) -> None:
    from patchpilot.cluster import RayRenderPool, connect

    absent = SimpleNamespace(name="vst3:absent", index_record=lambda: {"synth": "vst3:absent",
                                                                      "path": "/nowhere/Absent.vst3"})
    with connect(cluster.address) as ray_cluster:
        with pytest.raises(SynthError, match=r"vst3:absent cannot be loaded on 127\.0\.0\.1 \(node [0-9a-f]+\)"):
            RayRenderPool(absent, ray_cluster)


def test_a_cluster_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    from patchpilot.errors import UsageError

    from patchpilot.cluster import connect

    with pytest.raises(UsageError, match="could not join a Ray cluster at 127.0.0.1:1"):
        connect("127.0.0.1:1")


def test_build_index_with_ray_says_where_it_rendered(cluster: SimpleNamespace, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from patchpilot.cli import app

    result = CliRunner().invoke(app, ["build-index", "--index", str(tmp_path / "index"), "--synth", "dexed",
                                      "--size", "8", "--ray", cluster.address])
    assert result.exit_code == 0, result.output
    assert "rendered on a Ray cluster: 2 nodes, 2 CPUs" in result.output
    assert len(index_contents(tmp_path / "index")) >= 8


def _corpus_plan(out: Path, banks: Path):  # a CorpusPlan
    from patchpilot.corpus import CorpusPlan

    return CorpusPlan(out, 12, ("dexed",), factory_root=banks, shard_size=4, notes=(48, 60), velocities=(40, 127))


@pytest.fixture(scope="module")
def local_corpus(tiny_banks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from patchpilot.corpus import CorpusBuilder

    out = tmp_path_factory.mktemp("corpus") / "local"
    CorpusBuilder(_corpus_plan(out, tiny_banks)).build()
    return out


def test_a_corpus_across_two_nodes_is_the_local_corpus(cluster: SimpleNamespace, tiny_banks: Path, tmp_path: Path,
                                                        local_corpus: Path) -> None:
    from patchpilot.cluster import connect
    from patchpilot.corpus import CorpusBuilder

    stages: set[str] = set()
    with connect(cluster.address) as ray_cluster:
        report = CorpusBuilder(_corpus_plan(tmp_path / "ray", tiny_banks), cluster=ray_cluster,
                               progress=lambda stage, done, total: stages.add(stage)).build()
    assert report.cluster == "2 nodes, 2 CPUs" and "corpus on a Ray cluster (2 nodes, 2 CPUs)" in stages
    assert_same_corpus(tmp_path / "ray", local_corpus)


def test_a_node_lost_mid_corpus_costs_only_its_work(cluster: SimpleNamespace, tiny_banks: Path, tmp_path: Path,
                                                     local_corpus: Path) -> None:
    from patchpilot.cluster import connect
    from patchpilot.corpus import CorpusBuilder

    with a_node_removed_mid_run(cluster) as progress, connect(cluster.address) as ray_cluster:
        CorpusBuilder(_corpus_plan(tmp_path / "ray", tiny_banks), cluster=ray_cluster, progress=progress).build()
    assert_same_corpus(tmp_path / "ray", local_corpus)
