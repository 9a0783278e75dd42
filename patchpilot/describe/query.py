"""Text queries on the built-in path: parse the words, score presets by their descriptors.

"That gritty Billie Eilish bassline" becomes the category ``bass`` and the wish ``gritty``
(grit up; agrees with presets tagged gritty or distorted, disagrees with clean ones);
"that", "billie" and "eilish" are reported as ignored. Presets of the asked categories are
scored by how far their descriptors go each asked way (percentiles among those presets, so
"bright bass" means bright for a bass) and by their tags; the best preset of each family
(a designed preset and its variants) comes first so five variants of one design do not fill
the top five.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from patchpilot.audio.descriptors import DESCRIPTOR_SCHEMA, DESCRIPTORS
from patchpilot.describe.vocabulary import (
    ADJECTIVES,
    CATEGORY_WORDS,
    FILLER,
    INTENSIFIERS,
    NEGATIONS,
    PHRASES,
    SYNONYMS,
    opposite_tags,
)
from patchpilot.errors import IndexLoadError, UsageError
from patchpilot.index.store import PresetStore

#: Weight of descriptor agreement (measured from audio) and of tag agreement (set by the
#: preset's designer; variants inherit their family's tags although their sound moved).
DESCRIPTOR_WEIGHT = 1.0
TAG_WEIGHT = 0.5
#: Tie-break towards designed presets over their variants (scores are in 0..1).
DESIGNED_BONUS = 1e-3
#: Where each category is usually played (MIDI note that should sound), for --export WAVs.
CATEGORY_NOTES = {"bass": 36, "lead": 72, "bell": 72}
DEFAULT_AUDITION_NOTE = 60

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


@dataclass(frozen=True)
class Wish:
    """One understood adjective: its headword, asked for (+1) or against (-1), and a weight."""

    word: str
    headword: str
    sign: int
    weight: float = 1.0


@dataclass(frozen=True)
class TextQuery:
    """A parsed text query."""

    text: str
    categories: tuple[str, ...] = ()
    excluded_categories: tuple[str, ...] = ()
    wishes: tuple[Wish, ...] = ()
    understood: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    def directions(self) -> dict[str, float]:
        """Net signed weight per descriptor the query asks for (positive: more)."""
        out: dict[str, float] = {}
        for wish in self.wishes:
            for name, weight in ADJECTIVES[wish.headword].descriptors.items():
                out[name] = out.get(name, 0.0) + wish.sign * wish.weight * weight
        return {name: w for name, w in out.items() if abs(w) > 1e-9}

    def to_dict(self) -> dict:
        return {"understood": list(self.understood), "ignored": list(self.ignored),
                "categories": list(self.categories), "directions": {k: round(v, 3) for k, v in self.directions().items()}}


def _lookup_word(word: str) -> tuple[str, str] | None:
    """``("category", name)`` or ``("adjective", headword)`` for a word, trying plural stems."""
    for candidate in (word, word[:-1] if word.endswith("s") else None, word[:-2] if word.endswith("es") else None):
        if not candidate:
            continue
        if candidate in CATEGORY_WORDS:
            return "category", candidate
        if candidate in ADJECTIVES:
            return "adjective", candidate
        if candidate in SYNONYMS:
            return "adjective", SYNONYMS[candidate]
    return None


def _tokens(text: str) -> list[str]:
    """Lower-case words; phrases (``PHRASES``) become one token, unknown hyphenated words split."""
    raw: list[str] = []
    for token in _TOKEN.findall(text.lower().replace("’", "'")):
        token = token.replace("'", "")
        spaced = token.replace("-", " ")
        if "-" in token and spaced not in PHRASES and _lookup_word(token) is None:
            raw += spaced.split()
        else:
            raw.append(spaced if spaced in PHRASES else token)
    merged: list[str] = []
    i = 0
    while i < len(raw):
        pair = f"{raw[i]} {raw[i + 1]}" if i + 1 < len(raw) else None
        if pair in PHRASES:
            merged.append(pair)
            i += 2
        else:
            merged.append(raw[i])
            i += 1
    return merged


def parse_query(text: str) -> TextQuery:
    """Categories, adjectives (with negation and intensity) and the words nobody understood."""
    categories: list[str] = []
    excluded: list[str] = []
    wishes: list[Wish] = []
    understood: list[str] = []
    ignored: list[str] = []
    negate, scale = False, 1.0
    modifiers: list[str] = []  # the "not"/"very" words before the next understood word
    for token in _tokens(text):
        if token in PHRASES:
            found: tuple[str, str] | None = ("adjective", PHRASES[token])
        else:
            found = _lookup_word(token)
        if found is None:
            if token in NEGATIONS:
                negate = True
                modifiers.append(token)
            elif token in INTENSIFIERS:
                scale *= INTENSIFIERS[token]
                modifiers.append(token)
            elif token not in FILLER:
                ignored.append(token)
            continue
        kind, name = found
        if kind == "category":
            chosen = CATEGORY_WORDS[name]
            target = excluded if negate else categories
            target += [c for c in chosen if c not in target]
            meaning = "/".join(chosen)
        else:
            wishes.append(Wish(token, name, -1 if negate else 1, scale))
            meaning = name
        understood.append(" ".join([*modifiers, token]) + ("" if token == meaning else f" ({meaning})"))
        negate, scale, modifiers = False, 1.0, []
    categories = [c for c in categories if c not in excluded]
    return TextQuery(text, tuple(categories), tuple(excluded), tuple(wishes), tuple(understood), tuple(ignored))


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Per column, each value's rank among the others scaled to 0..1 (ties share the mean
    rank; NaN, from silent renders, sits at 0.5)."""
    out = np.full(values.shape, 0.5, dtype=np.float64)
    for column in range(values.shape[1]):
        x = values[:, column]
        known = ~np.isnan(x)
        count = int(known.sum())
        if count < 2:
            continue
        ordered = np.sort(x[known])
        below = np.searchsorted(ordered, x[known], side="left")
        above = np.searchsorted(ordered, x[known], side="right")
        out[known, column] = ((below + above - 1) / 2) / (count - 1)
    return out


