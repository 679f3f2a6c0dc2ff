"""MailSink: real SMTP in, one .eml file per message out."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from whn.devstack.mailsink import MailSink
from whn.devstack.temporal_server import free_port


def _message(to: str, subject: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "whn@example.org"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content("Your reference is 35/12345/26.\n")
    return message


async def test_keeps_each_message_as_an_eml_file(tmp_path: Path) -> None:
    sink = MailSink(tmp_path / "mail", port=free_port())
    sink.start()
    try:
        first = _message("karen@example.org", "Receipt WHN-1", "<case-1.receipt/x@whn.example>")
        await aiosmtplib.send(first, hostname=sink.host, port=sink.port)
        second = _message("karen@example.org", "Receipt WHN-2", "<case-2.receipt@whn.example>")
        await aiosmtplib.send(
            second,
            hostname=sink.host,
            port=sink.port,
            recipients=["karen@example.org", "audit@example.org"],
        )

        got = await sink.await_for(lambda m: "WHN-2" in m["Subject"], timeout=5)
        assert got["X-Envelope-To"] == "karen@example.org, audit@example.org"
        assert got.get_content().strip() == "Your reference is 35/12345/26."

        paths = sink.paths()
        assert [p.parent for p in paths] == [tmp_path / "mail"] * 2
        assert paths[0].name.endswith("-000001-case-1.receipt_x@whn.example.eml")
        assert [m["Subject"] for m in sink.messages()] == ["Receipt WHN-1", "Receipt WHN-2"]
        assert sink.wait_for(lambda m: "WHN-1" in m["Subject"], timeout=1)["To"] == (
            "karen@example.org"
        )
    finally:
        sink.stop()
    assert len(MailSink(tmp_path / "mail").messages()) == 2, "files outlive the server"


async def test_waiting_for_mail_that_never_comes_names_what_came(mail_sink: MailSink) -> None:
    await aiosmtplib.send(
        _message("someone@example.org", "Something else", "<other@whn.example>"),
        hostname=mail_sink.host,
        port=mail_sink.port,
    )
    await mail_sink.await_for(lambda m: m["Subject"] == "Something else")
    with pytest.raises(TimeoutError, match="Something else"):
        await mail_sink.await_for(lambda m: m["Subject"] == "Never sent", timeout=0.2)


async def test_a_message_id_folded_over_two_lines_names_the_file(tmp_path: Path) -> None:
    """The mail library folds some Message-IDs onto the next line (a case's Victim
    Support referral's, as the outbox makes it); the file is named after it all the same."""
    long_id = "<case-WHN-7K3M-Q9TD-X2.victim-support-referral@cambs.police.example>"
    sink = MailSink(tmp_path / "mail", port=free_port())
    sink.start()
    try:
        await aiosmtplib.send(
            _message("referrals@victimsupport.example", "Referral", long_id),
            hostname=sink.host,
            port=sink.port,
        )
        # Folded by hand too, with a tab, the other way RFC 5322 allows.
        raw = (
            "From: whn@example.org\r\nTo: a@example.org\r\nSubject: Folded\r\n"
            "Message-ID:\r\n\t<folded-by-hand@whn.example>\r\nX-After: kept\r\n\r\nBody\r\n"
        )
        await aiosmtplib.send(
            raw,
            sender="whn@example.org",
            recipients=["a@example.org"],
            hostname=sink.host,
            port=sink.port,
        )
        await sink.await_for(lambda m: m["Subject"] == "Folded", timeout=5)
        kept = sink.paths()[0].read_bytes()
        assert b"Message-ID:\r\n " in kept or b"Message-ID:\n " in kept, "not folded: no test"
        names = [p.name for p in sink.paths()]
        assert names[0].endswith(
            "-000001-case-WHN-7K3M-Q9TD-X2.victim-support-referral@cambs.police.example.eml"
        ), names
        assert names[1].endswith("-000002-folded-by-hand@whn.example.eml"), names
    finally:
        sink.stop()
