"""The index's learned projection: what varies between a query and its own preset.

A query differs from the index's renders of the same preset in ways that say nothing about
the preset: another pitch, velocity and note length, background noise, the phase of
free-running effect LFOs. At build time we render query-like notes of a sample of presets,
run them through the same analysis and embedder as real queries, and measure how far each
lands from its own preset's (pitch-interpolated) index vector. A linear discriminant then
whitens those within-preset differences and keeps the directions along which presets
differ most (Fisher's LDA, regularised). Measured effect: docs/EMBEDDER.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from patchpilot.audio.analysis import analyse_clip
from patchpilot.audio.io import Audio
from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
from patchpilot.errors import InputAudioError
from patchpilot.synths import Preset, Voice

#: Queries rendered per synth to fit the projection.
TRAINING_QUERIES_PER_SYNTH = 800
#: Noise, velocity and length ranges of the training queries (like the benchmark's).
TRAINING_NOISE_DB = (-40.0, -25.0)
TRAINING_VELOCITIES = (40, 127)
TRAINING_NOTE_SECONDS = (0.5, 1.6)
TRAINING_TAIL_SECONDS = 0.8
#: Ridge added to the within-preset scatter (fraction of its mean variance).
REGULARISATION = 0.1
#: Dimensions kept after the discriminant.
OUTPUT_DIM = 64


@dataclass(frozen=True)
class TrainingQuery:
    row: int
    note: int
    velocity: int
    note_seconds: float
    noise_db: float
    seed: int


def plan_queries(rows: Sequence[int], notes: Sequence[int], count: int, seed: int) -> list[TrainingQuery]:
    """Query settings for ``count`` presets drawn from ``rows``: a note between two indexed
    notes (3-9 semitones above the lower one), another velocity and length, some noise."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(np.asarray(rows), size=min(count, len(rows)), replace=False)
    plans = []
    for row in chosen:
        slot = int(rng.integers(0, max(1, len(notes) - 1)))
        note = int(notes[slot]) + int(rng.integers(3, 10)) if len(notes) > 1 else int(notes[0]) + int(rng.integers(-5, 6))
        plans.append(TrainingQuery(int(row), note, int(rng.integers(*TRAINING_VELOCITIES)),
                                   float(rng.uniform(*TRAINING_NOTE_SECONDS)), float(rng.uniform(*TRAINING_NOISE_DB)),
                                   int(rng.integers(2**31))))
    return plans


def render_query(voice: Voice, preset: Preset, query: TrainingQuery) -> Audio:
    """The query as the matcher would receive it: rendered, noisy, at the analysis rate."""
    audio = voice.render(preset, query.note, query.velocity, query.note_seconds,
                         query.note_seconds + TRAINING_TAIL_SECONDS)
    level = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    noise = np.random.default_rng(query.seed).normal(0.0, level * 10 ** (query.noise_db / 20), audio.size)
    return Audio((audio + noise).astype(np.float32), ANALYSIS_SAMPLE_RATE_HZ, f"training query {query.row}")


def query_features(voice: Voice, preset: Preset, query: TrainingQuery, embedder) -> np.ndarray | None:  # noqa: ANN001
    """Raw features of the training query's best note, or None when analysis finds no note."""
    try:
        note = analyse_clip(render_query(voice, preset, query)).best
    except InputAudioError:
        return None
    return embedder.features([note.samples])[0]


def interpolate(vectors: np.ndarray, notes: Sequence[int], played: float) -> np.ndarray:
    """A preset's vectors (slots, dim) interpolated linearly to a played note."""
    grid = np.asarray(notes, dtype=np.float64)
    if grid.size == 1:
        return vectors[0]
    u = float(np.clip(np.interp(played, grid, np.arange(grid.size)), 0, grid.size - 1))
    lower = min(int(u), grid.size - 2)
    w = u - lower
    return (1 - w) * vectors[lower] + w * vectors[lower + 1]


def fit_discriminant(index_vectors: np.ndarray, residuals: np.ndarray, out_dim: int = OUTPUT_DIM,
                     regularisation: float = REGULARISATION) -> np.ndarray:
    """Matrix (dim, out_dim) maximising spread between presets relative to the spread of
    query residuals: whiten the residual scatter, then take the leading principal axes of
    the whitened index vectors."""
    dim = index_vectors.shape[1]
    within = np.cov(residuals.T) if len(residuals) > 1 else np.eye(dim)
    within = within + np.eye(dim) * regularisation * np.trace(within) / dim
    between = np.cov(index_vectors.T)
    values, vectors = np.linalg.eigh(within)
    whitening = vectors @ np.diag(1.0 / np.sqrt(np.maximum(values, 1e-12))) @ vectors.T
    spread, axes = np.linalg.eigh(whitening @ between @ whitening)
    order = np.argsort(spread)[::-1][: min(out_dim, dim)]
    return (whitening @ axes[:, order]).astype(np.float32)