@dataclass(frozen=True)
class Evidence:
    """What a text hit matched on: a descriptor the words asked for, the way (+1 more, -1
    less), its measured value and its percentile among the presets compared (0-100)."""

    descriptor: str
    way: int
    value: float
    percentile: float


@dataclass(frozen=True)
class TextHit:
    row: int
    preset_id: str
    score: float  # 0..1, higher is better
    evidence: tuple[Evidence, ...] = ()

    @property
    def distance(self) -> float:
        return 1.0 - self.score


@dataclass
class DescriptorTable:
    """Every preset's descriptors and labels, loaded once from an index's store."""

    rows: np.ndarray
    values: np.ndarray  # (n, len(DESCRIPTORS))
    preset_ids: list[str]
    synths: np.ndarray
    categories: np.ndarray
    tags: list[frozenset[str]]
    pitch_offsets: dict[int, float | None] = field(default_factory=dict)

    @classmethod
    def load(cls, store: PresetStore, index_path: Path) -> DescriptorTable:
        missing = store.rows_without_descriptors(DESCRIPTOR_SCHEMA)
        if missing:
            what = "has no sound descriptors" if len(missing) == store.count() else \
                f"lacks sound descriptors for {len(missing)} presets"
            raise IndexLoadError(f"the index at {index_path} {what}, which text queries need; add them with "
                                 f"`patchpilot build-index --index {index_path} --describe` (a few minutes)")
        rows, values = store.descriptors(DESCRIPTOR_SCHEMA)
        labels = store.labels()
        return cls(rows, values.astype(np.float64), [labels[int(r)][0] for r in rows],
                   np.array([labels[int(r)][1] for r in rows]), np.array([labels[int(r)][2] for r in rows]),
                   [frozenset(labels[int(r)][3]) for r in rows], store.pitch_offsets())

    def pool(self, query: TextQuery, synth: str | None = None) -> np.ndarray:
        """Mask of the presets a query chooses among (its categories, the synth)."""
        mask = np.ones(self.rows.size, dtype=bool)
        if synth is not None:
            mask &= self.synths == synth
        if query.categories:
            mask &= np.isin(self.categories, query.categories)
        if query.excluded_categories:
            mask &= ~np.isin(self.categories, query.excluded_categories)
        return mask

    def scores(self, query: TextQuery, mask: np.ndarray, ranks: np.ndarray | None = None) -> np.ndarray:
        """Score (0..1) of each preset in ``mask``: weighted agreement with every wish."""
        ranks = percentile_ranks(self.values[mask]) if ranks is None else ranks
        tags = [self.tags[i] for i in np.flatnonzero(mask)]
        if not query.wishes:
            return np.full(int(mask.sum()), 0.5)
        total, weight_sum = np.zeros(int(mask.sum())), 0.0
        for wish in query.wishes:
            term = ADJECTIVES[wish.headword]
            parts, weights = np.zeros_like(total), 0.0
            stored = {name: w for name, w in term.descriptors.items() if name in DESCRIPTORS}  # not tweak's own
            if stored:
                agreement = np.zeros_like(total)
                for name, weight in stored.items():
                    column = ranks[:, DESCRIPTORS.index(name)]
                    agreement += abs(weight) * (column if weight * wish.sign > 0 else 1.0 - column)
                parts += DESCRIPTOR_WEIGHT * agreement / sum(abs(w) for w in stored.values())
                weights += DESCRIPTOR_WEIGHT
            if term.tags:
                agree, disagree = set(term.tags), set(opposite_tags(wish.headword))
                if wish.sign < 0:
                    agree, disagree = disagree, agree
                vote = np.array([(1.0 if t & agree else 0.0) - (1.0 if t & disagree else 0.0) for t in tags])
                parts += TAG_WEIGHT * (vote + 1.0) / 2.0
                weights += TAG_WEIGHT
            if weights > 0:  # a tag-only word counts for nothing when tags are switched off
                total += wish.weight * parts / weights
                weight_sum += wish.weight
        return total / weight_sum if weight_sum > 0 else np.full_like(total, 0.5)

    def search(self, query: TextQuery, *, top_k: int, synth: str | None = None) -> list[TextHit]:
        """The best ``top_k`` presets, one per family while families last."""
        if not query.understood:
            shown = ", ".join(query.ignored) or query.text
            raise UsageError(f"no sound words understood in {query.text!r} (ignored: {shown}); "
                             "try words like bright, dark, plucky, evolving, gritty, pad, bass, keys")
        mask = self.pool(query, synth)
        if not mask.any():
            wanted = "/".join(query.categories) or "any"
            raise UsageError(f"the index has no {wanted} presets" + (f" for {synth}" if synth else ""))
        positions = np.flatnonzero(mask)
        ranks = percentile_ranks(self.values[mask])
        scores = self.scores(query, mask, ranks)
        designed = np.array(["~" not in self.preset_ids[i] for i in positions])
        order = np.argsort(-(scores + DESIGNED_BONUS * designed), kind="stable")
        picked = one_per_family([self.preset_ids[positions[i]] for i in order], top_k)
        asked = {name: 1 if way > 0 else -1 for name, way in query.directions().items() if name in DESCRIPTORS}

        def evidence(position: int) -> tuple[Evidence, ...]:
            return tuple(Evidence(name, way, float(self.values[positions[position], DESCRIPTORS.index(name)]),
                                  round(100 * float(ranks[position, DESCRIPTORS.index(name)]), 1))
                         for name, way in asked.items())

        return [TextHit(int(self.rows[positions[order[i]]]), self.preset_ids[positions[order[i]]],
                        float(scores[order[i]]), evidence(order[i])) for i in picked]

    def audition_note(self, row: int, category: str) -> int:
        """The note to play a preset at so it sounds where its category usually sits."""
        offset = self.pitch_offsets.get(row)
        note = CATEGORY_NOTES.get(category, DEFAULT_AUDITION_NOTE) - (round(offset) if offset is not None
                                                                     and abs(offset) <= 24 else 0)
        return int(np.clip(note, 12, 108))


def one_per_family(preset_ids: Sequence[str], top_k: int) -> list[int]:
    """Positions of the first ``top_k`` ids, taking one per family (the part before ``~``)
    first and filling up with the rest when there are fewer families than ``top_k``."""
    seen: set[str] = set()
    first, rest = [], []
    for position, preset_id in enumerate(preset_ids):
        family = preset_id.split("~")[0]
        (rest if family in seen else first).append(position)
        seen.add(family)
        if len(first) >= top_k:
            break
    return (first + rest)[:top_k]
