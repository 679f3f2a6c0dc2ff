"""What falls due: one list per step file, read by both the wait and the firing.

Each step file says what its stage has coming as a list of ``Due(when, label, act)``
(timers) or ``Work(label, act)`` (stage work: something to do now that nobody waits
for). The case's main loop reads the same lists twice: to know how long to wait (the
earliest ``when``, its ``label`` the timer's summary in the UI) and, once awake, to act
on what has come due. A timer added to a list is therefore both waited for and acted on;
there is no second place to forget.

The lists are built from the case's state each time they are read, and ``fire`` builds
them again after every act, so an act never runs on a condition an earlier one (or a
staff action that ran while it awaited) has since changed. Each entry acts at most once
per pass, in list order.

The loop waits for the earliest ``when`` on one ``DueTimer`` (patch ``keep-due-timer``):
a wake that leaves the earliest time where it was (a staff action, a reply, a letter
sent) keeps the running timer instead of cancelling it and starting the same one again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow


@dataclass(frozen=True)
class Due:
    """A timer: at ``when``, ``act`` (``label`` says what, in the UI's timer summary)."""

    when: datetime
    label: str
    act: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Work:
    """Stage work ready now: ``act`` (``label`` names it). ``commit=False``: what it
    changed is committed after the next act instead (one commit for both), or at the
    end of the pass if none follows."""

    label: str
    act: Callable[[], Awaitable[None]]
    commit: bool = True


def earliest(timers: list[Due]) -> Due | None:
    """The next timer to wait for (ties broken by label, as ``min`` over pairs would)."""
    return min(timers, key=lambda t: (t.when, t.label), default=None)


async def fire(
    ready: Callable[[], list[Due] | list[Work]],
    *,
    then: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Act on each entry ``ready()`` lists, re-reading the list after every act (and
    awaiting ``then()`` after each: the case commits what the act changed; after a
    ``Work(commit=False)``, once the next act is done)."""
    done: set[str] = set()
    owed = False
    while True:
        entry = next((e for e in ready() if e.label not in done), None)
        if entry is None:
            if owed and then is not None:
                await then()
            return
        done.add(entry.label)
        await entry.act()
        owed = isinstance(entry, Work) and not entry.commit
        if then is not None and not owed:
            await then()


class DueTimer:
    """The main loop's one timer, for the earliest ``when``: kept across wakes while that
    time is unchanged, moved (cancelled and started again) only when it changes.

    A timer still running when the loop ends (the case closed or continuing as new) is
    left to the run's end, not cancelled: a cancel is an event, and a timer that fires
    while the case waits for its last letters only wakes it to nothing."""

    def __init__(self) -> None:
        self._when: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def wait_for(self, upcoming: Due | None) -> None:
        """Run the timer for ``upcoming`` (none: no timer); keep it if it already runs
        for the same time."""
        when = upcoming.when if upcoming is not None else None
        if self._task is not None and not self._task.done() and when == self._when:
            return
        self.cancel()
        if upcoming is None:
            return
        self._when = upcoming.when
        self._task = asyncio.create_task(
            workflow.sleep(
                max(upcoming.when - workflow.now(), timedelta(0)),
                summary=f"{upcoming.label} at {upcoming.when:%Y-%m-%d %H:%M} UTC",
            )
        )

    def fired(self) -> bool:
        return self._task is not None and self._task.done()

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._when = None
