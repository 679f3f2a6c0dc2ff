"""domain.victims: reopening targets, Right 6 suspect events and their letters, agreed updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.calendar import LONDON
from domain.case import Stage
from domain.letters import LETTERS, render
from domain.victims import (
    SuspectEvent,
    describe_interval,
    parse_update_interval,
    reopen_target,
    right6_days,
    right6_due,
)


@pytest.mark.parametrize(
    ("closed", "reopened"),
    [
        (Stage.NOT_A_CRIME, Stage.AWAITING_REVIEW),
        (Stage.CLOSED_BY_IMU, Stage.WITH_IMU),
        (Stage.CLOSED, Stage.WITH_IMU),
    ],
)
def test_each_closed_stage_reopens_to_its_step(closed: Stage, reopened: Stage) -> None:
    assert reopen_target(closed) == reopened


def test_a_redirected_case_is_not_reopened_and_says_why() -> None:
    with pytest.raises(ValueError, match="redirected: another agency has it"):
        reopen_target(Stage.REDIRECTED)


@pytest.mark.parametrize("stage", [s for s in Stage if not s.is_closed])
def test_an_open_case_is_not_reopened_and_the_stage_is_named(stage: Stage) -> None:
    with pytest.raises(ValueError, match=f"while the case is {stage.value}: it is open"):
        reopen_target(stage)


def test_every_suspect_event_has_its_own_plain_letter() -> None:
    context = {
        "force_name": "Cambridgeshire Constabulary",
        "crime_reference": "CC-2026-000123",
        "note": "Seen by officer 42.",
    }
    bodies = set()
    for event in SuspectEvent:
        assert event.letter in LETTERS
        subject, body = render(event.letter, context)
        assert subject.endswith("CC-2026-000123")
        assert "What happens next:" in body
        assert "Seen by officer 42." in body
        assert "$" not in body
        bodies.add(body)
    assert len(bodies) == len(SuspectEvent)


# Every placeholder of a suspect letter (a missing one raises: domain.letters).
_FACTS = {"force_name": "Cambridgeshire Constabulary", "crime_reference": "CC-1", "note": "-"}


def test_released_nfa_explains_the_victims_right_to_review() -> None:
    _, body = render(SuspectEvent.RELEASED_NFA.letter, _FACTS)
    assert "Victims' Right to\nReview" in body
    assert "within 3 months" in body
    assert "Victim Personal Statement" not in body


def test_charged_offers_a_victim_personal_statement() -> None:
    _, body = render(SuspectEvent.CHARGED.letter, _FACTS)
    assert "Victim Personal Statement" in body
    assert "Right to Review" not in body


@pytest.mark.parametrize(
    "event",
    [SuspectEvent.BAILED, SuspectEvent.BAIL_CHANGED],
)
def test_bail_letters_name_the_conditions_that_protect_the_victim(event: SuspectEvent) -> None:
    _, body = render(event.letter, _FACTS)
    assert "not contacting you" in body
    assert "call 101" in body
    assert "call 999" in body


def test_right6_is_5_working_days_or_1_for_enhanced_rights() -> None:
    assert right6_days(enhanced_rights=False) == 5
    assert right6_days(enhanced_rights=True) == 1


@pytest.mark.parametrize(
    ("at", "enhanced", "due"),
    [
        # Friday 11:00: a weekend in between.
        (datetime(2026, 11, 27, 11, 0), True, datetime(2026, 11, 30, 11, 0)),
        (datetime(2026, 11, 27, 11, 0), False, datetime(2026, 12, 4, 11, 0)),
        # Christmas Eve: Christmas (Friday), the weekend, Boxing Day's substitute (Monday)
        # and New Year's Day (Friday) are not working days.
        (datetime(2026, 12, 24, 10, 0), True, datetime(2026, 12, 29, 10, 0)),
        (datetime(2026, 12, 24, 10, 0), False, datetime(2027, 1, 5, 10, 0)),
        # On a Saturday the clock starts at 00:00 on Monday.
        (datetime(2026, 11, 28, 15, 0), True, datetime(2026, 12, 1, 0, 0)),
    ],
)
def test_right6_due_counts_working_days_over_bank_holidays(
    at: datetime, enhanced: bool, due: datetime
) -> None:
    start = at.replace(tzinfo=LONDON).astimezone(UTC)
    got = right6_due(start, enhanced_rights=enhanced)
    assert got.tzinfo == UTC
    assert got.astimezone(LONDON).replace(tzinfo=None) == due


@pytest.mark.parametrize(
    ("text", "every"),
    [
        ("P1D", timedelta(days=1)),
        ("P14D", timedelta(days=14)),
        ("p2w", timedelta(days=14)),
        ("P1M", timedelta(days=30)),
        ("PT36H", timedelta(hours=36)),
        ("P1Y", timedelta(days=365)),
    ],
)
def test_agreed_update_frequencies_between_a_day_and_a_year(text: str, every: timedelta) -> None:
    assert parse_update_interval(text) == every


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("PT23H", "under a day"),
        ("PT0S", "under a day"),
        ("-P1D", "not an ISO-8601 duration"),
        ("P366D", "over a year"),
        ("P2Y", "over a year"),
        ("14", "not an ISO-8601 duration"),
        ("fortnightly", "not an ISO-8601 duration"),
        ("", "not an ISO-8601 duration"),
    ],
)
def test_frequencies_out_of_bounds_are_refused_naming_the_option(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as err:
        parse_update_interval(text)
    assert str(err.value).startswith("--every: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("every", "words"),
    [
        (timedelta(days=1), "day"),
        (timedelta(days=7), "week"),
        (timedelta(days=14), "2 weeks"),
        (timedelta(days=10), "10 days"),
        (timedelta(hours=36), "36 hours"),
    ],
)
def test_frequencies_in_plain_words(every: timedelta, words: str) -> None:
    assert describe_interval(every) == words


def test_updates_agreed_and_reopened_letters_render_without_gaps() -> None:
    context = {
        "force_name": "Cambridgeshire Constabulary",
        "crime_reference": "CC-1",
        "receipt_code": "WHN-0000-0000-00",
        "every_words": "2 weeks",
        "next_update": "15 December 2026",
    }
    for letter in ("updates_agreed", "reopened_awaiting_review", "reopened_with_imu"):
        subject, body = render(letter, context)
        assert "$" not in subject + body
    assert "every 2 weeks" in render("updates_agreed", context)[1]
