"""A few open SMTP connections, reused from one letter to the next.

A new connection per letter costs a TCP handshake, the server's greeting, EHLO (and
STARTTLS where offered) before the letter, and QUIT after it: more round trips than the
letter itself. ``SmtpPool`` keeps up to ``size`` idle connections per worker and hands
each to one sender at a time (an SMTP session is a conversation, not a multiplex).

A kept connection may have been closed by the server meanwhile (an idle timeout, a
restart). That shows at ``MAIL FROM`` (a lost connection, or 421), before any of the
letter has been sent: then the connection is dropped and the letter goes once on a new
one. A failure from ``DATA`` on is never retried here, since the server may have taken
the letter: it is raised, and the activity's retry sends it again with the same
Message-ID (see ``Mailer.notify``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

import aiosmtplib

# Servers drop idle clients (aiosmtpd after 300 s, Postfix after 300 s, many relays
# sooner): a connection idle longer than this is closed rather than tried.
MAX_IDLE_S = 30.0


@dataclass
class _Idle:
    smtp: aiosmtplib.SMTP
    loop: asyncio.AbstractEventLoop
    since: float


class SmtpPool:
    """Open connections to one SMTP server, at most ``size`` kept idle.

    Args:
        hostname: The server.
        port: Its port.
        local_hostname: Our name in EHLO.
        timeout: Seconds for connecting and for each command.
        size: How many idle connections to keep; more may be open at a busy moment.
    """

    def __init__(
        self, hostname: str, port: int, *, local_hostname: str, timeout: float, size: int = 4
    ) -> None:
        self._client = functools.partial(
            aiosmtplib.SMTP,
            hostname=hostname,
            port=port,
            local_hostname=local_hostname,
            timeout=timeout,
        )
        self._size = size
        self._idle: list[_Idle] = []
        self.connects = 0  # connections opened: how often reuse failed or was impossible

    async def _open(self) -> aiosmtplib.SMTP:
        smtp = self._client()
        await smtp.connect()
        self.connects += 1
        return smtp

    def _take(self) -> aiosmtplib.SMTP | None:
        """An idle connection of this event loop still worth trying, if any."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        while self._idle:
            idle = self._idle.pop()
            if idle.loop is loop and now - idle.since < MAX_IDLE_S and idle.smtp.is_connected:
                return idle.smtp
            if idle.loop is loop:
                idle.smtp.close()
            # One of another (finished) event loop: its transport died with that loop.
        return None

    def _give_back(self, smtp: aiosmtplib.SMTP) -> None:
        if len(self._idle) < self._size and smtp.is_connected:
            self._idle.append(_Idle(smtp, asyncio.get_running_loop(), time.monotonic()))
        else:
            smtp.close()

    async def send(
        self, sender: str, recipients: list[str], message: bytes, *, smtputf8: bool = False
    ) -> None:
        """Send ``message`` once, on a kept connection or a new one.

        Raises:
            aiosmtplib.SMTPException, OSError: The server refused the letter or could not
                be reached; the connection used is closed.
        """
        options = ["SMTPUTF8"] if smtputf8 else []
        encoding = "utf-8" if smtputf8 else "ascii"
        smtp = self._take()
        if smtp is not None:
            try:
                await smtp.mail(sender, options=options, encoding=encoding)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError):
                # Gone while idle; nothing of the letter has been sent yet.
                smtp.close()
                smtp = None
            except aiosmtplib.SMTPResponseException as err:
                smtp.close()
                if err.code != 421:  # 421: the server is closing this session, not refusing
                    raise
                smtp = None
            except BaseException:
                smtp.close()
                raise
        try:
            if smtp is None:
                smtp = await self._open()
                if smtputf8 and not smtp.supports_extension("smtputf8"):
                    raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
                await smtp.mail(sender, options=options, encoding=encoding)
            for recipient in recipients:
                await smtp.rcpt(recipient, encoding=encoding)
            await smtp.data(message)
        except BaseException:
            if smtp is not None:
                smtp.close()
            raise
        self._give_back(smtp)

    async def close(self) -> None:
        """Say QUIT on every idle connection of this event loop and forget the others."""
        loop = asyncio.get_running_loop()
        idle, self._idle = self._idle, []
        for each in idle:
            if each.loop is not loop:
                continue
            try:
                await each.smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                each.smtp.close()
