"""Index management behind ``build-index``: which index to build, whether to add to it or
rebuild it, starting a user's index from the shipped one, and adding descriptors to an old
index. Every change publishes a new version under the index's lock (``layout.py``)."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from patchpilot.constants import DEFAULT_INDEX_SIZE_PER_SYNTH
from patchpilot.audio.descriptors import DESCRIPTOR_SCHEMA
from patchpilot.embed import DEFAULT_EMBEDDER, get_embedder
from patchpilot.embed.sketch import N_BANDS, N_WINDOWS
from patchpilot.index.builder import BuildPlan, BuildReport, IndexBuilder
from patchpilot.index.batches import CHUNK_PRESETS, ProgressCallback, chunks_by_synth
from patchpilot.index.describing import describe_missing
from patchpilot.index.index import INDEX_FILES, STORE_NAME, PresetIndex
from patchpilot.index.features import sketch_preset
from patchpilot.index.layout import OPTIONAL_INDEX_FILES, BuildLock, IndexFolder, checkpoint, write_arrays_atomically
from patchpilot.index.sketches import SKETCHES_NAME, write_sketches
from patchpilot.index.store import PresetStore
from patchpilot.index.workdir import Workdir
from patchpilot.paths import shipped_index_dir, user_index_dir
from patchpilot.synths import RenderPool, get_engine, register_plugin
from patchpilot.synths.registry import builtin_synths


#: Presets sketched and kept together by ``--describe`` (what an interrupt can lose at most).
SKETCH_CHUNK = CHUNK_PRESETS


@dataclass(frozen=True)
class BuildRequest:
    """What ``build-index`` was asked for."""

    #: The index folder (None: the user's own index).
    index: Path | None = None
    synths: tuple[str, ...] = field(default_factory=builtin_synths)
    #: The user's preset files and folders to add.
    presets: tuple[Path, ...] = ()
    factory: bool = True
    size_per_synth: int = DEFAULT_INDEX_SIZE_PER_SYNTH
    seed: int = 0
    embedder: str = DEFAULT_EMBEDDER
    clap_checkpoint: Path | None = None
    #: With ``presets``: rebuild everything instead of adding them to the index.
    rebuild: bool = False
    #: Leave out the user presets the index holds (kept by default on a rebuild).
    drop_user_presets: bool = False
    workers: int = 2
    #: VST3 instruments to index, by path or name (their synths join ``synths``).
    plugins: tuple[str, ...] = ()
    #: Render on a Ray cluster: ``auto`` (the cluster this machine belongs to) or its address.
    ray: str | None = None

    @property
    def target(self) -> Path:
        return self.index if self.index is not None else user_index_dir()


def build_index(request: BuildRequest, progress: ProgressCallback | None = None) -> tuple[BuildReport, bool]:
    """Build (or add presets to) an index. Returns the report and whether presets were
    added to an existing index rather than a new one built.

    Presets given to the user's own index that does not exist yet join a copy of the shipped
    index. Given presets are added to an existing index unless ``rebuild``; any other build
    keeps the user presets the index held unless ``drop_user_presets``."""
    target = request.target
    folder = IndexFolder(target)
    if request.presets and request.index is None and not request.rebuild and not folder.exists():
        seed_user_index(target)
    append = bool(request.presets) and not request.rebuild and folder.exists()
    synths = tuple(dict.fromkeys(request.synths + tuple(register_plugin(p) for p in request.plugins)))
    plan = BuildPlan(output=target, synths=synths, factory=request.factory, user_paths=request.presets,
                     size_per_synth=request.size_per_synth, seed=request.seed, embedder=request.embedder)
    embedder = get_embedder(request.embedder, clap_checkpoint=request.clap_checkpoint)
    with ExitStack() as stack:
        cluster = None
        if request.ray is not None:
            from patchpilot.cluster import connect

            cluster = stack.enter_context(connect(request.ray))
        builder = IndexBuilder(plan, workers=request.workers, progress=progress, append=append, embedder=embedder,
                               keep_user_presets=not request.drop_user_presets, cluster=cluster)
        return builder.build(), append


def seed_user_index(target: Path) -> bool:
    """Start the user's own index as a copy of the shipped one (when there is one)."""
    shipped = IndexFolder(shipped_index_dir()).readable()
    if shipped is None:
        return False
    folder = IndexFolder(target)
    with BuildLock(folder):
        work = Workdir(folder)
        work.recover()
        if folder.exists():  # another process seeded it meanwhile
            return False
        work.start("seed")
        shutil.rmtree(work.version_dir, ignore_errors=True)
        work.version_dir.mkdir()
        for name in INDEX_FILES + tuple(n for n in OPTIONAL_INDEX_FILES if (shipped / n).exists()):
            shutil.copy2(shipped / name, work.version_dir / name)
        work.finish({})
        work.publish_finished()
    return True


def describe_index(index: Path, *, workers: int = 2, progress: ProgressCallback | None = None) -> int:
    """Give an index what indexes built before them lack: the sound descriptors text queries
    need and the sketches retrieval scores (``index/sketches.py``), as a new version with
    everything else unchanged. Descriptors resume when interrupted; sketches are made again.
    Returns how many presets were given either."""
    folder = IndexFolder(index)
    with BuildLock(folder):
        Workdir(folder).recover()  # a finished build comes first: describe what it published
        return _describe_locked(folder, index, workers, progress)


