#!/usr/bin/env python
"""Train the neural proposal networks (``patchpilot/proposal.py``) on an index.

    pip install torch==2.13.0                       # training only; matching runs them in numpy
    python -m scripts.train_proposals --index indexes/default
    python -m scripts.train_proposals --synth dexed --holdout 0.15   # report held-out families too
    python -m scripts.train_proposals --corpus corpus/   # add a `patchpilot corpus` to the pairs

Training pairs come from the index itself: every preset's vector at every indexed note, with
the key it was played at, maps to the preset's parameters (continuous ones as positions in
their musical range, discrete ones as classes). No rendering is needed. With ``--holdout``,
a share of preset families (a designed preset and all its variants) is left out of training
and the script reports, on renders of those, how often the network's proposal sounds closer
(the re-ranker's distance) than the nearest library preset by vector. The shipped networks
are trained on every family (``--holdout 0``). ``--corpus`` adds the audible renders of a
corpus (``patchpilot corpus``, every note and velocity) as further pairs, mapped into the
index's space by its own transform; with ``--holdout`` the corpus patches made from a
held-out family are left out too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from patchpilot.corpus import Corpus
from patchpilot.index.index import TRANSFORM_NAME, PresetIndex
from patchpilot.library.bank import factory_preset_id
from patchpilot.paths import default_index_dir
from patchpilot.proposal import MODELS_DIR, NOTE_CENTER, NOTE_SPAN, ProposalNet, model_path, transform_digest
from patchpilot.synths import get_engine

HIDDEN = (256, 256)
#: Weight of the discrete parameters' cross-entropy (summed over them) against the L1 of
#: the continuous positions (averaged over them).
DISCRETE_WEIGHT = 0.2


def family(preset_id: str) -> str:
    return preset_id.split("~")[0]


def training_data(index: PresetIndex, synth: str):  # arrays and names
    """(inputs, continuous targets, discrete targets, row of each pair, names, sizes)."""
    data = index._vectors  # the index's own vectors are the training inputs
    space = get_engine(synth).params
    rows = [int(r) for r in data["rows"][data["synths"] == synth]]
    stored = {sp.row: sp for sp in index.store.iter_presets(rows)}
    continuous = [n for n in space.names() if space[n].kind == "continuous"]
    discrete = [n for n in space.names() if space[n].kind != "continuous"]
    sizes = [int(space[n].high - space[n].low) + 1 for n in discrete]
    notes = np.asarray(index.manifest.notes, dtype=np.float32)
    inputs, targets_c, targets_d, row_of = [], [], [], []
    for row in rows:
        values = space.complete(stored[row].preset.values)
        unit = [space[n].to_unit(values[n]) for n in continuous]
        classes = [int(round(values[n] - space[n].low)) for n in discrete]
        vectors = data["vectors"][data["position"][row]]
        for slot, note in enumerate(notes):
            inputs.append(np.concatenate([vectors[slot], [(note - NOTE_CENTER) / NOTE_SPAN]]))
            targets_c.append(unit)
            targets_d.append(classes)
            row_of.append(row)
    return (np.asarray(inputs, np.float32), np.asarray(targets_c, np.float32), np.asarray(targets_d, np.int64),
            np.asarray(row_of), stored, continuous, discrete, sizes)


def corpus_data(corpus: Corpus, index: PresetIndex, synth: str, continuous: list[str], discrete: list[str]):
    """Pairs from a corpus, as :func:`training_data` makes them from the index: (inputs,
    continuous targets, discrete targets, the family of each pair's parent preset)."""
    index.check_embedder(corpus.manifest["embedder"])
    data = corpus.load(synth)
    space = get_engine(synth).params
    column = {name: i for i, name in enumerate(corpus.param_names(synth))}
    patch, slot = np.nonzero(data.audible)
    vectors = index.transform.apply(data.features[patch, slot].astype(np.float32))
    notes = corpus.slots[slot, 0].astype(np.float32)
    inputs = np.concatenate([vectors, ((notes - NOTE_CENTER) / NOTE_SPAN)[:, None]], axis=1)
    raw = data.params[patch]
    unit = [np.clip((raw[:, column[n]] - space[n].search_range[0])
                    / max(space[n].search_range[1] - space[n].search_range[0], 1e-12), 0.0, 1.0) for n in continuous]
    classes = [np.rint(raw[:, column[n]] - space[n].low).astype(np.int64) for n in discrete]
    families = np.array([factory_preset_id(synth, name) for name in data.parent[patch]])
    return (inputs.astype(np.float32), np.stack(unit, axis=1).astype(np.float32) if unit else np.zeros((len(patch), 0)),
            np.stack(classes, axis=1) if classes else np.zeros((len(patch), 0), np.int64), families)


def train(inputs: np.ndarray, targets_c: np.ndarray, targets_d: np.ndarray, sizes: list[int], epochs: int,
          seed: int):  # a torch module
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    layers, width = [], inputs.shape[1]
    for size in HIDDEN:
        layers += [torch.nn.Linear(width, size), torch.nn.GELU(approximate="tanh")]
        width = size
    body = torch.nn.Sequential(*layers)
    head_c, head_d = torch.nn.Linear(width, targets_c.shape[1]), torch.nn.Linear(width, max(sum(sizes), 1))
    model = torch.nn.ModuleList([body, head_c, head_d])
    optimiser = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-5)
    x, yc, yd = torch.from_numpy(inputs), torch.from_numpy(targets_c), torch.from_numpy(targets_d)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(order), 256):
            batch = torch.from_numpy(order[start:start + 256])
            hidden = body(x[batch])
            loss = torch.nn.functional.l1_loss(torch.sigmoid(head_c(hidden)), yc[batch])
            logits, offset = head_d(hidden), 0
            for j, size in enumerate(sizes):
                loss = loss + DISCRETE_WEIGHT * torch.nn.functional.cross_entropy(
                    logits[:, offset:offset + size], yd[batch, j])
                offset += size
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if (epoch + 1) % 10 == 0:
            print(f"  epoch {epoch + 1}: loss {loss.item():.3f}", file=sys.stderr)
    return model


