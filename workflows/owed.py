"""Letters owed to a reporter with no email (a phone or in-person report).

A letter to the reporter goes by email; with no address it used to stay unsent in the
outbox while the deadline it meets ran out, for a reporter who may well have been told.
Now (patch ``owed-letters``, the hook in ``CaseLetters._deliver``) such a letter is
*owed*: kept sealed in the case store (``activities.owed``) and listed by ``whn-admin
queue`` until a person records how it reached the reporter with ``letter-sent --how
post|phone|in-person``, which meets its deadline then: on time, or honestly late. The
receipt of a report whose intake says the member of staff gave the code as the report
was taken (``receipt_given_by_staff``) is recorded as given then, by the intake.

A case with a letter still owed does not finish when it closes (``owed_done``): the
letter stays on the queue and ``letter-sent`` can still reach the case.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.owed import OwedLetters
    from domain.actions import ActionResult, LetterSent
    from domain.case import Deadline, OwedLetter
    from domain.effects import LetterDelivered, Notify, OweLetter
    from domain.report import Channel

from workflows.acting import staff_action
from workflows.base import DB_RETRY, DB_TIMEOUT
from workflows.letters import CaseLetters

_HOW_WORDS = {"post": "posted", "phone": "read out on the phone", "in-person": "handed over"}


def _check_owed(case: OwedSteps, action: LetterSent) -> None:
    if case._owed_letter(action.letter) is None:
        owed = [o.purpose for o in case.case.owed_letters if o.delivered_at is None]
        if action.letter is None or not owed:
            message = "no letter is owed to the reporter of this case"
        else:
            message = f"--letter: {action.letter!r} is not owed (owed: {', '.join(owed)})"
        raise ApplicationError(message, type="NothingOwed", non_retryable=True)


class OwedSteps(CaseLetters):
    """Owed letters and ``letter-sent`` (see the module docstring)."""

    def _owed_letter(self, purpose: str | None) -> OwedLetter | None:
        """The undelivered owed letter ``purpose`` names (None: the one owed first)."""
        return next(
            (
                o
                for o in self.case.owed_letters
                if o.delivered_at is None and purpose in (None, o.purpose)
            ),
            None,
        )

    def _open_deadline(self, name: str | None, due_at: datetime | None = None) -> Deadline | None:
        """The open deadline ``name`` (due at ``due_at``, when given), oldest first."""
        return next(
            (
                d
                for d in self.case.deadlines
                if d.name == name
                and d.met_at is None
                and not d.superseded
                and due_at in (None, d.due_at)
            ),
            None,
        )

    def owed_done(self) -> bool:
        """No letter is owed to the reporter still."""
        return all(o.delivered_at is not None for o in self.case.owed_letters)

    async def _owe(self, notify: Notify, meets: str | None) -> None:
        report = self._inp.report
        now = workflow.now()
        owed = OwedLetter(purpose=notify.purpose, letter=notify.letter, meets=meets, owed_at=now)
        self.case.owed_letters.append(owed)
        if notify.letter == "receipt" and report.receipt_given_by_staff:
            # Given as the report was taken: the promise is kept at intake, nothing owed.
            how = "phone" if report.channel is Channel.PHONE else "in-person"
            owed.delivered_at, owed.how, owed.by = now, how, "intake"
            if meets is not None:
                self._meet(meets)
            await self._record("letter_delivered", "intake", {"purpose": owed.purpose, "how": how})
            return
        reporter = report.reporter
        ways = (("post", reporter.postal_address), ("phone", reporter.phone))
        owed.ways = [way for way, known in ways if known]
        deadline = self._open_deadline(meets)
        owed.due_at = deadline.due_at if deadline is not None else None
        owe = OweLetter(
            workflow_id=self._id,
            purpose=owed.purpose,
            letter=owed.letter,
            meets=meets,
            due_at=owed.due_at,
            ways=owed.ways,
            at=now,
        )
        await workflow.execute_local_activity_method(
            OwedLetters.owe_letter,
            owe,
            retry_policy=DB_RETRY,
            summary=f"Letter owed: {owed.purpose.replace('-', ' ')}",
            start_to_close_timeout=DB_TIMEOUT,
        )
        await self._record(
            "letter_owed", "system", {"purpose": owed.purpose, "ways": list(owed.ways)}
        )

    @staff_action(LetterSent, check=_check_owed, decide_first=False)  # writes its row first
    async def letter_sent(self, action: LetterSent) -> ActionResult:
        owed = self._owed_letter(action.letter)
        assert owed is not None  # _check_owed, under the lock
        now = workflow.now()
        owed.delivered_at, owed.how, owed.by = now, action.how, action.actor
        await workflow.execute_local_activity_method(
            OwedLetters.letter_delivered,
            LetterDelivered(
                workflow_id=self._id, purpose=owed.purpose, how=action.how, by=action.actor, at=now
            ),
            retry_policy=DB_RETRY,
            summary=f"Letter delivered: {owed.purpose.replace('-', ' ')}",
            start_to_close_timeout=DB_TIMEOUT,
        )
        kept = ""
        deadline = self._open_deadline(owed.meets, owed.due_at)
        if deadline is not None:
            # This deadline only: the next victim update's, of the same name, stays open.
            deadline.met_at = now
            deadline.missed = deadline.missed or deadline.due_at < now
            kept = f"; {deadline.name} " + ("met late" if deadline.missed else "met on time")
        await self._record(
            "letter_delivered", action.actor, {"purpose": owed.purpose, "how": action.how}
        )
        self._upsert_attributes()  # Overdue may have changed
        return self._result(f"Letter {owed.purpose} recorded as {_HOW_WORDS[action.how]}{kept}.")