def _describe_locked(folder: IndexFolder, index: Path, workers: int, progress: ProgressCallback | None) -> int:
    with PresetIndex.open(index) as base:
        work = Workdir(folder)
        key = f"describe:{base.files.name}"
        unsketched = missing_sketches(base)
        if not base.store.rows_without_descriptors(DESCRIPTOR_SCHEMA) and not unsketched and not _pending(work, key):
            return 0
        state = work.start(key)
        if not state.prepared:
            shutil.rmtree(work.version_dir, ignore_errors=True)
            work.version_dir.mkdir()
            for name in INDEX_FILES + tuple(n for n in OPTIONAL_INDEX_FILES if (base.files / n).exists()):
                if name != STORE_NAME:
                    shutil.copy2(base.files / name, work.version_dir / name)
            base.store.copy_to(work.version_dir / STORE_NAME)
            state.prepared = True
            work.save()
        with PresetStore(work.version_dir / STORE_NAME) as store:
            described = describe_missing(store, workers=workers, progress=progress)
            store.vacuum()
            sketched = add_sketches(base, work.version_dir, store=store, rows=unsketched, workers=workers,
                                    progress=progress, saved=work.path / "sketches")
        work.finish({"described": described, "sketched": sketched})
        work.publish_finished()
        return max(described, sketched)


def missing_sketches(index: PresetIndex) -> list[int]:
    """The index's presets that have no sketch."""
    rows = index.store.rows()
    have = set(index.sketches.rows.tolist()) if index.sketches is not None else set()
    return [r for r in rows if r not in have]


def add_sketches(base: PresetIndex, folder: Path, *, store: PresetStore | None = None, rows: list[int] | None = None,
                 workers: int = 2, progress: ProgressCallback | None = None,
                 pool_for: Callable[[str], RenderPool] | None = None, saved: Path | None = None) -> int:
    """Sketch ``rows`` (default: the presets of ``base`` without a sketch) of ``store``
    (default: ``base``'s) as a build would, rendering on ``pool_for(synth)`` (default: a
    local pool of ``workers``), and write ``base``'s sketches and these to ``folder`` (a new
    version of ``base``, or its own folder); returns how many were sketched (a preset the
    synth cannot play, or silent at every note, has none). With ``saved`` (a work folder),
    each chunk is kept there as it is done, and a run after an interrupt takes those again."""
    store = store if store is not None else base.store
    rows = rows if rows is not None else missing_sketches(base)
    if not rows:
        return 0
    progress = progress or (lambda stage, done, total: None)
    pool_for = pool_for or (lambda synth: get_engine(synth).render_pool(workers))
    notes = tuple(base.manifest.notes)
    made: dict[int, np.ndarray] = {}
    done = 0
    progress("sketch", done, len(rows))
    for pool, chunk_rows, chunk in chunks_by_synth(store, rows, pool_for, SKETCH_CHUNK):
        kept = saved / f"sketches-{chunk_rows[0]}-{chunk_rows[-1]}-{len(chunk_rows)}.npz" if saved else None
        found = _read_chunk(kept)
        if found is None:
            values = pool.map(partial(sketch_preset, notes), [sp.preset for sp in chunk],
                              on_crash=lambda item, why: None)
            found = {sp.row: v for sp, v in zip(chunk, values, strict=True) if v is not None}
            if kept is not None:
                _write_chunk(kept, found)
        made.update(found)
        done += len(chunk_rows)
        progress("sketch", done, len(rows))
    old = base.sketches
    new_rows = np.array(sorted(made), dtype=np.int64)
    new_data = np.stack([made[r] for r in new_rows]) if made else np.zeros((0, len(notes), N_WINDOWS, N_BANDS), np.uint8)
    if old is not None:
        new_rows, new_data = np.concatenate([old.rows, new_rows]), np.concatenate([old.data, new_data])
    write_sketches(folder / SKETCHES_NAME, new_rows, new_data)
    return len(made)


def _read_chunk(path: Path | None) -> dict[int, np.ndarray] | None:
    """A chunk of sketches an interrupted run kept; None when there is none (or it is damaged)."""
    if path is None or not path.exists():
        return None
    try:
        with np.load(path) as chunk:
            return dict(zip(chunk["rows"].tolist(), chunk["sketches"], strict=True))
    except Exception:  # noqa: BLE001 - a chunk cut short by the interrupt is done again
        return None


def _write_chunk(path: Path, sketches: dict[int, np.ndarray]) -> None:
    """Keep a chunk of sketches in the work folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.array(sorted(sketches), dtype=np.int64)
    data = np.stack([sketches[r] for r in rows]) if sketches else np.zeros((0,), np.uint8)
    write_arrays_atomically(path, {"rows": rows, "sketches": data})
    checkpoint("sketch-chunk")


def _pending(work: Workdir, key: str) -> bool:
    """Whether the work folder holds this describe run, interrupted."""
    state = work.read_state()
    return state is not None and state.key == key
