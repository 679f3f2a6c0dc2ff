"""Letters as bytes (``activities.mime``) and over kept SMTP connections (``activities.smtp``).

Every message is parsed back with the standard library's parser (``policy=default``),
the way a mail client reads it, and goes through a real SMTP sink (aiosmtpd).
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from uuid import uuid4

import aiosmtplib
import asyncpg
import pytest

from activities.mail import Mailer
from activities.mime import message_bytes
from domain.effects import Notify
from whn.devstack.mailsink import MailSink
from whn.devstack.temporal_server import free_port
from whn.settings import Settings

LONG_ASCII = "word " * 300  # 1,500 characters on one line
CASES = {
    "ascii": ("Your crime reference 35/00042/26", "Hello.\n\nYour reference is 35/00042/26.\n"),
    "non-ascii": (
        "Zoë Ångström\u2019s report — reçu, «merci» 📨",
        "Dear Zoë,\n\nWe have your report about Mill Road — thank you.\n",
    ),
    "long subject": ("Escalation: " + "a review past its deadline " * 8, "Short.\n"),
    "long non-ascii subject": ("Überfällig: " + "Prüfung der Meldung " * 10, "Kurz.\n"),
    "long lines": (
        "Long lines",
        "A line of 1,500 characters follows.\n"
        + LONG_ASCII
        + "\n"
        + "é" * 400
        + "\ntrailing space   \n\ttab first\n.dot first\nFrom the start\n= sign\n",
    ),
    "long ascii line": ("Long ASCII line", "Before.\n" + LONG_ASCII + "\nAfter.\n"),
    "line ends": ("CRLF and CR", "one\r\ntwo\rthree\n\nfive"),
}


def _parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def _content(message: EmailMessage) -> str:
    """The body as a reader sees it: a 7-bit body keeps its CRLFs as they came."""
    return str(message.get_content()).replace("\r\n", "\n")


def _expected_body(body: str) -> str:
    """The body a reader gets: line ends as ``\\n``, ending in one."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def _build(subject: str, body: str, **overrides: str) -> bytes:
    fields = {
        "sender": "Cambridgeshire Constabulary <whn@cambs.police.example>",
        "to": "karen@example.org",
        "subject": subject,
        "body": body,
        "message_id": "<WHN-7K3M-Q9TD-X2.crime-recorded@cambs.police.example>",
        "date": "Tue, 01 Dec 2026 22:50:00 +0000",
    }
    fields.update(overrides)
    return message_bytes(
        **fields, extra={"X-WHN-Purpose": "crime-recorded", "X-WHN-Case": "WHN-7K3M-Q9TD-X2"}
    )


@pytest.mark.parametrize("case", list(CASES))
def test_letter_bytes_parse_back_to_every_header_and_the_body(case: str) -> None:
    subject, body = CASES[case]
    raw = _build(subject, body)
    message = _parse(raw)
    assert not message.defects, message.defects
    assert message["From"] == "Cambridgeshire Constabulary <whn@cambs.police.example>"
    assert message["To"] == "karen@example.org"
    assert message["Subject"] == subject
    assert message["Message-ID"] == "<WHN-7K3M-Q9TD-X2.crime-recorded@cambs.police.example>"
    assert message["Date"].datetime.isoformat() == "2026-12-01T22:50:00+00:00"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message["X-WHN-Purpose"] == "crime-recorded"
    assert message["X-WHN-Case"] == "WHN-7K3M-Q9TD-X2"
    assert _content(message) == _expected_body(body)
    # 7-bit clean, CRLF only, no line over 998 octets (RFC 5322), headers under 78.
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 78 for line in head.split(b"\r\n")), head
    assert all(len(line) <= 998 for line in payload.split(b"\r\n"))


def test_an_ascii_body_with_short_lines_is_sent_as_written() -> None:
    raw = _build(*CASES["ascii"])
    assert b"Content-Transfer-Encoding: 7bit\r\n" in raw
    assert raw.endswith(b"\r\n\r\nHello.\r\n\r\nYour reference is 35/00042/26.\r\n")
    assert b"Content-Transfer-Encoding: quoted-printable" in _build(*CASES["non-ascii"])


