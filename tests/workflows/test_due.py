"""What falls due, and why the main loop needs no lock (see ``workflows``).

The main loop does not take the lock staff actions hold. Two things make that safe,
and these tests hold them:

- the loop reads what falls due again after every act (``workflows.due.fire``): a staff
  action that ran while a timer's act awaited its letter changes what the next entry
  sees, so a request the action closed does not then lapse;
- the only stage a timer, the inbox or stage work sets under a running action is
  ``awaiting_review`` (a request lapsed or answered, from ``awaiting_details``), and
  every action allowed in ``awaiting_details`` is allowed in ``awaiting_review`` too, so
  no action that passed its stage check finds itself in a stage it is not allowed in.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from domain.actions import staff_actions
from domain.case import Stage
from workflows.due import Due, Work, earliest, fire

T0 = datetime(2026, 11, 28, tzinfo=UTC)


async def test_an_entry_whose_condition_an_action_changed_meanwhile_does_not_act():
    state = {"request_open": True, "reminded": False, "lapsed": False}
    letter_sent = asyncio.Event()

    async def remind() -> None:
        state["reminded"] = True
        await letter_sent.wait()  # the reminder's letter is on its way

    async def lapse() -> None:
        state["lapsed"] = True

    def due() -> list[Due]:
        if not state["request_open"]:
            return []
        entries = [] if state["reminded"] else [Due(T0, "Remind the reporter", remind)]
        return [*entries, Due(T0, "Details request lapses", lapse)]

    async def record_crime() -> None:  # a staff action, running beside the loop
        await asyncio.sleep(0)
        state["request_open"] = False
        letter_sent.set()

    await asyncio.gather(fire(due), record_crime())
    assert state == {"request_open": False, "reminded": True, "lapsed": False}


def _acting(acted: list[str]):  # type: ignore[no-untyped-def]
    """``act(label)``: an act that notes ``label`` in ``acted``."""

    def act(label: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            acted.append(label)

        return run

    return act


async def test_each_entry_acts_once_per_pass_in_list_order():
    acted: list[str] = []
    act = _acting(acted)

    # Still listed after it acted (its act did not change its condition): once only.
    work = [Work("assess", act("assess")), Work("hand off", act("hand off"))]
    await fire(lambda: work)
    assert acted == ["assess", "hand off"]


def test_the_wait_is_for_the_earliest_entry_ties_by_label():
    later = Due(T0 + timedelta(hours=1), "A", _never)
    first = Due(T0, "Victim update due", _never)
    tie = Due(T0, "Deadline: receipt", _never)
    assert earliest([later, first, tie]) is tie
    assert earliest([]) is None


async def _never() -> None:
    raise AssertionError("not acted on")


def test_no_action_loses_its_stage_to_what_a_timer_or_reply_sets():
    for name, model in staff_actions().items():
        if Stage.AWAITING_DETAILS in model.rule.stages:
            assert Stage.AWAITING_REVIEW in model.rule.stages, name


async def test_work_that_leaves_its_commit_is_committed_with_the_next_act_or_at_the_end():
    log: list[str] = []
    act = _acting(log)

    async def commit() -> None:
        log.append("commit")

    # The hand-off leaves its commit to the search after it: one commit for both.
    work = [Work("hand off", act("hand off"), commit=False), Work("search", act("search"))]
    await fire(lambda: work, then=commit)
    assert log == ["hand off", "search", "commit"]
    # Nothing after it (the search done meanwhile): committed at the end of the pass.
    log.clear()
    await fire(lambda: [Work("hand off", act("hand off"), commit=False)], then=commit)
    assert log == ["hand off", "commit"]
