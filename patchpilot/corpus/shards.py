"""The files of a corpus, and reading them back.

    CORPUS/
      corpus.json              the manifest: the plan, each synth's parameters, the shards
      <synth>/shard-00000.npz  patches 0 .. shard_size-1 of that synth, and so on

A shard holds, for its ``n`` patches and the corpus's ``k`` render slots (a note and a
velocity each; ``manifest["slots"]``):

    numbers   (n,)        int64    the patch numbers (``patches.py`` makes any patch again)
    params    (n, p)      float32  raw values, in the order of ``manifest["params"][synth]``
    kind      (n,)        uint8    0 perturbed factory preset, 1 uniform sample
    parent    (n,)        str      the factory preset the patch comes from
    status    (n,)        uint8    0 rendered, 1 silent at every slot, 2 the synth failed
    failure   (n,)        str      why the synth failed ("" otherwise)
    audible   (n, k)      bool     the slot's render is not silent
    level_db  (n, k)      float32  the render's RMS level (-120 when silent)
    features  (n, k, d)   float16  the embedder's raw features (zeros where not audible)
    audio     (n, k, s)   float16  the renders at ``manifest["sample_rate"]`` (only with audio)

Shards are written under a temporary name, flushed and renamed: a shard on disk is complete.
The manifest says ``complete`` once every shard is there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpilot.errors import PatchPilotError
from patchpilot.index.layout import write_arrays_atomically

MANIFEST_NAME = "corpus.json"
FORMAT_VERSION = 1
STATUS = ("rendered", "silent", "failed")
COLUMNS = ("numbers", "params", "kind", "parent", "status", "failure", "audible", "level_db", "features")


class CorpusError(PatchPilotError):
    """A corpus folder that cannot be read or written as asked."""


def shard_name(synth: str, shard: int) -> str:
    return f"{synth}/shard-{shard:05d}.npz"


def write_shard(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Write a shard in one step: a file under its final name is whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_arrays_atomically(path, columns)


def read_shard(path: Path, audio: bool = False, columns: tuple[str, ...] = COLUMNS) -> dict[str, np.ndarray] | None:
    """A shard's columns (all of them by default; an npz reads only those asked), or None
    when it is missing or damaged."""
    try:
        with np.load(path) as data:
            names = columns + (("audio",) if audio and "audio" in data else ())
            read = {name: data[name] for name in names}
    except Exception:  # noqa: BLE001 - any damage (truncation, bad zip, missing column) means "make it again"
        return None
    count = len(next(iter(read.values())))
    if any(len(column) != count for column in read.values()):
        return None
    return read


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise CorpusError(f"{folder / MANIFEST_NAME} cannot be read ({error})") from None


@dataclass
class CorpusArrays:
    """One synth's patches, concatenated over its shards."""

    numbers: np.ndarray
    params: np.ndarray
    kind: np.ndarray
    parent: np.ndarray
    status: np.ndarray
    failure: np.ndarray
    audible: np.ndarray
    level_db: np.ndarray
    features: np.ndarray
    audio: np.ndarray | None = None


class Corpus:
    """A finished corpus folder, for training scripts:

        corpus = Corpus.open("corpus/")
        data = corpus.load("dexed")             # CorpusArrays
        notes, velocities = corpus.slots.T      # what each render slot played
    """

    def __init__(self, folder: Path, manifest: dict) -> None:
        self.folder = folder
        self.manifest = manifest

    @classmethod
    def open(cls, folder: Path | str, partial: bool = False) -> Corpus:
        """The corpus in ``folder``; one that is still being made only with ``partial``."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        if manifest is None:
            raise CorpusError(f"no corpus in {folder} (no {MANIFEST_NAME})")
        if manifest.get("format") != FORMAT_VERSION:
            raise CorpusError(f"{folder} holds a corpus of format {manifest.get('format')}; this Patch Pilot "
                              f"reads format {FORMAT_VERSION}")
        if not manifest.get("complete") and not partial:
            raise CorpusError(f"the corpus in {folder} is not finished; run the same `patchpilot corpus` "
                              "command again to finish it")
        return cls(folder, manifest)

    @property
    def synths(self) -> list[str]:
        return list(self.manifest["synths"])

    @property
    def slots(self) -> np.ndarray:
        """(k, 2): the note and velocity of each render slot."""
        return np.asarray(self.manifest["slots"], dtype=np.int64).reshape(-1, 2)

    def param_names(self, synth: str) -> list[str]:
        return list(self.manifest["params"][synth])

    def shards(self, synth: str, audio: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """The synth's shards in order (those on disk, for a partial corpus)."""
        for shard in range(self.manifest["shards"][synth]):
            path = self.folder / shard_name(synth, shard)
            columns = read_shard(path, audio)
            if columns is None:
                if self.manifest.get("complete"):
                    raise CorpusError(f"{path} is missing or damaged; run `patchpilot corpus` again to make it")
                continue
            yield columns

    def load(self, synth: str, audio: bool = False) -> CorpusArrays:
        """Every shard of ``synth``, concatenated."""
        if synth not in self.manifest["synths"]:
            raise CorpusError(f"the corpus in {self.folder} has no {synth} patches")
        parts = list(self.shards(synth, audio))
        if not parts:
            raise CorpusError(f"the corpus in {self.folder} has no finished {synth} shard yet")
        joined = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        return CorpusArrays(**joined)

    def velocity_pairs(self, synths: list[str], count: int, seed: int, velocity: int
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Raw features of ``count`` random pairs (float32): one patch at one note played at
        another velocity, and at ``velocity`` (or the corpus's nearest). Their differences
        are within-preset scatter for the index's learned projection (``IndexBuilder``'s
        ``projection_pairs``)."""
        slots = self.slots
        reference = min(set(slots[:, 1].tolist()), key=lambda v: abs(v - velocity))
        firsts, seconds = [], []
        for synth in (s for s in synths if s in self.synths):
            data = self.load(synth)
            for slot, (note, played) in enumerate(slots.tolist()):
                if played == reference:
                    continue
                partner = int(np.flatnonzero((slots[:, 0] == note) & (slots[:, 1] == reference))[0])
                both = data.audible[:, slot] & data.audible[:, partner]
                firsts.append(data.features[both, slot])
                seconds.append(data.features[both, partner])
        dim = int(self.manifest["feature_dim"])
        if not firsts:
            return np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32)
        first, second = np.concatenate(firsts), np.concatenate(seconds)
        chosen = np.sort(np.random.default_rng(seed).permutation(len(first))[:count])
        return first[chosen].astype(np.float32), second[chosen].astype(np.float32)
