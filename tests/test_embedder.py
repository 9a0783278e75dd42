"""The built-in timbre embedder."""

from __future__ import annotations

import numpy as np

from patchpilot.embed import get_embedder
from patchpilot.embed.timbre import TimbreEmbedder
from patchpilot.embed.transform import FeatureTransform
from patchpilot.synths import get_engine


def test_features_have_the_declared_size_and_are_deterministic() -> None:
    engine = get_engine("dexed")
    notes = [engine.render(engine.init_preset(), n, 100, 0.8, 0.9) for n in (48, 60)]
    embedder = get_embedder("timbre")
    first = embedder.features(notes)
    assert first.shape == (2, TimbreEmbedder.dim()) and first.dtype == np.float32
    assert np.array_equal(first, embedder.features(notes))
    assert embedder.identity == "timbre/1"


def test_a_transposed_note_stays_closer_to_itself_than_to_another_preset() -> None:
    engine = get_engine("vital")
    presets = [
        engine.make_preset("saw", {"osc_1_wavetable": "Saw", "filter_1_on": True, "filter_1_cutoff": 2000}),
        engine.make_preset("square", {"osc_1_wavetable": "Square", "env_1_decay": 0.4, "env_1_sustain": 0.3}),
        engine.make_preset("pad", {"osc_1_wavetable": "Vowels", "env_1_attack": 0.3, "osc_1_unison_voices": 3}),
    ]
    embedder = get_embedder()
    indexed = embedder.features([engine.render(p, 60, 100, 0.85, 0.9) for p in presets])
    transform = FeatureTransform.fit(np.repeat(indexed, 4, axis=0) + np.random.default_rng(0).normal(
        0, 0.01, (12, indexed.shape[1])), TimbreEmbedder.block_weights(), dim=8)
    index_vectors = transform.apply(indexed)
    shifted = transform.apply(embedder.features([engine.render(p, 64, 80, 1.2, 1.5) for p in presets]))
    similarity = shifted @ index_vectors.T
    assert list(np.argmax(similarity, axis=1)) == [0, 1, 2]


def test_transform_round_trips_through_a_file(tmp_path) -> None:
    raw = np.random.default_rng(0).normal(size=(50, TimbreEmbedder.dim())).astype(np.float32)
    transform = FeatureTransform.fit(raw, TimbreEmbedder.block_weights(), dim=16)
    transform.save(tmp_path / "t.npz")
    loaded = FeatureTransform.load(tmp_path / "t.npz")
    assert np.allclose(loaded.apply(raw), transform.apply(raw))
    assert np.allclose(np.linalg.norm(transform.apply(raw), axis=1), 1.0)
