"""The reporter's page in words: every stage has a sentence, the timeline is an allow-list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.case import Stage
from domain.track import (
    CaseFacts,
    Event,
    PageTimings,
    next_steps,
    open_request,
    stage_sentence,
    timeline,
)

AT = datetime(2026, 12, 1, 15, 5, tzinfo=UTC)


@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_has_words_without_its_slug(stage: Stage) -> None:
    facts = CaseFacts("WHN-A", stage, AT, team="cid", redirected_to="Action Fraud")
    sentence = stage_sentence(facts)
    assert sentence[0].isupper() and sentence.endswith(".") and "_" not in sentence
    assert next_steps(facts, PageTimings(), now=AT)


def test_the_timeline_shows_only_what_the_reporter_may_see() -> None:
    events = (
        Event(AT, "received", {"channel": "online"}),
        Event(AT, "assessed", {"harm": 3}),
        Event(AT, "step:intelligence", {"note": "suspect known to police"}),
        Event(AT, "stage:awaiting_details", {"summary": "details requested (2)"}),
        Event(AT, "claimed", {"by": "handler-1"}),
    )
    facts = CaseFacts("WHN-A", Stage.AWAITING_DETAILS, AT, events=events)
    lines = [line.text for line in timeline(facts)]
    assert lines == ["We received your report.", "We asked you for more information."]
    request = open_request(facts, PageTimings(details_expiry=timedelta(days=14)))
    assert request is not None and request.number == 2
    assert request.lapses_at == AT + timedelta(days=14)
    assert "Tuesday 15 December 2026 at 3:05pm" in next_steps(facts, PageTimings(), now=AT)[0]


def test_a_reopened_case_says_so_rather_than_repeating_its_first_steps() -> None:
    events = (
        Event(AT, "received"),
        Event(AT, "stage:with_imu", {"summary": "crime recorded"}),
        Event(AT, "stage:closed_by_imu"),
        Event(AT, "reporter.abc", {}),
        Event(AT, "reopen_requested"),
        Event(AT, "reopened", {"reason": "new witness"}),
        Event(AT, "stage:with_imu", {"summary": "reopened"}),
        Event(AT, "suspect:arrested", {"note": "named person"}),
    )
    facts = CaseFacts("WHN-A", Stage.WITH_IMU, AT, events=events)
    assert [line.text for line in timeline(facts)] == [
        "We received your report.",
        "Your report was recorded as a crime.",
        "Your case was closed without a further investigation.",
        "You asked us to look at your case again.",
        "Your case was opened again.",
        "We started looking at your case again.",
    ]


def test_the_update_promise_is_the_interval_agreed_with_the_victim() -> None:
    facts = CaseFacts("WHN-A", Stage.INVESTIGATING, AT, team="cid")
    assert "at least every 4 weeks" in next_steps(facts, PageTimings(), now=AT)[0]
    agreed = CaseFacts(
        "WHN-A",
        Stage.INVESTIGATING,
        AT,
        team="cid",
        enhanced_rights=True,
        events=(Event(AT, "updates_agreed", {"every": 7 * 86400.0}),),
    )
    steps = next_steps(agreed, PageTimings(), now=AT)
    assert "at least every week" in steps[0] and "within 1 working day" in steps[1]
