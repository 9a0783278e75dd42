"""CLAP (LAION's contrastive language-audio model) as a second embedder: audio and text in
one space, so ``match --text`` on a CLAP index ranks presets by the text's embedding.

``load_clap_model`` is the only code that imports ``laion_clap`` (and, through it, torch);
every failure there (package, dependency, Hugging Face text model, checkpoint) becomes one
``ClapUnavailableError`` line. ``ClapEmbedder`` is the glue around any object with CLAP's
two methods (``get_audio_embedding_from_data``, ``get_text_embedding``): resampling to
48 kHz, the int16 quantisation CLAP was trained with, batching, unit length. Tests drive it
with a small stand-in model of the same interface.

Install with ``pip install "patchpilot[clap]"``. The checkpoint is laion-clap's own
download (``630k-audioset-best.pt``, fetched on first use) unless ``--clap-checkpoint`` or
``$PATCHPILOT_CLAP_CHECKPOINT`` names a local file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.embed.base import Embedder
from patchpilot.errors import ModelUnavailableError

CLAP_SAMPLE_RATE_HZ = 48000
CHECKPOINT_ENV = "PATCHPILOT_CLAP_CHECKPOINT"
#: laion-clap's default for the non-fusion HTSAT-tiny model (its ``model_id`` 1).
DEFAULT_CHECKPOINT = "630k-audioset-best"
CHECKPOINT_URL = "https://huggingface.co/lukewys/laion_clap/resolve/main/630k-audioset-best.pt"
INSTALL_HINT = 'pip install "patchpilot[clap]"'
#: Clips per forward pass: CLAP pads every clip to 10 s at 48 kHz (1.8 MB each).
AUDIO_BATCH = 8
TEXT_BATCH = 64


class ClapUnavailableError(ModelUnavailableError):
    """laion-clap, one of its dependencies or its weights are missing."""


class ClapModel(Protocol):
    """The two methods of ``laion_clap.CLAP_Module`` the embedder uses."""

    def get_audio_embedding_from_data(self, x: np.ndarray, use_tensor: bool = False) -> np.ndarray: ...

    def get_text_embedding(self, x: list[str], use_tensor: bool = False) -> np.ndarray: ...


def checkpoint_from(explicit: Path | str | None = None) -> Path | None:
    """The local checkpoint to load: the option, else ``$PATCHPILOT_CLAP_CHECKPOINT``, else
    None (laion-clap downloads its default)."""
    chosen = explicit if explicit is not None else os.environ.get(CHECKPOINT_ENV) or None
    return Path(chosen).expanduser() if chosen is not None else None


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}"


def load_clap_model(checkpoint: Path | None = None) -> ClapModel:
    """Import laion-clap, build the model and load its weights, or raise one clear error."""
    if checkpoint is not None and not checkpoint.is_file():
        raise ClapUnavailableError(f"CLAP checkpoint {checkpoint} does not exist; download {CHECKPOINT_URL} "
                                   f"and pass --clap-checkpoint PATH or set {CHECKPOINT_ENV}")
    # laion-clap prints progress and parameter names on stdout, which carries our results.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            import laion_clap
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - ImportError, or torchvision's RuntimeError on a CPU-only torch
            raise ClapUnavailableError(f"CLAP is not available: importing laion_clap failed ({_first_line(exc)}); "
                                       f"install it with {INSTALL_HINT} (it needs torchvision matching your torch)"
                                       ) from None
        try:
            model = laion_clap.CLAP_Module(enable_fusion=False)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - roberta-base missing from the Hugging Face cache
            raise ClapUnavailableError(f"CLAP could not build its model ({_first_line(exc)}); its text encoder "
                                       "(roberta-base) comes from the Hugging Face hub: run once online with "
                                       "HF_HUB_OFFLINE=0 to cache it") from None
        try:
            if checkpoint is None:
                model.load_ckpt(verbose=False)  # laion-clap's own download of DEFAULT_CHECKPOINT
            else:
                model.load_ckpt(str(checkpoint), verbose=False)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a missing, truncated or foreign checkpoint
            raise ClapUnavailableError(f"CLAP weights could not be loaded ({_first_line(exc)}); download "
                                       f"{CHECKPOINT_URL} and pass --clap-checkpoint PATH or set {CHECKPOINT_ENV}"
                                       ) from None
    return model


class ClapEmbedder(Embedder):
    """Audio and text to unit vectors in CLAP's shared space.

    ``model`` is any object with CLAP's interface; by default the real model loads on first
    use. ``input_rate`` is the rate of the audio handed to :meth:`features` (the analysis
    rate of renders and queries).
    """

    name = "clap"
    version = "1"
    sample_rate = ANALYSIS_SAMPLE_RATE_HZ

    def __init__(self, model: ClapModel | None = None, *, checkpoint: Path | str | None = None,
                 input_rate: int = ANALYSIS_SAMPLE_RATE_HZ) -> None:
        self._given = model
        self.checkpoint = checkpoint_from(checkpoint)
        self.sample_rate = input_rate

    @property
    def identity(self) -> str:
        """``clap/1+<checkpoint>``: vectors of two checkpoints do not share a space."""
        weights = self.checkpoint.stem if self.checkpoint is not None else DEFAULT_CHECKPOINT
        return f"{self.name}/{self.version}+{weights}"

    @cached_property
    def model(self) -> ClapModel:
        return self._given if self._given is not None else load_clap_model(self.checkpoint)

    def load(self) -> None:
        self.model  # noqa: B018 - loads and caches the model

    def features(self, notes: Sequence[np.ndarray], pitches_hz: Sequence[float | None] | None = None) -> np.ndarray:
        """Unit audio embeddings ``(n, dim)``; clips of equal length share a forward pass."""
        clips = [to_clap_input(np.asarray(n, dtype=np.float32), self.sample_rate) for n in notes]
        by_length: dict[int, list[int]] = defaultdict(list)
        for position, clip in enumerate(clips):
            by_length[clip.size].append(position)
        out: list[np.ndarray | None] = [None] * len(clips)
        for positions in by_length.values():
            for start in range(0, len(positions), AUDIO_BATCH):
                batch = positions[start : start + AUDIO_BATCH]
                vectors = self.model.get_audio_embedding_from_data(x=np.stack([clips[p] for p in batch]),
                                                                  use_tensor=False)
                for p, vector in zip(batch, _as_numpy(vectors)):
                    out[p] = vector
        return unit_rows(np.stack(out)) if out else np.zeros((0, 0), np.float32)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings ``(n, dim)`` in the audio space."""
        parts = [_as_numpy(self.model.get_text_embedding(list(texts[start : start + TEXT_BATCH]), use_tensor=False))
                 for start in range(0, len(texts), TEXT_BATCH)]
        return unit_rows(np.concatenate(parts))


def to_clap_input(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at 48 kHz, quantised to int16 steps as in CLAP's training data."""
    if rate != CLAP_SAMPLE_RATE_HZ:
        import soxr

        audio = soxr.resample(audio, rate, CLAP_SAMPLE_RATE_HZ, quality="HQ")
    quantised = np.round(np.clip(audio, -1.0, 1.0) * 32767.0) / 32767.0
    return quantised.astype(np.float32)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _as_numpy(vectors: object) -> np.ndarray:
    """CLAP returns numpy with ``use_tensor=False``; a tensor is converted all the same."""
    detach = getattr(vectors, "detach", None)
    if detach is not None:
        return detach().cpu().numpy()
    return np.asarray(vectors)
