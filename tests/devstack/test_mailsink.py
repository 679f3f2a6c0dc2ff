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
