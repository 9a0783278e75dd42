"""Text queries on the built-in path: parsing, scoring, descriptors in the index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from patchpilot.audio.descriptors import DESCRIPTORS
from patchpilot.describe.query import TextQuery, one_per_family, parse_query, percentile_ranks
from patchpilot.describe.vocabulary import ADJECTIVES, CATEGORY_WORDS, SYNONYMS, opposite_tags
from patchpilot.errors import IndexLoadError, UsageError
from patchpilot.index.manage import describe_index
from patchpilot.index.index import PresetIndex
from patchpilot.matching.text import TextMatcher

from conftest import copy_index


def test_the_issue_example_reads_category_and_adjective() -> None:
    query = parse_query("That gritty Billie Eilish bassline")
    assert query.categories == ("bass",)
    assert [w.headword for w in query.wishes] == ["gritty"]
    assert query.ignored == ("billie", "eilish")
    assert query.understood == ("gritty", "bassline (bass)")
    assert query.directions() == {"grit": 1.0}


def test_synonyms_plurals_phrases_and_intensity() -> None:
    query = parse_query("very crunchy pads with a slow attack")
    assert query.categories == ("pad",)
    assert [(w.headword, w.weight) for w in query.wishes] == [("gritty", 1.5), ("swelling", 1.0)]
    assert parse_query("Lo-Fi keys").wishes[0].headword == "gritty"
    assert parse_query("basses").categories == ("bass",)
    assert parse_query("stabs").categories == ("pluck", "brass")


def test_negation_flips_the_next_word() -> None:
    query = parse_query("not bright, no distortion")
    assert [(w.headword, w.sign) for w in query.wishes] == [("bright", -1), ("distorted", -1)]
    assert query.directions()["brightness"] < 0 and query.directions()["grit"] < 0
    assert query.understood == ("not bright", "no distortion (distorted)")
    assert parse_query("very crunchy keys").understood == ("very crunchy (gritty)", "keys")
    excluded = parse_query("warm sound but not a pad")
    assert excluded.excluded_categories == ("pad",) and excluded.categories == ()


def test_the_vocabulary_is_consistent() -> None:
    assert set(SYNONYMS.values()) <= set(ADJECTIVES)
    assert not set(SYNONYMS) & set(ADJECTIVES) and not set(CATEGORY_WORDS) & set(ADJECTIVES)
    from patchpilot.tweak.measure import TWEAK_DESCRIPTORS

    # the one vocabulary of text queries and tweak: every descriptor is measured by one of them
    assert all(name in TWEAK_DESCRIPTORS for term in ADJECTIVES.values() for name in term.descriptors)
    assert "dark" in opposite_tags("bright") and "bright" in opposite_tags("dark")


def test_percentile_ranks_share_ties_and_put_nan_in_the_middle() -> None:
    ranks = percentile_ranks(np.array([[1.0], [2.0], [2.0], [3.0], [np.nan]]))
    assert ranks[:, 0].tolist() == [0.0, 0.5, 0.5, 1.0, 0.5]


def test_one_per_family_before_second_members() -> None:
    ids = ["v:a~001", "v:a~002", "v:b", "v:a", "v:c~004"]
    assert one_per_family(ids, 3) == [0, 2, 4]
    assert one_per_family(ids, 5) == [0, 2, 4, 1, 3]


def test_ranking_on_the_tiny_index(tiny_index: Path) -> None:
    index = PresetIndex.open(tiny_index)
    matcher = TextMatcher(index)
    table = matcher.descriptors
    assert table.values.shape == (len(index), len(DESCRIPTORS))
    plucky = matcher.match_text("plucky", top_k=3)
    assert plucky.matches[0].preset.category in ("pluck", "keys", "bell")
    pad = matcher.match_text("soft evolving pad", top_k=2)
    assert {m.preset.category for m in pad.matches} == {"pad"}
    assert [m.rank for m in pad.matches] == [1, 2] and pad.matches[0].distance <= pad.matches[1].distance
    organ = matcher.match_text("organ", top_k=1, synth="dexed")
    assert organ.matches[0].preset_id == "dexed:test-organ"  # designed presets first on ties
    bass = matcher.match_text("deep bass", top_k=1).matches[0]
    assert bass.preset_id == "vital:test-sine-bass"
    assert bass.render.note + round(bass.stored.pitch_offset) == 36  # auditioned where basses sound
    with pytest.raises(UsageError, match="no sound words"):
        matcher.match_text("Billie Eilish")
    with pytest.raises(UsageError, match="no strings presets"):
        matcher.match_text("strings")
    index.close()


def test_descriptor_directions_hold_for_the_best_match(tiny_index: Path) -> None:
    index = PresetIndex.open(tiny_index)
    matcher = TextMatcher(index)
    table = matcher.descriptors
    for text, name, sign in (("bright", "brightness", 1), ("dark", "brightness", -1),
                             ("sustained", "sustain", 1), ("wide", "width", 1)):
        best = matcher.match_text(text, top_k=1).matches[0]
        column = table.values[:, DESCRIPTORS.index(name)]
        mine = column[np.flatnonzero(table.rows == best.stored.row)[0]]
        assert (mine - np.nanmedian(column)) * sign > 0, text
    index.close()


def test_text_answers_say_what_they_matched_on(tiny_index: Path) -> None:
    from patchpilot.report import result_to_dict

    with PresetIndex.open(tiny_index) as index:
        result = TextMatcher(index).match_text("bright not wide, very reverb", top_k=2)
    document = result_to_dict(result)
    for entry in document["matches"]:
        # the index holds no tweak-only descriptor (reverb is space): only what it measured is shown
        assert set(entry["matched_on"]) == {"brightness", "width"}
        assert entry["matched_on"]["brightness"]["asked"] == "more" and entry["matched_on"]["width"]["asked"] == "less"
    best = document["matches"][0]["matched_on"]
    assert best["brightness"]["percentile"] > 50 and 0 <= best["width"]["percentile"] <= 100


def test_an_index_without_descriptors_says_how_to_add_them(tiny_index: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old_files = copy_index(tiny_index, old)
    with sqlite3.connect(old_files / "presets.sqlite") as db:
        db.execute("DROP TABLE descriptors")
    index = PresetIndex.open(old)
    with pytest.raises(IndexLoadError, match="build-index --index .* --describe"):
        TextMatcher(index).match_text("bright pad")
    index.close()
    assert describe_index(old, workers=1) == 16
    assert describe_index(old, workers=1) == 0
    index = PresetIndex.open(old)
    assert TextMatcher(index).match_text("bright pad", top_k=1).matches[0].preset.category == "pad"
    index.close()
    assert not list(tmp_path.glob(".old*"))  # the work copy replaced the index


def test_text_query_to_dict_round_trips_the_words() -> None:
    query: TextQuery = parse_query("airy glassy bells please, Eno style")
    data = query.to_dict()
    assert data["categories"] == ["bell"] and data["ignored"] == ["eno"]
    assert data["directions"]["noisiness"] > 0


def test_the_vocabulary_doc_is_the_vocabulary() -> None:
    from patchpilot.describe.vocabulary import vocabulary_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "VOCABULARY.md"
    assert doc.read_text() == vocabulary_markdown(), "run python -m scripts.make_vocabulary_doc"
