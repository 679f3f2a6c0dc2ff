"""Email through the notification outbox: written once per (case, purpose), sent once."""

from __future__ import annotations

import asyncio
import logging
import socket
import weakref
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from typing import ClassVar

import aiosmtplib
import asyncpg
from temporalio import activity

from activities.mime import message_bytes, needs_smtputf8
from activities.projection import count_results
from activities.rules import screen_report
from activities.smtp import SmtpPool
from activities.store import open_case_row, write_commit
from domain.effects import Audience, Commit, Notified, Notify, ScreenRequest
from domain.letters import LETTERS, LetterError, render, track_paragraph
from domain.track import day
from whn.settings import Settings
from whn.tracklink import signer_of, track_url

log = logging.getLogger(__name__)


def _audience(request: Notify) -> Audience:
    """Who the letter is for: the letter table says (older workflows named it themselves)."""
    return request.audience or LETTERS[request.letter].audience


class Mailer:
    """Activities that put letters in the outbox and send them over SMTP.

    Letters go over a few kept SMTP connections (``activities.smtp``); ``close_all``
    closes every Mailer's at worker shutdown.
    """

    _open: ClassVar[weakref.WeakSet[Mailer]] = weakref.WeakSet()

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        # Our name in the SMTP greeting, looked up once: aiosmtplib otherwise asks
        # socket.getfqdn() in a thread for every connection, queueing behind other work.
        self.smtp = SmtpPool(
            settings.smtp_host, settings.smtp_port, local_hostname=socket.getfqdn(), timeout=10
        )
        # The envelope sender: the address part of the From field.
        self._sender = parseaddr(settings.mail_from)[1] or settings.mail_from
        # The reporter's page: every letter to the reporter carries its signed link.
        self._links = signer_of(settings)
        Mailer._open.add(self)

    async def close(self) -> None:
        """Close this Mailer's idle SMTP connections."""
        await self.smtp.close()

    @classmethod
    async def close_all(cls) -> None:
        """Close the idle SMTP connections of every Mailer (the worker, at shutdown)."""
        for mailer in list(cls._open):
            await mailer.close()

    def _address(self, request: Notify) -> str | None:
        return {
            "reporter": request.to,
            "agency": request.to,
            "control_room": self._settings.control_room_email,
            "supervisor": self._settings.supervisor_email,
            "victim_support": self._settings.victim_support_email,
            "team": self._settings.team_email_template.format(team=request.context.get("team", "")),
        }[_audience(request)]

    async def _mark_sent(self, request: Notify) -> datetime:
        """Record the send, riding out a database outage rather than failing the activity.

        Failing here, after the message has left, would make Temporal retry the activity
        and send it a second time; so keep trying (about two and a half minutes, inside
        the activity's timeout).
        """
        delay = 0.2
        for _ in range(40):
            try:
                async with self._pool.acquire() as conn:
                    sent_at = await conn.fetchval(
                        """UPDATE notifications SET sent_at = now(), attempts = attempts + 1,
                               last_error = NULL
                           WHERE workflow_id = $1 AND purpose = $2 RETURNING sent_at""",
                        request.workflow_id,
                        request.purpose,
                    )
                return sent_at if sent_at is not None else datetime.now(UTC)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                log.warning(
                    "sent %s but cannot record it yet (%s); retrying",
                    request.purpose,
                    type(err).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise RuntimeError("sent, but the outbox could not be updated for minutes")

    @activity.defn
    async def notify(self, request: Notify) -> Notified:
        """Write the letter to the outbox (once) and send it unless it was already sent.

        The Message-ID is fixed by the outbox row, so even the narrow window between a
        successful SMTP send and the ``sent_at`` write shows as one message to a reader.

        With ``request.open`` (Step 1's receipt) the case is first opened, as
        ``CaseStore.open_and_screen`` opens it (a retry finds it open), and its report
        screened: the answer carries the screening, one local activity for both.

        With ``request.commit`` (what the case kept before a letter sent in place) the
        commit is written once the letter is done, in one transaction, as
        ``CaseStore.commit`` writes it: each row once by its key, so a retry (or the
        case's own commit of it, when this activity failed) writes nothing twice.
        """
        if request.commit is not None and any(c.notes for c in request.commit.changes):
            # Notes are sealed with the case store's key, which the mailer does not hold;
            # the workflow never hands it such a commit. Failing (before sending) leaves
            # the commit to the case store and the letter to the activity.
            raise ValueError("a letter cannot carry a commit with notes")
        screening = None
        if request.open is not None:
            case = request.open
            async with self._pool.acquire() as conn, conn.transaction():
                await open_case_row(conn, case)
            screening = await screen_report(
                ScreenRequest(report=case.report, received_at=case.received_at)
            )
        sent = await self._notify(request)
        if request.commit is not None:
            await self._commit(request.commit)
        return sent if screening is None else sent.model_copy(update={"screening": screening})

    async def _commit(self, commit: Commit) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            results = await write_commit(conn, commit, None)
        count_results(results)

    async def _notify(self, request: Notify) -> Notified:
        recipient = self._address(request) or ""
        # A letter its facts cannot fill raises LetterError: retried, so it waits in the
        # activity until the wording (or the workflow) is mended, never sent incomplete.
        subject, body = render(
            request.letter, {"force_name": self._settings.force_name, **request.context}
        )
        if _audience(request) == "reporter" and recipient and self._links is not None:
            ttl = self._settings.track_link_ttl
            token = self._links.seal(request.workflow_id, purpose="link", ttl=ttl)
            until = day(datetime.now(UTC) + ttl)
            body += track_paragraph(track_url(self._settings.public_url, token), until=until)
        domain = self._settings.mail_from.rpartition("@")[2] or "whn.local"
        message_id = f"<{request.workflow_id}.{request.purpose}@{domain}>".replace(" ", "_")
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """INSERT INTO notifications (workflow_id, purpose, recipient, subject, body,
                       message_id)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (workflow_id, purpose) DO UPDATE SET attempts = notifications.attempts
                   RETURNING recipient, subject, body, message_id, sent_at""",
                request.workflow_id,
                request.purpose,
                recipient,
                subject,
                body,
                message_id,
            )
        assert row is not None
        if row["sent_at"] is not None:
            return Notified(
                message_id=row["message_id"], sent=True, sent_at=row["sent_at"], recipient=recipient
            )
        if not row["recipient"]:
            # No address (a phone or in-person report): the outbox row is the record, and
            # the case shows the letter as unsent for a handler to pass on by phone.
            return Notified(message_id=row["message_id"], sent=False, recipient="")
        message = message_bytes(
            sender=self._settings.mail_from,
            to=row["recipient"],
            subject=row["subject"],
            body=row["body"],
            message_id=row["message_id"],
            date=format_datetime(datetime.now(UTC)),
            extra={
                "X-WHN-Purpose": request.purpose,
                "X-WHN-Letter": request.letter,
                "X-WHN-Case": request.workflow_id,
            },
        )
        try:
            await self.smtp.send(
                self._sender,
                [row["recipient"]],
                message,
                smtputf8=needs_smtputf8(self._sender, row["recipient"]),
            )
        except (aiosmtplib.SMTPException, OSError) as err:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    """UPDATE notifications SET attempts = attempts + 1, last_error = $3
                       WHERE workflow_id = $1 AND purpose = $2""",
                    request.workflow_id,
                    request.purpose,
                    type(err).__name__,
                )
            # Retryable: the letter waits in the outbox until the mail server is back.
            raise
        sent_at = await self._mark_sent(request)
        return Notified(
            message_id=row["message_id"], sent=True, sent_at=sent_at, recipient=recipient
        )

    @activity.defn
    async def notify_all(self, requests: list[Notify]) -> list[Notified | None]:
        """The letters one staff action ordered, each as by ``notify`` (once per case and
        purpose: a retry sends only what has not gone).

        A letter the mail server refuses (or its facts cannot fill) while another goes is
        None in the answer: the workflow sends it on its own, with ``notify``'s retries,
        so the ones that went meet their deadlines now. When none goes, the activity
        fails and is retried whole.
        """
        answers: list[Notified | None] = []
        failed: Exception | None = None
        for request in requests:
            try:
                answers.append(await self.notify(request))
            except (aiosmtplib.SMTPException, OSError, LetterError) as err:
                log.warning("letter %s not sent yet (%s)", request.purpose, type(err).__name__)
                failed = err
                answers.append(None)
        if failed is not None and all(answer is None for answer in answers):
            raise failed
        return answers
