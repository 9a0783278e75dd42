"""``patchpilot corpus``: render many patches per synth into shards for learning.

The patches (``patches.py``) are rendered at every (note, velocity) slot of the plan on the
synth's render pool, locally or on a Ray cluster's actors (``cluster/``), and analysed by
the index's embedder; each shard is written whole (``shards.py``). A run killed at any point
resumes with the same command: the shards on disk are kept and the others made. A larger
``size`` grows a finished corpus. A patch that crashes the synth is recorded as failed and
skipped, as ``build-index`` does.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from patchpilot import __version__
from patchpilot.audio.dsp import rms
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS
from patchpilot.corpus.patches import KINDS, PERTURBED_SHARE, CorpusPatch, PatchMaker
from patchpilot.corpus.shards import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    STATUS,
    CorpusError,
    read_manifest,
    read_shard,
    shard_name,
    write_shard,
)
from patchpilot.embed import Embedder, get_embedder
from patchpilot.errors import PatchPilotError, UsageError
from patchpilot.index.batches import ProgressCallback
from patchpilot.index.features import SILENT_RMS
from patchpilot.index.layout import LOCK_NAME, BuildLock, checkpoint, write_atomically
from patchpilot.paths import factory_presets_dir
from patchpilot.synths import Voice, get_engine
from patchpilot.synths.registry import BUILTIN


#: Synths a corpus can be made of (those with a factory bank to perturb).
CORPUS_SYNTHS = tuple(e.name for e in BUILTIN.values() if e.factory_bank)
DEFAULT_NOTES = (48, 60, 72)
DEFAULT_VELOCITIES = (64, 100, 127)
DEFAULT_SHARD_SIZE = 256
#: Level stored for a silent render.
SILENT_DB = -120.0


@dataclass(frozen=True)
class CorpusPlan:
    """What to make. Two runs with the same plan make the same corpus; ``size`` may grow."""

    output: Path
    size: int
    synths: tuple[str, ...] = CORPUS_SYNTHS
    seed: int = 0
    notes: tuple[int, ...] = DEFAULT_NOTES
    velocities: tuple[int, ...] = DEFAULT_VELOCITIES
    audio: bool = False
    shard_size: int = DEFAULT_SHARD_SIZE
    perturbed_share: float = PERTURBED_SHARE
    embedder: str = "timbre"
    factory_root: Path = field(default_factory=factory_presets_dir)

    def __post_init__(self) -> None:
        unknown = [s for s in self.synths if s not in CORPUS_SYNTHS]
        if unknown:
            raise UsageError(f"a corpus can be made of {' and '.join(CORPUS_SYNTHS)}, not {', '.join(unknown)}")
        if self.size < 1 or self.shard_size < 1:
            raise UsageError("a corpus needs at least one patch per synth and per shard")
        if not self.notes or not self.velocities:
            raise UsageError("a corpus needs at least one note and one velocity")
        if not all(0 <= n <= 127 for n in self.notes) or not all(1 <= v <= 127 for v in self.velocities):
            raise UsageError("notes are MIDI numbers 0-127 and velocities 1-127")

    @property
    def slots(self) -> list[tuple[int, int]]:
        """Every (note, velocity) each patch is rendered at."""
        return [(note, velocity) for note in self.notes for velocity in self.velocities]

    def shards(self) -> int:
        return math.ceil(self.size / self.shard_size)

    def numbers(self, shard: int) -> range:
        return range(shard * self.shard_size, min(self.size, (shard + 1) * self.shard_size))

    def key(self) -> str:
        """Everything that decides a patch's contents (not ``size``: a corpus may grow)."""
        data = asdict(self)
        for name in ("output", "size", "factory_root"):
            data.pop(name)
        data["factory_root"] = str(self.factory_root.resolve())
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class CorpusReport:
    path: Path
    #: Per synth: patches rendered, silent at every slot, and failed.
    counts: dict[str, dict[str, int]]
    #: Shards made by this run (the others were there already).
    made: int
    shards: int
    #: The Ray cluster that rendered, or "" for a local run.
    cluster: str = ""


@dataclass(frozen=True)
class PatchRender:
    """One patch rendered at every slot: features where audible, or why it failed."""

    audible: np.ndarray  # (k,) bool
    level_db: np.ndarray  # (k,)
    features: np.ndarray | None  # (k, d) float32 rows for audible slots, zeros elsewhere
    audio: np.ndarray | None = None  # (k, samples) float16
    failure: str = ""


