"""``build-index``: presets -> renders -> features -> FAISS vectors + preset store.

A build works in ``.<name>.partial/`` beside its target. Presets go into the store first;
features are written in chunks as presets are rendered, and sound descriptors (for text
queries) go into the store in chunks, so an interrupted build resumes where it stopped. The finished folder replaces the target in one rename, so a reader never
sees a half-written index and the previous index survives a failed build.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from patchpilot import __version__
from patchpilot.audio.dsp import rms
from patchpilot.audio.analysis import note_pitch
from patchpilot.constants import (
    ANALYSIS_SAMPLE_RATE_HZ,
    DEFAULT_INDEX_SIZE_PER_SYNTH,
    DEFAULT_VELOCITY,
    INDEX_NOTE_SECONDS,
    INDEX_NOTES,
    INDEX_RENDER_SECONDS,
)
from patchpilot.describe.descriptors import DESCRIPTOR_SCHEMA, describe_preset
from patchpilot.embed import Embedder, get_embedder
from patchpilot.embed.timbre import TimbreEmbedder
from patchpilot.embed.transform import DEFAULT_DIM, FeatureTransform
from patchpilot.errors import PresetError, UsageError
from patchpilot.index.index import (
    SLOT_STRIDE,
    STORE_NAME,
    TRANSFORM_NAME,
    VECTORS_NAME,
    Manifest,
    PresetIndex,
    import_faiss,
    read_manifest,
)
from patchpilot.index.store import PresetStore
from patchpilot.index.training import (
    TRAINING_QUERIES_PER_SYNTH,
    TrainingQuery,
    fit_discriminant,
    interpolate,
    plan_queries,
    query_features,
)
from patchpilot.library.bank import factory_preset_id, load_factory_bank, slug
from patchpilot.library.sampler import make_variant, variants_per_preset
from patchpilot.paths import MANIFEST_NAME, factory_presets_dir, shipped_index_dir
from patchpilot.synths import Preset, RenderPool, Voice, get_engine

#: Training queries of the learned projection, kept in the work folder until the end.
TRAINING_NAME = "training.npz"
#: Presets per saved feature chunk (what an interrupt can lose at most).
CHUNK_PRESETS = 64
#: A render quieter than this (RMS) counts as silent.
SILENT_RMS = 1e-5
#: A variant closer to a sibling than this fraction of the typical distance between a query
#: and its own preset is a duplicate; without training queries, a fixed distance is used.
DUPLICATE_FRACTION = 0.5
DUPLICATE_FALLBACK = 0.05

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BuildPlan:
    """What to build. Two builds with the same plan produce the same index."""

    output: Path
    synths: tuple[str, ...] = ("vital", "dexed")
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
    skipped: list[str]
    appended: int = 0


# ---- gathering presets -------------------------------------------------------------------


def designed_and_variants(synth: str, plan: BuildPlan) -> list[tuple[str, Preset]]:
    """The factory bank of a synth and its seeded variants, ``size_per_synth`` in all."""
    engine = get_engine(synth)
    designed = load_factory_bank(synth, plan.factory_root)
    by_category: dict[str, list[Preset]] = defaultdict(list)
    for preset in designed:
        by_category[preset.category].append(preset)
    count = variants_per_preset(len(designed), plan.size_per_synth)
    items: list[tuple[str, Preset]] = []
    for preset in designed:
        base_id = factory_preset_id(synth, preset.name)
        items.append((base_id, preset))
        relatives = [p for p in by_category[preset.category] if p is not preset]
        for number in range(1, count + 1):
            variant = make_variant(engine, preset, number, seed=plan.seed, relatives=relatives)
            items.append((f"{base_id}~{number:03d}", variant))
    return items


def user_presets(paths: Iterable[Path], synths: Sequence[str] = ("vital", "dexed")) -> list[tuple[str, Preset]]:
    """Presets from user files and folders (``.vital`` presets, DX7 ``.syx`` banks/voices)."""
    by_suffix = {suffix: name for name in synths for suffix in get_engine(name).bank_suffixes}
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in by_suffix)
        elif path.exists():
            if path.suffix.lower() not in by_suffix:
                raise PresetError(f"{path}: unsupported preset file; expected one of {', '.join(sorted(by_suffix))}")
            files.append(path)
        else:
            raise PresetError(f"{path}: no such file or folder")
    items: list[tuple[str, Preset]] = []
    used: set[str] = set()
    for file in files:
        synth = by_suffix[file.suffix.lower()]
        presets = get_engine(synth).read_presets(file)
        for number, preset in enumerate(presets, start=1):
            stem = f"{synth}:user:{slug(file.stem)}" + (f":{number:02d}" if len(presets) > 1 else "")
            preset_id, n = stem, 2
            while preset_id in used:
                preset_id, n = f"{stem}-{n}", n + 1
            used.add(preset_id)
            items.append((preset_id, preset))
    return items


def as_stored(preset: Preset) -> Preset:
    """The preset exactly as the store will hand it back (float32 values)."""
    return preset.with_values({k: float(np.float32(v)) for k, v in preset.values.items()})


# ---- analysing one preset ----------------------------------------------------------------


@dataclass(frozen=True)
class _Analysis:
    row: int
    features: np.ndarray | None  # (slots, dim) or None when the preset is silent
    pitch_offset: float | None


def _analyse(voice: Voice, job: tuple[int, Preset, tuple[int, ...]], embedder: Embedder) -> _Analysis:
    row, preset, notes = job
    renders = [voice.render(preset, note, DEFAULT_VELOCITY, INDEX_NOTE_SECONDS, INDEX_RENDER_SECONDS) for note in notes]
    loud = [rms(r) > SILENT_RMS for r in renders]
    if not any(loud):
        return _Analysis(row, None, None)
    features = embedder.features(renders)
    for slot, ok in enumerate(loud):  # a slot silent at its note borrows its nearest audible neighbour
        if not ok:
            nearest = min((s for s, good in enumerate(loud) if good), key=lambda s: abs(s - slot))
            features[slot] = features[nearest]
    centre = min(range(len(notes)), key=lambda s: (not loud[s], abs(notes[s] - 60)))
    pitch = note_pitch(renders[centre], ANALYSIS_SAMPLE_RATE_HZ)
    offset = None if pitch.midi is None else float(np.round(pitch.midi - notes[centre], 2))
    return _Analysis(row, features, offset)


# ---- the build ---------------------------------------------------------------------------


class IndexBuilder:
    """Builds (or appends to) an index. ``embedder`` overrides the plan's embedder by name
    (a CLAP embedder with its own checkpoint or model)."""

    def __init__(self, plan: BuildPlan, *, workers: int = 2, progress: ProgressCallback | None = None,
                 append: bool = False, embedder: Embedder | None = None) -> None:
        if append:
            # new presets are rendered at the notes the index already uses
            plan = replace(plan, notes=read_manifest(plan.output).notes)
        self.plan = plan
        self.workers = max(1, workers)
        self.progress = progress or (lambda stage, done, total: None)
        self.append = append
        self.embedder = embedder if embedder is not None else get_embedder(plan.embedder)
        if self.embedder.name != plan.embedder:
            raise UsageError(f"the plan names the {plan.embedder!r} embedder but {self.embedder.name!r} was given")
        self.work = plan.output.parent / f".{plan.output.name}.partial"

    # -- public -------------------------------------------------------------------------
    def build(self) -> BuildReport:
        self.embedder.load()  # a missing model fails before any work
        self._prepare_workdir()
        store = PresetStore(self.work / STORE_NAME)
        try:
            if self.append:
                new_rows = self._add_presets(store, user_presets(self.plan.user_paths, self.plan.synths))
                base = PresetIndex.open(self.plan.output)
                base.check_embedder(self.embedder.identity)
            else:
                self._add_presets(store, self._all_presets())
                new_rows = None
            self._analyse_pending(store)
            describe_missing(store, workers=self.workers, progress=self.progress)
            if not self.append and self.plan.learn_projection and self.embedder.fits_projection:
                self._train_projection(store)
            skipped = self._finish(store, base if self.append else None)
            counts = store.synth_counts()
        finally:
            store.close()
        replace_dir(self.work, self.plan.output)
        appended = len(new_rows) if new_rows is not None else 0
        return BuildReport(self.plan.output, counts, skipped, appended)

    # -- stages -------------------------------------------------------------------------
    def _prepare_workdir(self) -> None:
        plan_file = self.work / "plan.json"
        key = self.plan.key() + (":append" if self.append else "")
        if self.work.exists():
            try:
                same = json.loads(plan_file.read_text())["key"] == key
            except (OSError, ValueError, KeyError):
                same = False
            if same:
                return  # resume
            shutil.rmtree(self.work)
        (self.work / "features").mkdir(parents=True)
        if self.append:
            read_manifest(self.plan.output)
            shutil.copy2(self.plan.output / STORE_NAME, self.work / STORE_NAME)
        plan_file.write_text(json.dumps({"key": key, "plan": asdict(self.plan)}, default=str, indent=2))

    def _all_presets(self) -> list[tuple[str, Preset]]:
        items: list[tuple[str, Preset]] = []
        if self.plan.factory:
            for synth in self.plan.synths:
                items += designed_and_variants(synth, self.plan)
        items += user_presets(self.plan.user_paths, self.plan.synths)
        if not items:
            raise UsageError("nothing to index: no factory banks selected and no --presets given")
        return items

    def _add_presets(self, store: PresetStore, items: list[tuple[str, Preset]]) -> list[str]:
        """Store presets not yet there (same id or same sound); returns the ids added."""
        seen = store.fingerprints()
        fresh = []
        for preset_id, preset in items:
            stored = as_stored(preset)
            fingerprint = stored.fingerprint()
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            fresh.append((preset_id, stored))
        store.add(fresh)
        return [pid for pid, _ in fresh]

    def _done_rows(self) -> set[int]:
        done: set[int] = set()
        for chunk in (self.work / "features").glob("*.npz"):
            with np.load(chunk) as data:
                done.update(int(r) for r in data["rows"])
                done.update(int(r) for r in data["skipped"])
        return done

    def _analyse_pending(self, store: PresetStore) -> None:
        done = self._done_rows()
        existing: set[int] = set()
        if self.append:
            base_store = PresetStore(self.plan.output / STORE_NAME, readonly=True)
            existing = set(base_store.rows())
            base_store.close()
        pending = [r for r in store.rows() if r not in done and r not in existing]
        total = len(pending) + len(done)
        self.progress("render", len(done), total)
        notes = tuple(self.plan.notes)
        by_synth: dict[str, list[int]] = defaultdict(list)
        synth_of = store.synth_by_row()
        for row in pending:
            by_synth[synth_of[row]].append(row)
        finished = len(done)
        for synth, rows in by_synth.items():
            engine = get_engine(synth)
            with RenderPool(engine, self.workers) as pool:
                for start in range(0, len(rows), CHUNK_PRESETS):
                    chunk_rows = rows[start : start + CHUNK_PRESETS]
                    presets = store.get_rows(chunk_rows)
                    jobs = [(row, presets[row].preset, notes) for row in chunk_rows]
                    results = list(pool.map(lambda voice, job: _analyse(voice, job, self.embedder), jobs))
                    self._save_chunk(results)
                    finished += len(results)
                    self.progress("render", finished, total)

    def _train_projection(self, store: PresetStore) -> None:
        """Render the training queries (once; kept in the work folder) for the projection."""
        path = self.work / TRAINING_NAME
        if path.exists():
            return
        rows, _, offsets, _ = self._load_chunks()
        offset_of = dict(zip(rows.tolist(), offsets.tolist()))
        synth_of = store.synth_by_row()
        queries, features, played = [], [], []
        plans_by_synth: dict[str, list[TrainingQuery]] = {}
        for synth in sorted({synth_of[r] for r in offset_of}):
            synth_rows = [r for r in offset_of if synth_of[r] == synth]
            plans_by_synth[synth] = plan_queries(synth_rows, self.plan.notes, TRAINING_QUERIES_PER_SYNTH,
                                                 self.plan.seed + 17)
        total = sum(len(p) for p in plans_by_synth.values())
        done = 0
        self.progress("train", 0, total)
        for synth, plans in plans_by_synth.items():
            presets = store.get_rows([q.row for q in plans])
            with RenderPool(get_engine(synth), self.workers) as pool:
                results = pool.map(lambda voice, q: query_features(voice, presets[q.row].preset, q, self.embedder), plans)
                for query, result in zip(plans, results):
                    done += 1
                    if done % 32 == 0:
                        self.progress("train", done, total)
                    if result is None:
                        continue
                    offset = offset_of[query.row]
                    queries.append(query.row)
                    features.append(result)
                    played.append(query.note + (0.0 if np.isnan(offset) else offset))
        self.progress("train", total, total)
        temporary = self.work / f"{TRAINING_NAME}.tmp"
        with open(temporary, "wb") as handle:
            np.savez(handle, rows=np.array(queries, dtype=np.int64), played=np.array(played),
                     features=np.array(features, dtype=np.float32).reshape(len(features), -1))
        os.replace(temporary, path)

    def _save_chunk(self, results: list[_Analysis]) -> None:
        good = [r for r in results if r.features is not None]
        rows = np.array([r.row for r in good], dtype=np.int64)
        features = np.stack([r.features for r in good]) if good else np.zeros((0, len(self.plan.notes), 1), np.float32)
        offsets = np.array([np.nan if r.pitch_offset is None else r.pitch_offset for r in good], dtype=np.float64)
        skipped = np.array([r.row for r in results if r.features is None], dtype=np.int64)
        name = f"{results[0].row:09d}"
        temporary = self.work / "features" / f"{name}.tmp.npz"
        with open(temporary, "wb") as handle:
            np.savez(handle, rows=rows, features=features, offsets=offsets, skipped=skipped)
        os.replace(temporary, self.work / "features" / f"{name}.npz")

    def _load_chunks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        rows, features, offsets, skipped = [], [], [], []
        for chunk in sorted((self.work / "features").glob("*.npz")):
            with np.load(chunk) as data:
                if data["rows"].size:
                    rows.append(data["rows"])
                    features.append(data["features"])
                    offsets.append(data["offsets"])
                skipped += [int(r) for r in data["skipped"]]
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, len(self.plan.notes), 0)), np.zeros(0), skipped
        features_all = np.nan_to_num(np.concatenate(features), nan=0.0, posinf=0.0, neginf=0.0)
        return np.concatenate(rows), features_all, np.concatenate(offsets), skipped

    def _discriminant(self, transform: FeatureTransform, rows: np.ndarray, raw: np.ndarray
                      ) -> tuple[FeatureTransform, float | None]:
        """Follow the PCA with the projection learned from the training queries. Also returns
        the median distance of a training query from its own preset in the final space."""
        path = self.work / TRAINING_NAME
        if not path.exists():
            return transform, None
        with np.load(path) as data:
            training = {key: data[key] for key in ("rows", "played", "features")}
        residuals = _residuals(transform, rows, raw, training, self.plan.notes)
        if len(residuals) < 2 * transform.dim:
            return transform, None  # too few queries to estimate the scatter (tiny indexes)
        index_vectors = transform.project(raw.reshape(-1, raw.shape[-1]))
        learned = transform.then(fit_discriminant(index_vectors, residuals))
        return learned, _query_spread(learned, rows, raw, training, self.plan.notes)

    def _finish(self, store: PresetStore, base: PresetIndex | None) -> list[str]:
        """Vectors, FAISS index, manifest; drop presets that stayed silent."""
        self.progress("index", 0, 1)
        rows, raw, offsets, skipped_rows = self._load_chunks()
        slots = len(self.plan.notes)
        if base is not None:
            transform = base.transform
            new_vectors = (transform.apply(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), slots, -1) if len(rows)
                           else np.zeros((0, slots, transform.dim), np.float32))
        else:
            if len(rows) == 0:
                raise UsageError("every preset rendered silent: nothing to index")
            if not self.embedder.fits_projection:  # e.g. CLAP: its own vectors, flat cosine search
                transform = FeatureTransform.identity(raw.shape[-1])
                new_vectors = transform.apply(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), slots, -1)
            else:
                transform = FeatureTransform.fit(raw.reshape(-1, raw.shape[-1]), TimbreEmbedder.block_weights(),
                                                 self.plan.dim)
                transform, spread = self._discriminant(transform, rows, raw)
                new_vectors = transform.apply(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), slots, -1)
                # variants nobody could tell from a sibling are dropped (user presets are kept)
                threshold = DUPLICATE_FRACTION * spread if spread is not None else DUPLICATE_FALLBACK
                keep = _distinct(rows, new_vectors, store, threshold)
                skipped_rows += [int(r) for r in rows[~keep]]
                rows, new_vectors, offsets = rows[keep], new_vectors[keep], offsets[keep]
        skipped_ids = [sp.preset_id for sp in store.get_rows(skipped_rows).values()]
        store.delete_rows(skipped_rows)
        store.set_pitch_offsets((int(r), None if np.isnan(o) else float(o)) for r, o in zip(rows, offsets))
        if base is not None:
            old = base._vectors
            all_rows = np.concatenate([old["rows"], rows])
            vectors = np.concatenate([old["vectors"], new_vectors])
            base.close()
        else:
            all_rows, vectors = rows, new_vectors
        write_vectors(self.work / VECTORS_NAME, all_rows, vectors)
        transform.save(self.work / TRANSFORM_NAME)
        store.vacuum()
        counts = store.synth_counts()
        manifest = Manifest(
            embedder=self.embedder.identity,
            dim=transform.dim,
            notes=tuple(self.plan.notes),
            note_seconds=INDEX_NOTE_SECONDS,
            render_seconds=INDEX_RENDER_SECONDS,
            velocity=DEFAULT_VELOCITY,
            sample_rate=ANALYSIS_SAMPLE_RATE_HZ,
            synths=counts,
            created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            patchpilot_version=__version__,
        )
        (self.work / MANIFEST_NAME).write_text(manifest.to_json())
        shutil.rmtree(self.work / "features")
        (self.work / TRAINING_NAME).unlink(missing_ok=True)
        (self.work / "plan.json").unlink()
        self.progress("index", 1, 1)
        return skipped_ids


def _residuals(transform: FeatureTransform, rows: np.ndarray, raw: np.ndarray, training: dict,
               notes: Sequence[int]) -> np.ndarray:
    """Training queries minus their own preset's vector interpolated to the played note."""
    position = {int(r): i for i, r in enumerate(rows)}
    projected = transform.project(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), len(notes), -1)
    queries = transform.project(training["features"]) if len(training["features"]) else np.zeros((0, transform.dim))
    out = [q - interpolate(projected[position[int(row)]], notes, played)
           for q, row, played in zip(queries, training["rows"], training["played"]) if int(row) in position]
    return np.array(out).reshape(len(out), transform.dim)


