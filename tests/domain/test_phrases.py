"""domain.phrases: whole-word, case-insensitive phrase screening with negation."""

from __future__ import annotations

import pytest

from domain.phrases import find_phrases, normalise_text

NEGATIONS = ("no", "not", "never", "without", "didn't", "wasn't")


@pytest.mark.parametrize(
    ("text", "phrases", "expected"),
    [
        ("He had a knife", ["knife"], ["knife"]),
        ("He had a KNIFE!", ["knife"], ["knife"]),
        ("knife", ["knife"], ["knife"]),
        ("the knife's handle", ["knife"], ["knife"]),
        ("penknives everywhere", ["knife", "knives"], []),
        ("The fireplace was smashed", ["fire"], []),
        ("A fire-damaged door", ["fire"], ["fire"]),
        ("He was fired from work", ["fire"], []),
        ("Bonfire night", ["fire"], []),
        ("a gunshot", ["gun"], []),
        ("I can't breathe", ["can't breathe"], ["can't breathe"]),
        ("I can\u2019t breathe", ["can't breathe"], ["can't breathe"]),
        ("I CAN\u2018T   BREATHE", ["can't breathe"], ["can't breathe"]),
        ("I can't\nbreathe", ["can't breathe"], ["can't breathe"]),
        ("he is still here", ["he is still here"], ["he is still here"]),
        ("he is still here", ["He Is Still Here"], ["He Is Still Here"]),
        ("he is not still here", ["he is still here"], []),
        ("", ["knife"], []),
        ("knife gun knife", ["gun", "knife", "gun"], ["gun", "knife"]),
        ("Straße", ["strasse"], ["strasse"]),
    ],
)
def test_whole_words_any_case(text: str, phrases: list[str], expected: list[str]) -> None:
    assert find_phrases(text, phrases) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("There was no knife", []),
        ("He did not have a knife", []),
        ("He didn't have a knife", []),
        ("He didn\u2019t have a knife", []),
        ("It wasn't a knife", []),
        ("Without a knife", []),
        ("No, he has a knife", ["knife"]),
        ("no. he has a knife", ["knife"]),
        ("I have never seen him but he had a knife", ["knife"]),
        ("There was no gun but there was a knife", ["knife"]),
        ("no knife, then a knife", ["knife"]),
        ("Not sure what it was but he pulled out a long knife", ["knife"]),
    ],
)
def test_negation_in_the_same_clause_and_window(text: str, expected: list[str]) -> None:
    assert find_phrases(text, ["knife"], negations=NEGATIONS, negation_window=3) == expected


def test_negation_window_zero_disables_negation() -> None:
    assert find_phrases("no knife", ["knife"], negations=NEGATIONS, negation_window=0) == ["knife"]


def test_negation_window_is_counted_in_words() -> None:
    text = "no one saw that he had a knife"
    assert find_phrases(text, ["knife"], negations=NEGATIONS, negation_window=3) == ["knife"]
    assert find_phrases(text, ["knife"], negations=NEGATIONS, negation_window=8) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The fire alarm went off", []),
        ("The Fire  Alarm went off, then a fire", ["fire"]),
        ("a glue gun", []),
        ("a glue gun and a gun", ["gun"]),
    ],
)
def test_exclusions_blank_their_words(text: str, expected: list[str]) -> None:
    found = find_phrases(text, ["fire", "gun"], exclusions=["fire alarm", "glue gun"])
    assert found == expected


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_phrase_is_an_error(bad: str) -> None:
    with pytest.raises(ValueError, match="empty phrase"):
        find_phrases("text", [bad])


def test_special_characters_are_literal() -> None:
    assert find_phrases("a (b) c", ["(b)"]) == ["(b)"]
    assert find_phrases("a b c", ["(b)"]) == []
    assert find_phrases("it cost 5.00", ["5.00"]) == ["5.00"]
    assert find_phrases("it cost 5x00", ["5.00"]) == []


def test_normalise_text() -> None:
    assert normalise_text("Can\u2019T") == "can't"
