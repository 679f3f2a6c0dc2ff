"""A local SMTP server that keeps every message it receives as an ``.eml`` file.

Nothing is relayed. Each message is written whole, as received, with the SMTP envelope
added as ``X-Envelope-From`` and ``X-Envelope-To`` headers (Bcc recipients appear only
there). Files are named ``<UTC timestamp>-<sequence>-<Message-ID>.eml``, so a directory
listing is in the order of arrival, and written under a temporary name then renamed, so a
reader never sees half a message.
"""

from __future__ import annotations

import asyncio
import email.policy
import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# The Message-ID field with its continuation lines (RFC 5322 folding: a line break then
# a space or tab), which mail libraries use for ids too long for the first line.
_MESSAGE_ID = re.compile(
    rb"^Message-ID:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)$", re.IGNORECASE | re.MULTILINE
)


class _KeepHandler:
    """aiosmtpd handler: write each message to ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sequence = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        header = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        path = self.directory / self._file_name(content)
        partial = path.with_suffix(".part")
        partial.write_bytes(header + content)
        os.replace(partial, path)
        log.info("mail to %s kept as %s", ", ".join(envelope.rcpt_tos), path.name)
        return "250 Message accepted for delivery"

    def _file_name(self, content: bytes) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        headers = _BLANK_LINE.split(content, maxsplit=1)[0]
        match = _MESSAGE_ID.search(headers)
        folded = match.group(1).decode("ascii", "replace") if match else ""
        message_id = "".join(folded.split())  # unfolded; a msg-id holds no white space
        safe_id = _UNSAFE.sub("_", message_id.strip("<>"))[:80] or "no-message-id"
        return f"{stamp}-{next(self._sequence):06d}-{safe_id}.eml"


class MailSink:
    """An SMTP server on ``host:port`` that files every message under ``directory``.

    Runs in a thread of its own (aiosmtpd's ``Controller``), so it serves the same in a
    test's event loop, beside a worker, or in ``whn-dev``.

    Args:
        directory: Where the ``.eml`` files go; created if missing.
        host: Address to listen on.
        port: Port to listen on.
    """

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> None:
        """Start listening; returns once the server answers."""
        if self._controller is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(_KeepHandler(self.directory), hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller
        log.info("mail sink on %s:%d keeping mail in %s", self.host, self.port, self.directory)

    def stop(self) -> None:
        """Stop listening. The files stay."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
            log.info("mail sink stopped")

    def paths(self) -> list[Path]:
        """The ``.eml`` files, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        """Every message kept so far, parsed, oldest first."""
        parser = BytesParser(policy=email.policy.default)
        messages = []
        for path in self.paths():
            with path.open("rb") as f:
                messages.append(parser.parse(f))
        return messages

    def clear(self) -> None:
        """Delete every kept message."""
        for path in self.paths():
            path.unlink(missing_ok=True)

    def wait_for(
        self, predicate: Callable[[EmailMessage], bool], timeout: float = 10.0
    ) -> EmailMessage:
        """The first kept message matching ``predicate``, waiting up to ``timeout`` seconds.

        Raises:
            TimeoutError: No message matched in time; the message lists what did arrive.
        """
        deadline = time.monotonic() + timeout
        while (found := self._first(predicate)) is None:
            if time.monotonic() > deadline:
                raise self._timeout(timeout)
            time.sleep(0.05)
        return found

    async def await_for(
        self,
        predicate: Callable[[EmailMessage], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - as wait_for; the error lists what arrived
    ) -> EmailMessage:
        """``wait_for`` for async code: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while (found := self._first(predicate)) is None:
            if time.monotonic() > deadline:
                raise self._timeout(timeout)
            await asyncio.sleep(0.05)
        return found

    def _first(self, predicate: Callable[[EmailMessage], bool]) -> EmailMessage | None:
        return next((m for m in self.messages() if predicate(m)), None)

    def _timeout(self, timeout: float) -> TimeoutError:
        seen = [f"{m['To']}: {m['Subject']}" for m in self.messages()]
        return TimeoutError(
            f"no matching mail within {timeout:.1f} s; {len(seen)} kept: {seen[-10:]}"
        )