def render_patch(voice: Voice, patch: CorpusPatch, slots: tuple[tuple[int, int], ...], embedder: Embedder,
                 dim: int, keep_audio: bool) -> PatchRender:
    """Play the patch at every slot (as the index plays its presets) and describe each render."""
    try:
        renders = [voice.render(patch.preset, note, velocity, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS)
                   for note, velocity in slots]
    except Exception as error:  # noqa: BLE001 - a patch the synth cannot play must not stop the corpus
        text = str(error) if isinstance(error, PatchPilotError) else f"{type(error).__name__}: {error}"
        return _failed(patch, " ".join(text.split()))
    audible = np.array([bool(np.isfinite(r).all()) and rms(r) > SILENT_RMS for r in renders])
    level = np.array([20 * np.log10(max(rms(r), 1e-6)) if ok else SILENT_DB for r, ok in zip(renders, audible)],
                     dtype=np.float32)
    features = np.zeros((len(slots), dim), np.float32)
    if audible.any():
        features[audible] = embedder.features([r for r, ok in zip(renders, audible) if ok])
    audio = None
    if keep_audio:
        length = _samples()
        audio = np.zeros((len(slots), length), np.float16)
        for slot, render in enumerate(renders):
            clean = np.nan_to_num(render[:length])
            audio[slot, : len(clean)] = clean
    return PatchRender(audible, level, features, audio)


def _failed(patch: CorpusPatch, reason: str) -> PatchRender:
    """A patch the synth could not play (``reason`` says why); also the pools' crash handler."""
    return PatchRender(np.zeros(0, bool), np.zeros(0, np.float32), None, failure=reason or "the synth failed")


def _samples() -> int:
    return int(round(INDEX_RENDER_SECONDS * ANALYSIS_SAMPLE_RATE_HZ))