def to_net(model, synth: str, transform: str, continuous: list[str], discrete: list[str],
           sizes: list[int]) -> ProposalNet:
    body, head_c, head_d = model
    linear = [m for m in body if hasattr(m, "weight")]
    as_np = lambda layer: (layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy())  # noqa: E731
    return ProposalNet(synth, transform, tuple(as_np(m) for m in linear), as_np(head_c), as_np(head_d),
                       tuple(continuous), tuple(discrete), tuple(sizes))


def holdout_report(index: PresetIndex, net: ProposalNet, stored: dict, train_rows: np.ndarray,
                   held_rows: list[int], queries: int, seed: int) -> str:
    """On held-out families: the proposal against the nearest training preset by vector,
    both rendered at note 60 and scored by the re-ranker's distance against the held-out
    preset's own render."""
    from patchpilot.constants import ANALYSIS_SAMPLE_RATE_HZ
    from patchpilot.distance import PerceptualDistance

    data = index._vectors
    engine = get_engine(net.synth)
    distance = PerceptualDistance(ANALYSIS_SAMPLE_RATE_HZ)
    slot = list(index.manifest.notes).index(60)
    library = data["vectors"][[data["position"][r] for r in train_rows], slot]
    rng = np.random.default_rng(seed)
    picked = rng.choice(held_rows, size=min(queries, len(held_rows)), replace=False)
    scores = []
    for row in picked:
        vector = data["vectors"][data["position"][int(row)], slot]
        nearest = int(train_rows[int(np.argmax(library @ vector))])
        target = engine.render(stored[int(row)].preset, 60, 100, 0.8, 1.2)
        proposals = net.propose(vector, 60)
        renders = [engine.render(p, 60, 100, 0.8, 1.2) for p in [stored[nearest].preset, *proposals]]
        scores.append(distance(target, renders))
    scores = np.asarray(scores)
    best_proposal = scores[:, 1:].min(axis=1)
    return (f"{net.synth}: {len(scores)} held-out presets; nearest library preset {scores[:, 0].mean():.3f}, "
            f"first proposal {scores[:, 1].mean():.3f}, best of {scores.shape[1] - 1} proposals "
            f"{best_proposal.mean():.3f}; a proposal is closer for {np.mean(best_proposal < scores[:, 0]):.2f}; "
            f"the closer of the two {np.minimum(best_proposal, scores[:, 0]).mean():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--synth", action="append", choices=("vital", "dexed"))
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--holdout", type=float, default=0.0, help="share of families left out and evaluated")
    parser.add_argument("--queries", type=int, default=60, help="held-out presets rendered for the report")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    parser.add_argument("--corpus", type=Path, default=None, help="a `patchpilot corpus` folder to train on too")
    args = parser.parse_args()
    corpus = Corpus.open(args.corpus) if args.corpus is not None else None
    index = PresetIndex.open(args.index or default_index_dir())
    digest = transform_digest(index.files / TRANSFORM_NAME)
    args.out.mkdir(parents=True, exist_ok=True)
    for synth in args.synth or ["dexed", "vital"]:
        started = time.perf_counter()
        inputs, targets_c, targets_d, row_of, stored, continuous, discrete, sizes = training_data(index, synth)
        families = sorted({family(stored[r].preset_id) for r in set(row_of.tolist())})
        rng = np.random.default_rng(args.seed)
        held = set(rng.choice(families, size=int(round(args.holdout * len(families))), replace=False).tolist())
        keep = np.array([family(stored[r].preset_id) not in held for r in row_of])
        print(f"{synth}: {len(set(row_of.tolist()))} presets, {len(continuous)} continuous and {len(discrete)} "
              f"discrete parameters, {len(held)} of {len(families)} families held out", file=sys.stderr)
        inputs, targets_c, targets_d = inputs[keep], targets_c[keep], targets_d[keep]
        if corpus is not None and synth in corpus.synths:
            more_in, more_c, more_d, parents = corpus_data(corpus, index, synth, continuous, discrete)
            fresh = np.array([parent not in held for parent in parents], dtype=bool)
            inputs, targets_c, targets_d = (np.concatenate([inputs, more_in[fresh]]),
                                            np.concatenate([targets_c, more_c[fresh]]),
                                            np.concatenate([targets_d, more_d[fresh]]))
            print(f"{synth}: {int(fresh.sum())} more pairs from the corpus in {args.corpus}", file=sys.stderr)
        model = train(inputs, targets_c, targets_d, sizes, args.epochs, args.seed)
        net = to_net(model, synth, digest, continuous, discrete, sizes)
        if held:
            train_rows = np.unique(row_of[keep])
            held_rows = sorted(set(row_of[~keep].tolist()))
            print(holdout_report(index, net, stored, train_rows, held_rows, args.queries, args.seed))
        else:
            net.save(model_path(synth, args.out))
            print(f"wrote {model_path(synth, args.out)} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