def _query_spread(transform: FeatureTransform, rows: np.ndarray, raw: np.ndarray, training: dict,
                  notes: Sequence[int]) -> float | None:
    """Median distance (unit vectors) between a training query and its own preset's vector
    interpolated to the played note: how far apart renders of one preset land."""
    position = {int(r): i for i, r in enumerate(rows)}
    vectors = transform.apply(raw.reshape(-1, raw.shape[-1])).reshape(len(rows), len(notes), -1)
    queries = transform.apply(training["features"]) if len(training["features"]) else np.zeros((0, transform.dim))
    distances = []
    for query, row, played in zip(queries, training["rows"], training["played"]):
        if int(row) in position:
            own = interpolate(vectors[position[int(row)]], notes, played)
            distances.append(float(np.linalg.norm(query - own / max(np.linalg.norm(own), 1e-12))))
    return float(np.median(distances)) if distances else None


def _distinct(rows: np.ndarray, vectors: np.ndarray, store: PresetStore, threshold: float) -> np.ndarray:
    """Mask that drops presets sounding like an earlier member of their family (a designed
    preset and its variants): closer to it, on average over the indexed notes, than
    ``threshold``. A variant nobody could tell from its sibling helps no search."""
    if rows.size == 0:
        return np.ones(0, dtype=bool)
    ids = store.preset_ids(rows.tolist())
    families: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        families[ids[int(row)].split("~")[0]].append(i)
    keep = np.ones(len(rows), dtype=bool)
    for members in families.values():
        kept: list[int] = []
        for i in members:
            if kept and np.linalg.norm(vectors[kept] - vectors[i], axis=2).mean(axis=1).min() < threshold:
                keep[i] = False
            else:
                kept.append(i)
    return keep


