"""``build-index``: presets -> renders -> features -> a new published version of an index.

The stages, each in its own module: gather the presets (``gather.py``), store them in the
work folder's store, render them into feature chunks (``features.py``), describe them for
text queries (``describing.py``), render the projection's training queries
(``training.py``), assemble a complete version folder (``assemble.py``) and publish it
(``layout.py``). Everything happens in the index's ``build/`` folder under its lock
(``workdir.py``): a build killed at any point resumes where it stopped when the same command
runs again, and readers keep the previous version until the new one is published.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from functools import partial
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from patchpilot.constants import DEFAULT_INDEX_SIZE_PER_SYNTH, INDEX_NOTES
from patchpilot.embed import Embedder, get_embedder
from patchpilot.embed.transform import DEFAULT_DIM
from patchpilot.errors import IndexLoadError, PresetError, UsageError
from patchpilot.index.assemble import Assembly, assemble
from patchpilot.index.batches import ProgressCallback, chunks_by_synth
from patchpilot.index.describing import describe_missing
from patchpilot.index.features import Analysis, FeatureChunks, analyse_preset
from patchpilot.index.gather import Gathered, Source, as_stored, designed_and_variants, kept_user_presets, user_presets
from patchpilot.index.index import STORE_NAME, PresetIndex
from patchpilot.index.layout import BuildLock, IndexFolder, checkpoint
from patchpilot.index.store import PresetStore
from patchpilot.index.training import TRAINING_QUERIES_PER_SYNTH, TrainingQuery, plan_queries, query_features
from patchpilot.index.workdir import Workdir
from patchpilot.paths import factory_presets_dir
from patchpilot.synths import Preset, RenderPool, Voice, get_engine
from patchpilot.synths.registry import builtin_synths

if TYPE_CHECKING:
    from patchpilot.cluster import RayCluster

#: Training queries of the learned projection, kept in the work folder until the end.
TRAINING_NAME = "training.npz"


@dataclass(frozen=True)
class BuildPlan:
    """What to build. Two builds with the same plan produce the same index."""

    output: Path
    synths: tuple[str, ...] = field(default_factory=builtin_synths)
    factory: bool = True
    factory_root: Path = field(default_factory=factory_presets_dir)
    user_paths: tuple[Path, ...] = ()
    size_per_synth: int = DEFAULT_INDEX_SIZE_PER_SYNTH
    seed: int = 0
    notes: tuple[int, ...] = INDEX_NOTES
    embedder: str = "timbre"
    dim: int = DEFAULT_DIM
    #: Learn the discriminant projection from training queries (off: PCA only).
    learn_projection: bool = True

    def key(self) -> str:
        data = asdict(self)
        data["output"] = None
        data["factory_root"] = str(self.factory_root.resolve())
        data["user_paths"] = sorted(str(p.resolve()) for p in self.user_paths)
        return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class BuildReport:
    path: Path
    presets: dict[str, int]
    #: Presets left out because they were silent or duplicated a sibling.
    skipped: list[str]
    appended: int = 0
    #: User presets the index held before and still holds.
    kept_user: int = 0
    #: Files that could not be read: (path, reason).
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: Presets the synth could not play: (preset id, reason).
    failed: list[tuple[str, str]] = field(default_factory=list)
    version: str = ""
    #: The Ray cluster that rendered (its nodes and CPUs), or "" for a local build.
    cluster: str = ""

    def to_state(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def from_state(cls, data: dict) -> BuildReport:
        data = dict(data)
        data["path"] = Path(data["path"])
        data["unreadable"] = [tuple(x) for x in data.get("unreadable", [])]
        data["failed"] = [tuple(x) for x in data.get("failed", [])]
        return cls(**data)


class IndexBuilder:
    """Builds a new version of the index at ``plan.output`` (or appends the plan's user
    presets to its current version). ``embedder`` overrides the plan's embedder by name (a
    CLAP embedder with its own checkpoint). A rebuild keeps the user presets the index holds
    unless ``keep_user_presets`` is false. With ``cluster`` the renders run on a Ray cluster
    (``cluster/ray_pool.py``) and everything else here, so the index is the one a local build
    makes. ``projection_pairs`` (raw features of one sound played two ways, e.g. a corpus's
    ``Corpus.velocity_pairs``) join the training queries' within-preset scatter."""

    def __init__(self, plan: BuildPlan, *, workers: int = 2, progress: ProgressCallback | None = None,
                 append: bool = False, embedder: Embedder | None = None, keep_user_presets: bool = True,
                 cluster: RayCluster | None = None,
                 projection_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.plan = plan
        self.projection_pairs = projection_pairs
        self.cluster = cluster
        self.folder = IndexFolder(plan.output)
        self.workers = max(1, workers)
        self.progress = progress or (lambda stage, done, total: None)
        self.append = append
        self.keep_user_presets = keep_user_presets
        self.embedder = embedder if embedder is not None else get_embedder(plan.embedder)
        if self.embedder.name != plan.embedder:
            raise UsageError(f"the plan names the {plan.embedder!r} embedder but {self.embedder.name!r} was given")

    # -- public -------------------------------------------------------------------------
    def build(self) -> BuildReport:
        self.embedder.load()  # a missing model fails before any work
        with BuildLock(self.folder):
            report = None
            while report is None:  # again when a finished build left by a killed run was published first
                base = self._open_base()
                try:
                    if base is not None and self.append:
                        # new presets are rendered at the notes the index already uses
                        self.plan = replace(self.plan, notes=base.manifest.notes)
                        base.check_embedder(self.embedder.identity)
                    report = self._build_locked(base)
                finally:
                    if base is not None:
                        base.close()
            self.folder.collect_garbage()  # the version this build read is free now
            return report

    # -- stages -------------------------------------------------------------------------
    def _open_base(self) -> PresetIndex | None:
        """The version appended to, or (rebuild) the one whose user presets are kept."""
        if not self.append and not self.keep_user_presets:
            return None
        if not self.folder.exists():
            if self.append:
                raise IndexLoadError(f"no index at {self.plan.output} to add presets to")
            return None
        return PresetIndex.open(self.plan.output)

    def _build_locked(self, base: PresetIndex | None) -> BuildReport | None:
        """The build, once the lock is held. None when the index changed first (a finished
        build of another run was published): the caller starts again from that version."""
        kept = [] if self.append or base is None else kept_user_presets(base.store)
        taken = base.store.preset_id_set() if self.append and base is not None else {pid for pid, *_ in kept}
        key = self._key(base, kept)
        work = Workdir(self.folder)
        left = work.recover()
        if left is not None:  # a finished build the process died before publishing: now published
            return BuildReport.from_state(left.report) if left.key == key else None
        gathered = self._gather(kept, taken)
        state = work.start(key)
        chunks = FeatureChunks(work.path / "features", len(self.plan.notes))
        if not state.prepared:
            self._prepare_store(work.path / STORE_NAME, gathered, base)
            state.prepared = True
            work.save()
        store = PresetStore(work.path / STORE_NAME)
        try:
            self._analyse_pending(store, chunks, base)
            describe_missing(store, progress=self.progress, pool_for=self._render_pool, stage=self._stage("describe"))
            training = None
            if not self.append and self.plan.learn_projection and self.embedder.fits_projection:
                training = self._training_queries(store, chunks, work.path / TRAINING_NAME)
            self.progress("index", 0, 1)
            loaded = chunks.load()
            shutil.rmtree(work.version_dir, ignore_errors=True)  # an interrupted assembly starts over
            skipped_rows = assemble(work.version_dir, store, loaded, training,
                                    Assembly(tuple(self.plan.notes), self.plan.dim, self.plan.learn_projection),
                                    self.embedder, base if self.append else None)
            labels = store.labels()
            with PresetStore(work.version_dir / STORE_NAME, readonly=True) as published:
                counts = published.synth_counts()
        finally:
            store.close()
        failed = [(labels[r][0], why) for r, why in sorted(loaded.failures.items()) if r in labels]
        left_out = set(skipped_rows)
        before = set(base.store.rows()) if self.append and base is not None else set(labels)
        report = BuildReport(
            self.plan.output, counts,
            skipped=[labels[r][0] for r in skipped_rows if r in labels and r not in loaded.failures],
            appended=len(set(labels) - before - left_out),
            kept_user=len(kept), unreadable=gathered.unreadable, failed=failed, version=state.version,
            cluster=self.cluster.describe() if self.cluster is not None else "")
        work.finish(report.to_state())
        checkpoint("finished")
        work.publish_finished()
        self.progress("index", 1, 1)
        return report

    def _key(self, base: PresetIndex | None, kept: list) -> str:
        """Everything that decides the result: the plan, the mode, the version built on and
        the user presets carried over."""
        pairs = ("" if self.projection_pairs is None else
                 hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in self.projection_pairs)).hexdigest())
        parts = [self.plan.key(), "append" if self.append else "build", pairs,
                 base.files.name if base is not None and self.append else "",
                 *sorted(f"{pid}={preset.fingerprint()}" for pid, preset, _ in kept)]
        return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]

    def _gather(self, kept: list[tuple[str, Preset, Source | None]], taken: set[str]) -> Gathered:
        items: list[tuple[str, Preset, Source | None]] = []
        if self.plan.factory and not self.append:
            for synth in self.plan.synths:
                items += [(pid, p, None) for pid, p in designed_and_variants(
                    synth, self.plan.factory_root, self.plan.size_per_synth, self.plan.seed)]
        items += kept
        readers = tuple(dict.fromkeys(builtin_synths() + tuple(self.plan.synths)))
        users = user_presets(self.plan.user_paths, readers, taken=taken)
        items += users.items
        if not items and not users.unreadable:
            raise UsageError("nothing to index: no factory banks selected and no --presets given")
        if not items:
            raise PresetError(f"none of the preset files could be read ({_first_reasons(users.unreadable)})")
        return Gathered(items, users.unreadable)

    def _prepare_store(self, path: Path, gathered: Gathered, base: PresetIndex | None) -> None:
        """The work store: (when appending) the base version's presets, then every gathered
        preset not there yet (same sound); rebuilt from scratch if a run died half-way."""
        path.unlink(missing_ok=True)
        if self.append and base is not None:
            base.store.copy_to(path)
        with PresetStore(path) as store:
            seen = store.fingerprints()
            fresh, sources = [], []
            added = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
            for preset_id, preset, source in gathered.items:
                stored = as_stored(preset)
                fingerprint = stored.fingerprint()
                if fingerprint in seen:
                    continue
                seen.add(fingerprint)
                fresh.append((preset_id, stored))
                if source is not None:
                    sources.append((preset_id, source.path, source.sha1, source.added or added))
            store.add(fresh)
            store.set_sources(sources)

    def _analyse_pending(self, store: PresetStore, chunks: FeatureChunks, base: PresetIndex | None) -> None:
        done = chunks.validate()
        existing = set(base.store.rows()) if self.append and base is not None else set()
        pending = [r for r in store.rows() if r not in done and r not in existing]
        total = len(pending) + len(done)
        stage = self._stage("render")
        self.progress(stage, len(done), total)
        notes = tuple(self.plan.notes)
        finished = len(done)
        for pool, chunk_rows, presets in chunks_by_synth(store, pending, self._render_pool):
            jobs = [(sp.row, sp.preset, notes) for sp in presets]
            results = list(pool.map(partial(analyse_preset, embedder=self.embedder), jobs, on_crash=_crashed_analysis))
            chunks.save(results)
            finished += len(chunk_rows)
            self.progress(stage, finished, total)
            checkpoint("render")

    def _stage(self, name: str) -> str:
        """A progress stage's name, saying where it renders: "render on a Ray cluster (2 nodes,
        4 CPUs)" (the CLI labels the first word)."""
        return name if self.cluster is None else f"{name} on a Ray cluster ({self.cluster.describe()})"

    def _render_pool(self, synth: str) -> RenderPool:
        """The synth's pool: the local one, or actors on the Ray cluster."""
        from patchpilot.cluster import render_pool

        return render_pool(get_engine(synth), self.workers, self.cluster)

    def _training_queries(self, store: PresetStore, chunks: FeatureChunks, path: Path) -> dict | None:
        """Render the training queries of the projection (once; kept in the work folder)."""
        if not path.exists():
            self._render_training_queries(store, chunks, path)
        with np.load(path) as data:
            training = {key: data[key] for key in ("rows", "played", "features")}
        if self.projection_pairs is not None:
            training["pairs"] = self.projection_pairs
        return training

    def _render_training_queries(self, store: PresetStore, chunks: FeatureChunks, path: Path) -> None:
        loaded = chunks.load()
        offset_of = dict(zip(loaded.rows.tolist(), loaded.offsets.tolist()))
        synth_of = store.synth_by_row()
        queries, features, played = [], [], []
        plans_by_synth: dict[str, list[TrainingQuery]] = {}
        for synth in sorted({synth_of[r] for r in offset_of}):
            synth_rows = [r for r in offset_of if synth_of[r] == synth]
            plans_by_synth[synth] = plan_queries(synth_rows, self.plan.notes, TRAINING_QUERIES_PER_SYNTH,
                                                 self.plan.seed + 17)
        total = sum(len(p) for p in plans_by_synth.values())
        done = 0
        stage = self._stage("train")
        self.progress(stage, 0, total)
        for synth, plans in plans_by_synth.items():
            presets = store.get_rows([q.row for q in plans])
            with self._render_pool(synth) as pool:
                results = pool.map(partial(_training_query, embedder=self.embedder),
                                   [(presets[q.row].preset, q) for q in plans], on_crash=lambda item, why: None)
                for query, result in zip(plans, results):
                    done += 1
                    if done % 32 == 0:
                        self.progress(stage, done, total)
                    if result is None:
                        continue
                    offset = offset_of[query.row]
                    queries.append(query.row)
                    features.append(result)
                    played.append(query.note + (0.0 if np.isnan(offset) else offset))
        self.progress(stage, total, total)
        temporary = path.with_name(f".{path.name}.tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, rows=np.array(queries, dtype=np.int64), played=np.array(played),
                     features=np.array(features, dtype=np.float32).reshape(len(features), -1))
        temporary.replace(path)


def _crashed_analysis(job: tuple[int, Preset, tuple[int, ...]], reason: str) -> Analysis:
    return Analysis(job[0], None, None, reason)


def _training_query(voice: Voice, item: tuple[Preset, TrainingQuery], embedder: Embedder) -> np.ndarray | None:
    preset, query = item
    return query_features(voice, preset, query, embedder)


def _first_reasons(unreadable: list[tuple[str, str]], count: int = 2) -> str:
    shown = "; ".join(f"{path}: {why}" for path, why in unreadable[:count])
    return shown + (f"; and {len(unreadable) - count} more" if len(unreadable) > count else "")
