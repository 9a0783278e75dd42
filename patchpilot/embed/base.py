"""The embedder interface shared by the built-in timbre embedder and CLAP."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class Embedder(ABC):
    """Maps notes (mono audio at ``sample_rate``) to fixed-size feature vectors.

    ``name`` and ``version`` are recorded in every index built with the embedder; an index
    is only searched with the embedder (and version) that built it.
    """

    name: str
    version: str
    sample_rate: int
    #: Whether the index fits a projection (standardise, PCA, learned discriminant) to the
    #: raw features; otherwise the embedder's own vectors are indexed as they are.
    fits_projection: bool = False

    @property
    def identity(self) -> str:
        return f"{self.name}/{self.version}"

    def load(self) -> None:
        """Load weights now rather than on first use, so a missing model fails early."""

    @abstractmethod
    def features(self, notes: Sequence[np.ndarray], pitches_hz: Sequence[float | None] | None = None) -> np.ndarray:
        """Raw features ``(n, dim)`` float32 of attack-aligned notes at their pitches."""