class CorpusBuilder:
    """Makes (or resumes, or grows) the corpus of ``plan``; ``cluster`` renders on Ray."""

    def __init__(self, plan: CorpusPlan, *, workers: int = 2, progress: ProgressCallback | None = None,
                 embedder: Embedder | None = None, cluster=None) -> None:  # noqa: ANN001 - a RayCluster
        self.plan = plan
        self.workers = max(1, workers)
        self.progress = progress or (lambda stage, done, total: None)
        self.embedder = embedder if embedder is not None else get_embedder(plan.embedder)
        self.cluster = cluster

    def build(self) -> CorpusReport:
        self.embedder.load()
        self._check_folder()  # before the lock, which would leave its file in a folder that is not ours
        with BuildLock(self.plan.output):
            manifest = self._start()
            made = self._render_missing(manifest)
            counts = self._finish(manifest)
        return CorpusReport(self.plan.output, counts, made, sum(manifest["shards"].values()),
                            self.cluster.describe() if self.cluster is not None else "")

    # -- steps ----------------------------------------------------------------------------
    def _start(self) -> dict:
        """The manifest of this run: a new one, or the folder's own when its plan is this one."""
        folder = self.plan.output
        existing = read_manifest(folder)
        if existing is not None and existing.get("key") != self.plan.key():
            raise CorpusError(f"{folder} holds a corpus made with other settings (seed, synths, notes, velocities, "
                              "audio, shard size or embedder); give another folder")
        manifest = {
            "format": FORMAT_VERSION, "key": self.plan.key(), "complete": False,
            "synths": list(self.plan.synths), "size": self.plan.size, "seed": self.plan.seed,
            "slots": [list(slot) for slot in self.plan.slots], "note_seconds": INDEX_NOTE_SECONDS,
            "render_seconds": INDEX_RENDER_SECONDS, "sample_rate": ANALYSIS_SAMPLE_RATE_HZ,
            "audio": self.plan.audio, "shard_size": self.plan.shard_size,
            "perturbed_share": self.plan.perturbed_share, "kinds": list(KINDS), "status": list(STATUS),
            "embedder": self.embedder.identity, "feature_dim": self._feature_dim(),
            "params": {s: get_engine(s).params.names() for s in self.plan.synths},
            "shards": {s: self.plan.shards() for s in self.plan.synths},
            "counts": {}, "patchpilot_version": __version__,
            "created": (existing or {}).get("created") or _now(),
        }
        self._write_manifest(manifest)
        return manifest

    def _check_folder(self) -> None:
        folder = self.plan.output
        if folder.exists() and not folder.is_dir():
            raise CorpusError(f"{folder} is a file; give a new or empty folder")
        if (folder.is_dir() and read_manifest(folder) is None
                and any(p.name != LOCK_NAME for p in folder.iterdir())):
            raise CorpusError(f"{folder} is not empty and holds no corpus; give a new or empty folder")

    def _feature_dim(self) -> int:
        tone = np.sin(2 * np.pi * 220 * np.arange(_samples()) / ANALYSIS_SAMPLE_RATE_HZ).astype(np.float32)
        return int(self.embedder.features([0.3 * tone]).shape[1])

    def _pending(self, synth: str) -> list[int]:
        """Shards of ``synth`` still to make: missing, damaged, or cut short by a smaller size."""
        pending = []
        for shard in range(self.plan.shards()):
            path = self.plan.output / shard_name(synth, shard)
            columns = read_shard(path) if path.exists() else None
            if columns is None or columns["numbers"].tolist() != list(self.plan.numbers(shard)):
                pending.append(shard)
        return pending

    def _render_missing(self, manifest: dict) -> int:
        pending = {synth: self._pending(synth) for synth in self.plan.synths}
        total = self.plan.size * len(self.plan.synths)
        done = total - sum(len(self.plan.numbers(s)) for shards in pending.values() for s in shards)
        stage = "corpus" if self.cluster is None else f"corpus on a Ray cluster ({self.cluster.describe()})"
        self.progress(stage, done, total)
        made = 0
        for synth, shards in pending.items():
            if not shards:
                continue
            maker = PatchMaker(synth, self.plan.factory_root, self.plan.seed, self.plan.perturbed_share)
            work = partial(render_patch, slots=tuple(self.plan.slots), embedder=self.embedder,
                           dim=manifest["feature_dim"], keep_audio=self.plan.audio)
            with self._pool(synth) as pool:
                for shard in shards:
                    patches = maker.patches(self.plan.numbers(shard))
                    pool.reset()  # a shard's renders do not depend on what the voices played before
                    results = list(pool.map(work, patches, on_crash=_failed))
                    write_shard(self.plan.output / shard_name(synth, shard),
                                self._columns(synth, patches, results, manifest["feature_dim"]))
                    made += 1
                    done += len(patches)
                    self.progress(stage, done, total)
                    checkpoint("corpus-shard")
        return made

    def _pool(self, synth: str):  # noqa: ANN202 - a RenderPool
        from patchpilot.cluster import render_pool

        return render_pool(get_engine(synth), self.workers, self.cluster)

    def _columns(self, synth: str, patches: list[CorpusPatch], results: list[PatchRender], dim: int
                 ) -> dict[str, np.ndarray]:
        params = get_engine(synth).params
        names = params.names()
        slots = len(self.plan.slots)
        rendered = [r.features is not None for r in results]
        columns = {
            "numbers": np.array([p.number for p in patches], np.int64),
            "params": np.array([_values(params.complete(p.preset.values), names) for p in patches], np.float32),
            "kind": np.array([KINDS.index(p.kind) for p in patches], np.uint8),
            "parent": np.array([p.parent for p in patches], dtype=str),
            "status": np.array([0 if ok and r.audible.any() else (1 if ok else 2)
                                for ok, r in zip(rendered, results)], np.uint8),
            "failure": np.array([r.failure for r in results], dtype=str),
            "audible": np.array([r.audible if ok else np.zeros(slots, bool) for ok, r in zip(rendered, results)]),
            "level_db": np.array([r.level_db if ok else np.full(slots, SILENT_DB, np.float32)
                                  for ok, r in zip(rendered, results)], np.float32),
            "features": np.array([r.features if ok else np.zeros((slots, dim), np.float32)
                                  for ok, r in zip(rendered, results)], np.float16).reshape(len(results), slots, dim),
        }
        if self.plan.audio:
            columns["audio"] = np.array([r.audio if ok else np.zeros((slots, _samples()), np.float16)
                                         for ok, r in zip(rendered, results)], np.float16)
        return columns

    def _finish(self, manifest: dict) -> dict[str, dict[str, int]]:
        """Count what the shards hold, drop shards past a smaller size, mark the corpus complete."""
        counts = {}
        for synth in self.plan.synths:
            tally = np.zeros(len(STATUS), np.int64)
            for shard in range(self.plan.shards()):  # every shard was checked or written by this run
                columns = read_shard(self.plan.output / shard_name(synth, shard), columns=("status",))
                if columns is None:
                    raise CorpusError(f"{shard_name(synth, shard)} vanished while the corpus was made")
                tally += np.bincount(columns["status"], minlength=len(STATUS))
            for extra in (self.plan.output / synth).glob("shard-*.npz"):
                if int(extra.stem.split("-")[1]) >= self.plan.shards():
                    extra.unlink()
            counts[synth] = dict(zip(STATUS, (int(x) for x in tally)))
        manifest["counts"] = counts
        manifest["complete"] = True
        manifest["cluster"] = self.cluster.describe() if self.cluster is not None else ""
        self._write_manifest(manifest)
        return counts

    def _write_manifest(self, manifest: dict) -> None:
        self.plan.output.mkdir(parents=True, exist_ok=True)
        write_atomically(self.plan.output / MANIFEST_NAME, json.dumps(manifest, indent=1))


@dataclass(frozen=True)
class CorpusRequest:
    """What ``patchpilot corpus`` was asked for: the plan, and where to render it."""

    plan: CorpusPlan
    workers: int = 2
    #: Render on a Ray cluster: ``auto`` or its address.
    ray: str | None = None


def build_corpus(request: CorpusRequest, progress: ProgressCallback | None = None) -> CorpusReport:
    """Make, resume or grow the corpus a request asks for."""
    with ExitStack() as stack:
        cluster = None
        if request.ray is not None:
            from patchpilot.cluster import connect

            cluster = stack.enter_context(connect(request.ray))
        return CorpusBuilder(request.plan, workers=request.workers, progress=progress, cluster=cluster).build()


def _values(values: dict[str, float], names: list[str]) -> list[float]:
    return [values[n] for n in names]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
