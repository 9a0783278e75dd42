"""Neural proposals on a tiny network: the numpy forward pass equals the training framework's,
proposals are valid presets, they join the re-ranker's candidates, and a network trained in
another embedding space is not used."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import pytest

from patchpilot import proposal
from patchpilot.api import PatchPilot
from patchpilot.errors import PatchPilotWarning
from patchpilot.index.index import TRANSFORM_NAME, PresetIndex
from patchpilot.proposal import ProposalNet, model_path, transform_digest
from patchpilot.synths import get_engine


def trainer():  # the training script as a module (``python -m scripts.train_proposals``)
    return importlib.import_module("scripts.train_proposals")


@pytest.fixture(scope="module")
def tiny_nets(tiny_index: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """Networks trained for two epochs on the tiny index, as ``python -m scripts.train_proposals`` trains."""
    pytest.importorskip("torch")
    train = trainer()
    folder = tmp_path_factory.mktemp("models")
    index = PresetIndex.open(tiny_index)
    digest = transform_digest(index.files / TRANSFORM_NAME)
    models = {}
    for synth in ("dexed", "vital"):
        inputs, targets_c, targets_d, _, _, continuous, discrete, sizes = train.training_data(index, synth)
        model = train.train(inputs, targets_c, targets_d, sizes, epochs=2, seed=0)
        train.to_net(model, synth, digest, continuous, discrete, sizes).save(model_path(synth, folder))
        models[synth] = (model, inputs)
    index.close()
    return folder, models


def test_numpy_forward_pass_equals_torch(tiny_nets: tuple[Path, dict]) -> None:
    import torch

    folder, models = tiny_nets
    for synth, (model, inputs) in models.items():
        net = ProposalNet.load(model_path(synth, folder))
        units, logits = net.forward(inputs[:7])
        body, head_c, head_d = model
        with torch.no_grad():
            hidden = body(torch.from_numpy(inputs[:7]))
            expected_units = torch.sigmoid(head_c(hidden)).numpy()
            expected_logits = head_d(hidden).numpy()
        assert np.allclose(units, expected_units, atol=1e-5)
        assert np.allclose(np.concatenate(logits, axis=1), expected_logits, atol=1e-4)


def test_proposals_are_valid_presets_inside_the_musical_ranges(tiny_nets: tuple[Path, dict]) -> None:
    folder, models = tiny_nets
    for synth, (_, inputs) in models.items():
        net = ProposalNet.load(model_path(synth, folder))
        space = get_engine(synth).params
        presets = net.propose(inputs[0, :-1], 57)
        assert len(presets) == proposal.PROPOSALS_PER_SYNTH
        for preset in presets:
            assert set(preset.values) == set(space.names())
            for name in net.continuous_names:
                low, high = space[name].search_range
                assert low - 1e-6 <= preset.values[name] <= high + 1e-6
            for name in net.discrete_names:
                assert preset.values[name] == space[name].clip(preset.values[name])
        # the runners-up differ from the answer in one discrete parameter each
        for other in presets[1:]:
            assert sum(other.values[n] != presets[0].values[n] for n in space.names()) == 1


def test_proposals_join_the_candidates_only_in_their_own_embedding_space(
        tiny_nets: tuple[Path, dict], tiny_index: Path, pluck_wav: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    folder, _ = tiny_nets
    monkeypatch.setattr(proposal, "MODELS_DIR", folder)
    with PatchPilot(tiny_index, proposals=True) as pilot:
        result = pilot.match(pluck_wav, top_k=40)
    proposed = [m for m in result.matches if ":proposed-" in m.preset_id]
    assert {m.preset.synth for m in proposed} == {"vital", "dexed"}
    assert all(m.preset.origin == "proposed" and m.retrieval_distance is None for m in proposed)
    # the re-ranker keeps whichever sounds closer: the pluck's own preset still wins
    assert result.matches[0].preset_id == "vital:test-pluck"
    with PatchPilot(tiny_index) as pilot:  # off by default
        assert not any(":proposed-" in m.preset_id for m in pilot.match(pluck_wav, top_k=40).matches)

    # networks of another projection are not used, with one warning
    other = tmp_path / "other"
    other.mkdir()
    for synth in ("vital", "dexed"):
        net = ProposalNet.load(model_path(synth, folder))
        ProposalNet(synth, "0" * 16, net.hidden, net.continuous_head, net.discrete_head, net.continuous_names,
                    net.discrete_names, net.discrete_sizes).save(model_path(synth, other))
    monkeypatch.setattr(proposal, "MODELS_DIR", other)
    with PatchPilot(tiny_index, proposals=True) as pilot, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pilot.match(pluck_wav, top_k=40)
    assert not any(":proposed-" in m.preset_id for m in result.matches)
    assert [str(w.message)[:28] for w in caught if w.category is PatchPilotWarning] == ["no proposal network fits the"]


def test_a_corpus_gives_training_pairs_in_the_index_space(tiny_index: Path, tiny_banks: Path, tmp_path: Path) -> None:
    from patchpilot.corpus import Corpus, CorpusBuilder, CorpusPlan

    CorpusBuilder(CorpusPlan(tmp_path / "corpus", 6, ("dexed",), factory_root=tiny_banks, notes=(48, 72),
                             velocities=(100,))).build()
    corpus = Corpus.open(tmp_path / "corpus")
    train = trainer()
    with PresetIndex.open(tiny_index) as index:
        inputs, _, _, _, stored, continuous, discrete, sizes = train.training_data(index, "dexed")
        more_in, more_c, more_d, families = train.corpus_data(corpus, index, "dexed", continuous, discrete)
        ids = {sp.preset_id for sp in stored.values()}
    data = corpus.load("dexed")
    assert len(more_in) == int(data.audible.sum()) > 0 and more_in.shape[1] == inputs.shape[1]
    assert np.allclose(np.linalg.norm(more_in[:, :-1], axis=1), 1.0, atol=1e-4)  # unit vectors, as the index's
    assert sorted(set(np.round(more_in[:, -1], 4))) == sorted({round((n - proposal.NOTE_CENTER) / proposal.NOTE_SPAN, 4)
                                                              for n in (48, 72)})
    assert ((more_c >= 0) & (more_c <= 1)).all() and more_c.shape[1] == len(continuous)
    assert ((more_d >= 0) & (more_d < np.array(sizes))).all()
    assert set(families) <= ids  # every pair names the factory preset (family) it comes from
