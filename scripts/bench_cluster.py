#!/usr/bin/env python
"""Build throughput on a Ray cluster against the local pool (``build-index --ray``).

    python -m scripts.bench_cluster                        # writes the "cluster" section
    python -m scripts.bench_cluster --dexed 128 --vital 32 --no-report
    python -m scripts.bench_cluster --corpus --dexed 256 --vital 32   # the "corpus" section

What a build does per preset (render it at the index's five notes and extract its features,
``index/features.analyse_preset``) is timed on the same presets (the first designed presets
and variants of each synth's factory banks) four ways: the local thread pool with one and
two workers, and Ray actors on a cluster of one node with one CPU and of two nodes with one
CPU each, started on this machine (every node on 127.0.0.1, Ray's workers at the
local pool's priority: Ray starts them at nice 15 unless told otherwise). Each way runs once untimed (the
actors start, the synths load), then twice timed; the better run counts. Ray's overhead is
its one-worker time against the local one-worker time; its scaling, two workers against one.
The projection divides one million presets by the measured presets per second per core,
assuming the rate scales with cores (the benchmark's two-worker scaling says how far that
holds); the driver's own work (saving chunks, assembling) is left out.

With ``--corpus``: the whole ``patchpilot corpus`` command (patches made, rendered at its
nine default slots, analysed, shards written by the driver) timed on the local pool with two
workers and on the two-node Ray cluster, each into a fresh folder; the projection is for one
million patches per synth at nine renders each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy's first import

from scripts.bench_match.report import header, write_section

from patchpilot.constants import INDEX_NOTES
from patchpilot.embed import get_embedder
from patchpilot.index.features import analyse_preset
from patchpilot.index.gather import designed_and_variants
from patchpilot.paths import factory_presets_dir
from patchpilot.synths import get_engine

PROJECTED_PRESETS = 1_000_000


def timed(pool, jobs: list, embedder) -> float:
    """Presets per second of the better of two runs, after one untimed run."""
    work = partial(analyse_preset, embedder=embedder)
    list(pool.map(work, jobs[: max(4, len(jobs) // 8)]))
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        list(pool.map(work, jobs))
        best = min(best, time.perf_counter() - started)
    return len(jobs) / best


def ray_rates(jobs_by_synth: dict[str, list], embedder) -> dict[tuple[str, int], float]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node on 127.0.0.1
    from ray.cluster_utils import Cluster

    from patchpilot.cluster import RayRenderPool, connect

    rates = {}
    for nodes in (1, 2):
        # Ray starts its workers at nice 15; here they run at 0, as the local pool's threads do
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                                "_system_config": {"worker_niceness": 0}})
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        try:
            with connect(cluster.address) as ray_cluster:
                for synth, jobs in jobs_by_synth.items():
                    with RayRenderPool(get_engine(synth), ray_cluster) as pool:
                        rates[(synth, nodes)] = timed(pool, jobs, embedder)
                    print(f"  ray {nodes} node(s) {synth}: {rates[(synth, nodes)]:.1f} presets/s", file=sys.stderr)
        finally:
            cluster.shutdown()
    return rates


def corpus_rates(sizes: dict[str, int]) -> dict[tuple[str, str], float]:
    """Patches per second of the whole corpus command, locally (2 workers) and on Ray (2 nodes)."""
    import tempfile

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray.cluster_utils import Cluster

    from patchpilot.cluster import connect
    from patchpilot.corpus import CorpusBuilder, CorpusPlan

    def run(where: str, synth: str, cluster=None) -> None:
        with tempfile.TemporaryDirectory() as folder:
            plan = CorpusPlan(Path(folder) / "c", sizes[synth], (synth,), shard_size=64)
            started = time.perf_counter()
            CorpusBuilder(plan, workers=2, cluster=cluster).build()
            rates[(synth, where)] = sizes[synth] / (time.perf_counter() - started)
            print(f"  corpus {where} {synth}: {rates[(synth, where)]:.1f} patches/s", file=sys.stderr)

    rates: dict[tuple[str, str], float] = {}
    for synth in sizes:
        run("local", synth)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "_system_config": {"worker_niceness": 0}})
    cluster.add_node(num_cpus=1)
    try:
        with connect(cluster.address) as ray_cluster:
            for synth in sizes:
                run("ray", synth, ray_cluster)
    finally:
        cluster.shutdown()
    return rates


def corpus_section(args: argparse.Namespace) -> str:
    from patchpilot.corpus.build import DEFAULT_NOTES, DEFAULT_VELOCITIES

    slots = len(DEFAULT_NOTES) * len(DEFAULT_VELOCITIES)
    sizes = {"dexed": args.dexed, "vital": args.vital}
    rates = corpus_rates(sizes)
    lines = ["| synth | patches | local, 2 workers | Ray, 2 nodes x 1 CPU | renders/s per core (Ray) | "
             "1M patches on 64 cores | on 512 cores |", "|---|---|---|---|---|---|---|"]
    for synth, size in sizes.items():
        per_core = rates[(synth, "ray")] / 2
        hours = [PROJECTED_PRESETS / (per_core * cores) / 3600 for cores in (64, 512)]
        lines.append(f"| {synth} | {size} | {rates[(synth, 'local')]:.1f} patches/s | {rates[(synth, 'ray')]:.1f} "
                     f"patches/s | {per_core * slots:.0f} | {hours[0]:.1f} h | {hours[1] * 60:.0f} min |")
    command = f"python -m scripts.bench_cluster --corpus --dexed {args.dexed} --vital {args.vital}"
    about = __doc__.split("\n\n")[3].strip().replace("\n", " ")
    return header("Corpus throughput (`patchpilot corpus`)", command) + "\n" + about + "\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dexed", type=int, default=256, help="DX7 presets timed")
    parser.add_argument("--vital", type=int, default=64, help="Vital presets timed")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--corpus", action="store_true", help="time the corpus command instead")
    args = parser.parse_args()
    if args.corpus:
        text = corpus_section(args)
        if args.no_report:
            print(text)
        else:
            write_section("corpus", text)
        return
    embedder = get_embedder("timbre")
    jobs_by_synth = {}
    for synth, count in (("dexed", args.dexed), ("vital", args.vital)):
        presets = designed_and_variants(synth, factory_presets_dir(), count, 0)[:count]
        jobs_by_synth[synth] = [(row, preset, INDEX_NOTES) for row, (_, preset) in enumerate(presets)]
    local = {}
    for synth, jobs in jobs_by_synth.items():
        for workers in (1, 2):
            with get_engine(synth).render_pool(workers) as pool:
                local[(synth, workers)] = timed(pool, jobs, embedder)
            print(f"  local {workers} worker(s) {synth}: {local[(synth, workers)]:.1f} presets/s", file=sys.stderr)
    ray = ray_rates(jobs_by_synth, embedder)
    lines = ["| synth | presets | local, 1 worker | local, 2 workers | Ray, 1 node x 1 CPU | Ray, 2 nodes x 1 CPU | "
             "Ray overhead at 1 worker | Ray 2 workers / 1 | presets/s per core (Ray, 2) | 1M presets on 64 cores | "
             "on 512 cores |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for synth, jobs in jobs_by_synth.items():
        per_core = ray[(synth, 2)] / 2
        hours = [PROJECTED_PRESETS / (per_core * cores) / 3600 for cores in (64, 512)]
        lines.append(f"| {synth} | {len(jobs)} | {local[(synth, 1)]:.1f}/s | {local[(synth, 2)]:.1f}/s | "
                     f"{ray[(synth, 1)]:.1f}/s | {ray[(synth, 2)]:.1f}/s | "
                     f"{local[(synth, 1)] / ray[(synth, 1)] - 1:+.1%} | x{ray[(synth, 2)] / ray[(synth, 1)]:.2f} | "
                     f"{per_core:.1f} | {hours[0]:.1f} h | {hours[1] * 60:.0f} min |")
    command = f"python -m scripts.bench_cluster --dexed {args.dexed} --vital {args.vital}"
    text = (header("Build throughput on a Ray cluster", command) + "\n"
            + __doc__.split("\n\n", 2)[2].strip().replace("\n", " ") + "\n\n" + "\n".join(lines) + "\n")
    if args.no_report:
        print(text)
    else:
        write_section("cluster", text)


if __name__ == "__main__":
    main()