def test_a_line_break_in_a_fact_adds_no_header() -> None:
    message = _parse(
        _build("Agency\r\nBcc: all@example.org", "Body.\n", to="a@example.org\nCc: b@example.org")
    )
    assert message["Bcc"] is None and message["Cc"] is None
    assert message["Subject"] == "Agency Bcc: all@example.org"


def test_a_non_ascii_display_name_is_encoded() -> None:
    raw = _build("Hello", "Body.\n", sender="Police de Zoë <whn@cambs.police.example>")
    assert raw.isascii()
    assert _parse(raw)["From"] == "Police de Zoë <whn@cambs.police.example>"


def _notify(workflow_id: str, purpose: str, what: str) -> Notify:
    return Notify(
        workflow_id=workflow_id,
        purpose=purpose,
        letter="supervisor_escalation",
        context={
            "receipt_code": workflow_id,
            "what": what,
            "due_at": "2026-12-01T22:50:00+00:00",
            "stage": "awaiting_review",
        },
    )


async def _sent_rows(pool: asyncpg.Pool, workflow_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT purpose, attempts, sent_at, message_id FROM notifications"
                " WHERE workflow_id = $1 ORDER BY purpose",
                workflow_id,
            )
        )


def _of(sink: MailSink, workflow_id: str) -> list[EmailMessage]:
    return [m for m in sink.messages() if m["X-WHN-Case"] == workflow_id]


async def test_a_letter_reaches_the_sink_as_built_and_goes_once(
    db_pool: asyncpg.Pool, settings: Settings, mail_sink: MailSink
) -> None:
    workflow_id = f"WHN-MAIL-{uuid4().hex[:8]}"
    mailer = Mailer(db_pool, settings)
    what = "Zoë\u2019s review — past its deadline, " + "überfällig " * 12
    first = await mailer.notify(_notify(workflow_id, "escalation-1", what))
    again = await mailer.notify(_notify(workflow_id, "escalation-1", what))
    assert first.sent and again.sent and first.message_id == again.message_id
    (message,) = _of(mail_sink, workflow_id)
    assert not message.defects
    assert message["Message-ID"] == first.message_id
    assert message["To"] == settings.supervisor_email
    assert message["From"] == settings.mail_from
    assert message["Subject"] == f"Escalation: {what} ({workflow_id})"
    assert message["X-WHN-Letter"] == "supervisor_escalation"
    assert f"Case {workflow_id} needs a supervisor: {what}." in _content(message)
    async with db_pool.acquire() as conn:
        body = await conn.fetchval(
            "SELECT body FROM notifications WHERE workflow_id = $1", workflow_id
        )
    assert _content(message) == _expected_body(body)
    await mailer.close()


async def test_kept_connection_reused_and_replaced_when_the_sink_restarts(
    db_pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    sink = MailSink(tmp_path / "mail", port=free_port())
    sink.start()
    mailer = Mailer(db_pool, settings.model_copy(update={"smtp_port": sink.port}))
    workflow_id = f"WHN-POOL-{uuid4().hex[:8]}"
    try:
        await mailer.notify(_notify(workflow_id, "escalation-1", "one"))
        await mailer.notify(_notify(workflow_id, "escalation-2", "two"))
        assert mailer.smtp.connects == 1  # the second letter went on the first's connection
        sink.stop()
        sink.start()  # the kept connection is now dead
        await mailer.notify(_notify(workflow_id, "escalation-3", "three"))
        assert mailer.smtp.connects == 2
        sink.stop()
        with pytest.raises((aiosmtplib.SMTPException, OSError)):
            await mailer.notify(_notify(workflow_id, "escalation-4", "four"))
        sink.start()
        await mailer.notify(_notify(workflow_id, "escalation-4", "four"))  # the retry
        purposes = sorted(m["X-WHN-Purpose"] for m in _of(sink, workflow_id))
        assert purposes == ["escalation-1", "escalation-2", "escalation-3", "escalation-4"]
        rows = await _sent_rows(db_pool, workflow_id)
        assert all(row["sent_at"] is not None for row in rows)
        # The failed try and the send are both counted; the send is recorded once.
        assert [row["attempts"] for row in rows] == [1, 1, 1, 2]
        ids = {m["X-WHN-Purpose"]: m["Message-ID"] for m in _of(sink, workflow_id)}
        assert ids == {row["purpose"]: row["message_id"] for row in rows}
    finally:
        await mailer.close()
        sink.stop()
