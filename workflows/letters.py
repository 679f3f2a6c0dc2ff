"""The one way a case sends a letter: ``await self._send(letter, purpose, **facts)``.

``letter`` names one of ``domain.letters.LETTERS``, which knows who the letter is for
and all its wording; the workflow passes facts only (a reason code, a team slug, whether
Victim Support was referred), and the mail activity renders them. ``purpose`` keys the
outbox row, so a letter is sent once per case and purpose whatever is retried.

- In place (the default): the case waits until the mail server has taken the letter.
- ``after_decision=True``: a staff action's letter, sent without holding up the action's
  answer; the case neither finishes nor continues as new before it is (``letters_sent``).
  Cases that took such an action before patch ``letters-after-decision`` replay with the
  letter awaited in place.
- Patch ``letters-local``: a letter sent in place goes by a local activity, in the
  workflow task that orders it (no activity events, no workflow task for its result),
  committed with what follows it. A re-run of it (a worker lost mid-task) finds the
  outbox row sent and sends nothing. If the mail server does not take it at the first
  attempt, what the case changed is committed and the letter goes to the activity,
  retried by the server: an outage of hours costs the history a few events, not a
  workflow task every few seconds. The letters a staff action orders after its decision
  go once it has committed, together in one activity (``Mailer.notify_all``) when there
  are several; one the mail server refuses while another goes is sent on its own after.
- Patch ``letters-carry-commit``: a letter sent in place by a local activity that meets
  no deadline carries what the case kept before it (``Notify.commit``, never one with
  notes); the mail activity writes it once the letter is done, so the commit after the
  letter has only what was recorded since (often nothing, and no local activity).
- ``meets=name``: the deadline ``name`` is met when the letter goes, not when it was
  ordered (the CRN within 48 hours, Right 6).
- A letter to a reporter with no email is owed, not lost (``workflows.owed``, patch
  ``owed-letters``): its deadline stays open until a person records how it reached them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.mail import Mailer
    from domain.effects import Notified, Notify
    from domain.letters import LETTERS

from workflows.base import CaseBase

# workflow.patched ids: one per change to workflow code made while cases are open.
PATCH_LETTERS_AFTER_DECISION = "letters-after-decision"
PATCH_DEADLINE_MET_RECORDED = "deadline-met-recorded"
PATCH_OWED_LETTERS = "owed-letters"
PATCH_LETTERS_LOCAL = "letters-local"
# A letter sent in place by a local activity, with no deadline to meet, carries what the
# case kept before it (``Notify.commit``): the mail activity writes it once the letter is
# done, so the commit that followed the letter has nothing left to write (no local
# activity) unless the case recorded more after it. The reminder and an escalation
# record themselves before their letter, to go with it. In bundle-2026-12-letters
# (workflows.base).
PATCH_LETTERS_CARRY_COMMIT = "letters-carry-commit"

MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
# Long enough for the outbox write after a send to outlast a database blip (see
# Mailer.notify): a retry after a successful send would send it again. No heartbeat
# timeout: tried (20 s, then 60 s), a loaded worker's live sends were taken for dead and
# retried, each retry a possible second email. A letter held up three minutes by a dead
# worker is the lesser harm.
MAIL_TIMEOUT = timedelta(minutes=3)
# PATCH_LETTERS_LOCAL: a letter in place is tried once inside the workflow task (a
# refused connection fails in milliseconds; the pool already retries a kept connection
# the server dropped), then it goes to the activity, whose retries cost the history
# nothing until it is sent. Retries kept local would hold the case's workflow task (and
# an update answered in it) and cost events: a task heartbeat (three) every 8 s, or past
# the local retry threshold a timer and a task per attempt.
LOCAL_MAIL_RETRY = RetryPolicy(maximum_attempts=1)


class CaseLetters(CaseBase):
    """Letters of a case (see the module docstring)."""

    # PATCH_LETTERS_LOCAL: after-decision letters ordered since the last commit.
    _ordered: tuple[tuple[Notify, str | None], ...] = ()

    def _letter(self, letter: str, purpose: str, to: str | None, facts: dict[str, Any]) -> Notify:
        """``letter`` with the case's facts as they are now and the caller's."""
        report = self._inp.report
        c = self.case
        if c.reopenings:
            # The outbox sends once per (case, purpose): a reopened case's letters are new.
            purpose = f"{purpose}-r{c.reopenings}"
        if LETTERS[letter].audience == "reporter":
            to = report.reporter.email
        return Notify(
            workflow_id=self._id,
            purpose=purpose,
            to=to,
            letter=letter,
            context={
                "receipt_code": self._inp.receipt_code,
                "crime_reference": c.crime_reference,
                "investigation_reference": c.investigation_reference,
                "category": c.category,
                "occurred_from": report.incident.occurred_from.isoformat(),
                "address": report.incident.location.address,
                "stage": c.stage.value,
                **facts,
            },
        )

    def _reporter_facts(self) -> dict[str, Any]:
        """The reporter's contact and account: only for letters to an agency or Victim Support."""
        reporter = self._inp.report.reporter
        return {
            "reporter": {"name": reporter.name, "email": reporter.email, "phone": reporter.phone},
            "description": self._inp.report.incident.description,
        }

    async def _send(
        self,
        letter: str,
        purpose: str,
        *,
        after_decision: bool = False,
        meets: str | None = None,
        to: str | None = None,
        **facts: Any,
    ) -> Notified | None:
        """Send ``letter`` (see the module docstring); its result when sent in place."""
        notify = self._letter(letter, purpose, to, facts)
        if after_decision and self._patched(PATCH_LETTERS_AFTER_DECISION):
            if self._patched(PATCH_LETTERS_LOCAL):
                self._ordered = (*self._ordered, (notify, meets))  # sent at the commit
            else:
                self._letters.append(asyncio.create_task(self._send_later(notify, meets)))
            return None
        # Never an after-decision letter (an old case's, sent in place): a local activity
        # in an update's task would hold the update's answer until the mail server took it.
        local = not after_decision and self._patched(PATCH_LETTERS_LOCAL)
        if not local:
            # A letter sent in place may wait a while for the mail server: what the case
            # changed before it is in the store first (PATCH_ONE_TRANSACTION).
            await self._commit()
        return await self._deliver(notify, meets, local=local)

    async def _commit(self) -> None:
        """The case's commit (``CaseBase._commit``), then the letters ordered before it
        set off (PATCH_LETTERS_LOCAL): a staff action's go once it is in the store."""
        await super()._commit()
        if self._ordered:
            batch, self._ordered = list(self._ordered), ()
            self._letters.append(asyncio.create_task(self._send_all_later(batch)))

    def _carries(self) -> bool:
        """PATCH_LETTERS_CARRY_COMMIT: a letter in place carries the case's commit."""
        return self._one_transaction and self._patched(PATCH_LETTERS_CARRY_COMMIT)

    async def _deliver(self, notify: Notify, meets: str | None, *, local: bool = False) -> Notified:
        # A deadline the letter meets is met by its answer: the commit after it has that.
        carry = local and meets is None and self._carries()
        sent = await self._notify(notify, local=local, carry=carry)
        await self._sent(notify, meets, sent)
        return sent

    async def _sent(self, notify: Notify, meets: str | None, sent: Notified) -> None:
        """What a letter's answer changes on the case: the deadline it meets, or owed."""
        if meets is not None and sent.sent:
            self._meet(meets)
        elif self._owed(notify, sent) and self._patched(PATCH_OWED_LETTERS):
            await self._owe(notify, meets)

    async def _notify(self, notify: Notify, *, local: bool, carry: bool = False) -> Notified:
        """``Mailer.notify``: as a local activity first when ``local`` (carrying the
        case's commit when ``carry``), else (or when the mail server does not take it at
        once) as an activity."""
        summary = f"Email: {notify.purpose.replace('-', ' ')}"
        if local:
            try:
                if carry:
                    return await self._notify_carrying(notify, summary)
                sent: Notified = await workflow.execute_local_activity_method(
                    Mailer.notify,
                    notify,
                    start_to_close_timeout=MAIL_TIMEOUT,
                    retry_policy=LOCAL_MAIL_RETRY,
                    summary=summary,
                )
                return sent
            except (ActivityError, ApplicationError) as err:
                # A local activity's last failure may come unwrapped (no ActivityError).
                cause = err.cause if isinstance(err, ActivityError) else err
                if isinstance(cause, ApplicationError) and cause.non_retryable:
                    raise
                # The mail server is down or slow: the activity waits for it instead,
                # with what the case changed in the store first.
                await self._commit()
        sent = await workflow.execute_activity_method(
            Mailer.notify,
            notify,
            start_to_close_timeout=MAIL_TIMEOUT,
            retry_policy=MAIL_RETRY,
            summary=summary,
        )
        return sent

    async def _notify_carrying(self, notify: Notify, summary: str) -> Notified:
        """The letter's local activity writes what the case kept, as a commit: in order
        with the others (it holds the commit lock), the search attributes first. If it
        fails, what it took is kept again for the next commit."""
        self._write_attributes()
        async with self._commit_lock:
            carried = self._take_kept()
            if carried is not None and any(c.notes for c in carried.changes):
                # Notes are sealed by the case store's key: its own commit writes them.
                self._keep_again(carried)
                carried = None
            try:
                sent: Notified = await workflow.execute_local_activity_method(
                    Mailer.notify,
                    notify if carried is None else notify.model_copy(update={"commit": carried}),
                    start_to_close_timeout=MAIL_TIMEOUT,
                    retry_policy=LOCAL_MAIL_RETRY,
                    summary=summary,
                )
            except BaseException:
                if carried is not None:
                    self._keep_again(carried)
                raise
        if carried is not None:
            self._changes += 1  # as a commit does: the main loop looks again
        return sent

    def _owed(self, notify: Notify, sent: Notified) -> bool:
        """A letter to the reporter that had no address to go to (no email)."""
        reporter = LETTERS[notify.letter].audience == "reporter"
        return reporter and not sent.sent and not sent.recipient

    async def _owe(self, notify: Notify, meets: str | None) -> None:
        """Hook: keep the letter as owed to the reporter (workflows.owed)."""

    async def _send_later(self, notify: Notify, meets: str | None) -> None:
        try:
            sent = await self._deliver(notify, meets)
        except ActivityError as err:
            # Only a refusal the mail activity marks final gets here (MAIL_RETRY never
            # gives up): keep it on the case's record rather than fail the case.
            workflow.logger.error("letter %s not sent: %s", notify.purpose, err.cause or err)
            await self._record("letter_failed", "system", {"purpose": notify.purpose})
            await self._commit()
            return
        if meets is not None and sent.sent and self._patched(PATCH_DEADLINE_MET_RECORDED):
            # The deadline this letter meets, met now: on the record (and in the
            # compliance projection) even when nothing else happens to the case.
            await self._record("letter_sent", "system", {"purpose": notify.purpose})
        await self._commit()  # its record, or the letter owed (PATCH_ONE_TRANSACTION)

    async def _send_all_later(self, batch: list[tuple[Notify, str | None]]) -> None:
        """The letters one staff action ordered (PATCH_LETTERS_LOCAL): one activity for
        them all; a letter the mail server refused while others went is sent on its own."""
        if len(batch) == 1:
            await self._send_later(*batch[0])
            return
        purposes = ", ".join(n.purpose.replace("-", " ") for n, _ in batch)
        try:
            answers: list[Notified | None] = await workflow.execute_activity_method(
                Mailer.notify_all,
                [notify for notify, _ in batch],
                start_to_close_timeout=MAIL_TIMEOUT,
                retry_policy=MAIL_RETRY,
                summary=f"Emails: {purposes}"[:200],
            )
        except ActivityError as err:
            workflow.logger.error("letters %s not sent: %s", purposes, err.cause or err)
            for notify, _ in batch:
                await self._record("letter_failed", "system", {"purpose": notify.purpose})
            await self._commit()
            return
        for (notify, meets), sent in zip(batch, answers, strict=True):
            if sent is None:
                self._letters.append(asyncio.create_task(self._send_later(notify, meets)))
                continue
            await self._sent(notify, meets, sent)
            if meets is not None and sent.sent:
                await self._record("letter_sent", "system", {"purpose": notify.purpose})
        await self._commit()

    def letters_sent(self) -> bool:
        """No letter ordered by a staff action is still on its way."""
        return not self._ordered and all(letter.done() for letter in self._letters)

    async def _escalate(self, what: str, key: str) -> None:
        """Tell the supervisor once per key and escalation count."""
        n = sum(1 for e in self.case.timeline if e.event == "escalated")
        carried = self._carries()  # PATCH_LETTERS_CARRY_COMMIT: recorded with its letter
        if carried:
            await self._record("escalated", "system", {"what": what})
        await self._send(
            "supervisor_escalation",
            f"escalation-{key}-{n + 1}",
            what=what,
            due_at=workflow.now().isoformat(),
        )
        if not carried:
            await self._record("escalated", "system", {"what": what})