def write_vectors(path: Path, rows: np.ndarray, vectors: np.ndarray) -> None:
    """FAISS inner-product index of fp16 vectors with ids ``row * SLOT_STRIDE + slot``."""
    faiss = import_faiss()
    count, slots, dim = vectors.shape
    inner = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexIDMap2(inner)
    ids = (np.asarray(rows, dtype=np.int64)[:, None] * SLOT_STRIDE + np.arange(slots)).ravel()
    if count:
        index.add_with_ids(np.ascontiguousarray(vectors.reshape(-1, dim), dtype=np.float32), ids)
    faiss.write_index(index, str(path))


def describe_missing(store: PresetStore, *, workers: int = 2, progress: ProgressCallback | None = None) -> int:
    """Render and describe (``describe/descriptors.py``) every preset of ``store`` that has no
    descriptors yet, committing each chunk (an interrupted run resumes). Returns how many."""
    progress = progress or (lambda stage, done, total: None)
    pending = store.rows_without_descriptors(DESCRIPTOR_SCHEMA)
    total = store.count()
    done = total - len(pending)
    progress("describe", done, total)
    synth_of = store.synth_by_row()
    for synth in sorted({synth_of[r] for r in pending}):
        rows = [r for r in pending if synth_of[r] == synth]
        with RenderPool(get_engine(synth), workers) as pool:
            for start in range(0, len(rows), CHUNK_PRESETS):
                presets = store.get_rows(rows[start : start + CHUNK_PRESETS])
                chunk = [presets[r] for r in rows[start : start + CHUNK_PRESETS] if r in presets]
                values = pool.map(lambda voice, stored: describe_preset(voice, stored.preset), chunk)
                store.set_descriptors(DESCRIPTOR_SCHEMA, ((sp.row, v) for sp, v in zip(chunk, values)))
                done += len(chunk)
                progress("describe", done, total)
    return len(pending)


