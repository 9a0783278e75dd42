"""Neural proposals: a small network that maps a note's index vector to synth parameters.

Retrieval can only return presets the library holds; the network (amortised inference, as in
Syntheon or synth-proxy) predicts a preset for the input itself, interpolating between what
the library holds. Its proposals join the retrieval candidates in the re-ranker, which keeps
whichever sounds closer, so a proposal can only displace a candidate by sounding closer.

One network per synth, trained offline by ``scripts/train_proposals.py`` on the index's own
vectors and presets, shipped as ``patchpilot/models/proposal-<synth>.npz`` and run in numpy
(a few hundred microseconds on the CPU; no torch). The network reads vectors of one index's
embedding space: it names the projection it was trained in (a hash of ``transform.npz``)
and is not used with an index whose projection differs.

Input: the note's index vector and its key, ``(key - 60) / 24``. Output: every continuous
parameter as a position in its musical range (sigmoid), every discrete one as logits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from patchpilot.errors import IndexLoadError
from patchpilot.synths import Preset, get_engine

MODELS_DIR = Path(__file__).resolve().parent / "models"
#: Proposals per synth and query: the network's answer, then its runners-up on the
#: discrete parameters it is least sure of.
PROPOSALS_PER_SYNTH = 3
#: Scale of the key input: (key - NOTE_CENTER) / NOTE_SPAN.
NOTE_CENTER, NOTE_SPAN = 60.0, 24.0


def model_path(synth: str, folder: Path | None = None) -> Path:
    return (MODELS_DIR if folder is None else folder) / f"proposal-{synth}.npz"


def transform_digest(path: Path) -> str:
    """The identity of an index's embedding space: a hash of its ``transform.npz``."""
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (the training script uses the same)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


@dataclass(frozen=True)
class ProposalNet:
    """The weights of one synth's network and what its outputs mean."""

    synth: str
    transform: str
    hidden: tuple[tuple[np.ndarray, np.ndarray], ...]
    continuous_head: tuple[np.ndarray, np.ndarray]
    discrete_head: tuple[np.ndarray, np.ndarray]
    continuous_names: tuple[str, ...]
    discrete_names: tuple[str, ...]
    discrete_sizes: tuple[int, ...]

    @classmethod
    def load(cls, path: Path) -> ProposalNet:
        try:
            with np.load(path, allow_pickle=False) as data:
                layers = int(data["layers"])
                hidden = tuple((data[f"w{i}"].astype(np.float32), data[f"b{i}"].astype(np.float32))
                               for i in range(layers))
                return cls(
                    synth=str(data["synth"]), transform=str(data["transform"]), hidden=hidden,
                    continuous_head=(data["w_cont"].astype(np.float32), data["b_cont"].astype(np.float32)),
                    discrete_head=(data["w_disc"].astype(np.float32), data["b_disc"].astype(np.float32)),
                    continuous_names=tuple(str(n) for n in data["continuous_names"]),
                    discrete_names=tuple(str(n) for n in data["discrete_names"]),
                    discrete_sizes=tuple(int(n) for n in data["discrete_sizes"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise IndexLoadError(f"{path}: unreadable proposal network ({exc})") from None

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {f"w{i}": w for i, (w, _) in enumerate(self.hidden)}
        arrays.update({f"b{i}": b for i, (_, b) in enumerate(self.hidden)})
        np.savez_compressed(
            path, layers=np.array(len(self.hidden)), synth=np.array(self.synth), transform=np.array(self.transform),
            w_cont=self.continuous_head[0], b_cont=self.continuous_head[1],
            w_disc=self.discrete_head[0], b_disc=self.discrete_head[1],
            continuous_names=np.array(self.continuous_names), discrete_names=np.array(self.discrete_names),
            discrete_sizes=np.array(self.discrete_sizes), **arrays)

    def forward(self, inputs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(positions in the musical ranges, logits per discrete parameter) for ``(n, dim + 1)`` inputs."""
        h = np.asarray(inputs, dtype=np.float32)
        for w, b in self.hidden:
            h = gelu(h @ w + b)
        units = 1.0 / (1.0 + np.exp(-(h @ self.continuous_head[0] + self.continuous_head[1])))
        logits = h @ self.discrete_head[0] + self.discrete_head[1]
        splits = np.cumsum(self.discrete_sizes)[:-1]
        return units, np.split(logits, splits, axis=1) if self.discrete_sizes else []

    def propose(self, vector: np.ndarray, key: int, count: int = PROPOSALS_PER_SYNTH) -> list[Preset]:
        """Presets for a note heard at ``key`` whose index vector is ``vector``: the network's
        answer first, then copies with the least certain discrete parameter moved to its
        runner-up (a wrong wavetable or algorithm costs more than any continuous error)."""
        engine = get_engine(self.synth)
        space = engine.params
        inputs = np.concatenate([np.asarray(vector, np.float32), [(key - NOTE_CENTER) / NOTE_SPAN]])[None]
        units, logits = self.forward(inputs)
        values = {name: space[name].from_unit(float(u)) for name, u in zip(self.continuous_names, units[0])}
        margins = []
        for name, scores in zip(self.discrete_names, logits):
            order = np.argsort(scores[0])[::-1]
            values[name] = space[name].low + float(order[0])
            if len(order) > 1:
                margins.append((float(scores[0][order[0]] - scores[0][order[1]]), name, space[name].low + float(order[1])))
        base = engine.init_preset()
        presets = [base.with_values(space.complete(values), name="Proposed", category="", origin="proposed")]
        for _, name, runner_up in sorted(margins)[: max(0, count - 1)]:
            presets.append(presets[0].with_values({name: runner_up}, name=f"Proposed ({name} alt.)"))
        return presets


@lru_cache(maxsize=8)
def _load_cached(path: str, stamp: float) -> ProposalNet:
    return ProposalNet.load(Path(path))


def proposal_nets(transform_file: Path, synths: tuple[str, ...], folder: Path | None = None) -> dict[str, ProposalNet]:
    """The networks of ``synths`` trained in the embedding space of ``transform_file``
    (looked up in ``folder``, by default the package's ``models/``)."""
    folder = MODELS_DIR if folder is None else folder
    digest = transform_digest(transform_file) if transform_file.exists() else ""
    nets = {}
    for synth in synths:
        path = model_path(synth, folder)
        if path.exists():
            net = _load_cached(str(path), path.stat().st_mtime)
            if net.transform == digest:
                nets[synth] = net
    return nets
