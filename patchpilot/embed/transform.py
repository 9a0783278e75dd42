"""A linear map from raw features to index vectors, fitted on the index it belongs to.

Standardise each feature, weight each block, project on the leading principal axes and
scale to unit length (so inner product = cosine similarity). Stored beside the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DIM = 96


@dataclass(frozen=True)
class FeatureTransform:
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (raw_dim, dim)

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def fit(cls, raw: np.ndarray, weights: np.ndarray, dim: int = DEFAULT_DIM) -> FeatureTransform:
        raw = np.asarray(raw, dtype=np.float64)
        mean = raw.mean(axis=0)
        scale = (raw.std(axis=0) + 1e-6) / weights
        centred = (raw - mean) / scale
        dim = min(dim, *centred.shape)
        _, _, vt = np.linalg.svd(centred - centred.mean(axis=0), full_matrices=False)
        return cls(mean.astype(np.float32), scale.astype(np.float32), vt[:dim].T.astype(np.float32))

    @classmethod
    def identity(cls, dim: int) -> FeatureTransform:
        """No change but unit length: for embedders whose vectors are final (CLAP)."""
        return cls(np.zeros(dim, np.float32), np.ones(dim, np.float32), np.eye(dim, dtype=np.float32))

    def project(self, raw: np.ndarray) -> np.ndarray:
        """The linear map alone, without scaling to unit length."""
        return ((np.asarray(raw, dtype=np.float32) - self.mean) / self.scale) @ self.components

    def apply(self, raw: np.ndarray) -> np.ndarray:
        projected = self.project(raw)
        norms = np.linalg.norm(projected, axis=-1, keepdims=True)
        return (projected / np.maximum(norms, 1e-12)).astype(np.float32)

    def then(self, matrix: np.ndarray) -> FeatureTransform:
        """This transform followed by a further linear map (dim, new_dim)."""
        return FeatureTransform(self.mean, self.scale, (self.components @ matrix).astype(np.float32))

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, mean=self.mean, scale=self.scale, components=self.components)

    @classmethod
    def load(cls, path: Path) -> FeatureTransform:
        with np.load(path) as data:
            return cls(data["mean"], data["scale"], data["components"])