def add_descriptors(index: Path, *, workers: int = 2, progress: ProgressCallback | None = None) -> int:
    """Give an existing index the sound descriptors text queries need (indexes built before
    them lack them). Works on a copy beside the index that replaces it when complete, and
    resumes when interrupted. Returns how many presets were described."""
    read_manifest(index)
    with PresetStore(index / STORE_NAME, readonly=True) as current:
        if not current.rows_without_descriptors(DESCRIPTOR_SCHEMA):
            return 0
    work = index.parent / f".{index.name}.describe"
    if work.exists() and _read_text(work / MANIFEST_NAME) != _read_text(index / MANIFEST_NAME):
        shutil.rmtree(work)  # left over from another version of the index
    if not work.exists():
        staging = index.parent / f".{index.name}.describe-copy"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(index, staging)
        os.replace(staging, work)
    with PresetStore(work / STORE_NAME) as store:
        described = describe_missing(store, workers=workers, progress=progress)
        store.vacuum()
    replace_dir(work, index)
    return described


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def seed_user_index(target: Path) -> None:
    """Start the user's own index as a copy of the shipped one (when there is one)."""
    shipped = shipped_index_dir()
    if (shipped / MANIFEST_NAME).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.copy"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(shipped, staging)
        replace_dir(staging, target)


def replace_dir(source: Path, target: Path) -> None:
    """Move a finished folder over ``target``; the old one is removed only once the new one is in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(source, target)
        return
    backup = target.parent / f".{target.name}.previous"
    if backup.exists():
        shutil.rmtree(backup)
    os.replace(target, backup)
    try:
        os.replace(source, target)
    except OSError:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
