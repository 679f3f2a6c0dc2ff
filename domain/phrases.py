"""Screening free text for phrases: whole words, any case, simple negation.

Used by triage to read a report's description. Matching is deliberately plain so a
call handler can predict it from the table:

* whole words only, case-insensitive: ``fire`` matches "Fire!" but not "fireplace";
* any run of whitespace in the text matches a space in a phrase, and curly apostrophes
  count as straight ones (``can't`` also matches it written with U+2019);
* *exclusions* are phrases blanked out before searching (``fire alarm`` hides the
  ``fire`` inside it);
* a match is *negated* when one of the negation words appears among the few words
  before it in the same clause ("there was **no** knife"). Clauses end at ``. , ; : ! ?``
  and line breaks, so "No, he is still here" is not negated.

Negation trades a few missed matches for far fewer false alarms; keep the window short.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["find_phrases", "normalise_text"]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_CLAUSE_BREAK = re.compile(r"[.,;:!?\n\r]+")
_WORD = re.compile(r"[\w']+")


def normalise_text(text: str) -> str:
    """Fold case and straighten apostrophes, the form every match runs on."""
    return text.translate(_APOSTROPHES).casefold()


@lru_cache(maxsize=4096)
def _pattern(phrase: str) -> re.Pattern[str]:
    words = normalise_text(phrase).split()
    if not words:
        raise ValueError("empty phrase")
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)")


def _blank(text: str, exclusions: Iterable[str]) -> str:
    for phrase in exclusions:
        text = _pattern(phrase).sub(lambda m: " " * len(m.group(0)), text)
    return text


def _negated(text: str, start: int, negations: frozenset[str], window: int) -> bool:
    before = text[:start]
    clause_start = max((m.end() for m in _CLAUSE_BREAK.finditer(before)), default=0)
    words = _WORD.findall(before[clause_start:])
    return any(word in negations for word in words[-window:]) if window > 0 else False


def find_phrases(
    text: str,
    phrases: Sequence[str],
    *,
    exclusions: Sequence[str] = (),
    negations: Iterable[str] = (),
    negation_window: int = 3,
) -> list[str]:
    """The phrases that occur in ``text``, in the order of ``phrases``.

    A phrase counts when at least one of its occurrences is not negated.

    Args:
        text: Free text, e.g. a report's description.
        phrases: Phrases to look for (case does not matter).
        exclusions: Phrases to blank out first, so their words never match.
        negations: Words that, shortly before a match in the same clause, cancel it.
        negation_window: How many words before a match are checked for a negation.

    Returns:
        The matching phrases as given in ``phrases``, without duplicates.

    Raises:
        ValueError: A phrase or exclusion is empty or only whitespace.
    """
    normal = _blank(normalise_text(text), exclusions)
    negation_words = frozenset(normalise_text(word) for word in negations)
    found: list[str] = []
    for phrase in phrases:
        if phrase in found:
            continue
        for match in _pattern(phrase).finditer(normal):
            if not _negated(normal, match.start(), negation_words, negation_window):
                found.append(phrase)
                break
    return found
