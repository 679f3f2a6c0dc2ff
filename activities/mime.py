"""A letter as the bytes of one RFC 5322 message: plain text, UTF-8, CRLF line ends.

Built by hand rather than through ``email.message.EmailMessage``: with the default
policy that costs about 0.8 ms a letter (header objects, a folding policy, a generator),
against about 10 microseconds here, and every letter of every case pays it. What is
written is what ``EmailMessage`` wrote for our letters, and the tests parse it back with
the standard library's parser (``policy=default``):

- ``Subject`` as it is when it is ASCII and fits on a line, folded at spaces when it is
  long, RFC 2047 encoded words (``=?utf-8?b?...?=``) when it is not ASCII;
- ``From`` and ``To`` as given when ASCII; a non-ASCII display name encoded (RFC 2047);
- the body ``7bit`` when it is ASCII with short lines, else ``quoted-printable``, so
  the message is 7-bit clean whatever the server says of 8BITMIME, and no line is
  longer than 78 characters but for a long ASCII line of a 7-bit body (at most 998);
- every header value stripped of CR and LF, so no fact can add a header.

``needs_smtputf8`` says when an address itself is not ASCII (RFC 6531/6532).
"""

from __future__ import annotations

import base64
import binascii
import re
from email.utils import formataddr, parseaddr

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
# "=?utf-8?b?" + base64 + "?=": 42 bytes of UTF-8 (a multiple of 3, so no padding) make
# a 68-character word, which keeps "Subject: " and the word within 78 (RFC 2047: <= 75).
_WORD_BYTES = 42
_FOLD_AT = 76
_MAX_LINE = 998


def _one_line(value: str) -> str:
    """A header value on one line: a CR or LF in a fact never starts a header of its own."""
    return " ".join(_LINE_BREAKS.split(value))


def _encoded_words(text: str) -> str:
    """``text`` as RFC 2047 base64 encoded words, one per folded line, split between characters."""
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
            chunk = bytearray()
        chunk += encoded
    if chunk or not words:
        words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
    return "\r\n ".join(words)


def _folded(name: str, value: str) -> str:
    """An ASCII header field folded at spaces so its lines keep under 78 characters."""
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT:
        return line
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        # Never fold before an empty word (two spaces): a line of white space alone
        # would end the header.
        if word and current != f"{name}:" and len(current) + 1 + len(word) > _FOLD_AT:
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return "\r\n".join(lines)


def subject_field(subject: str) -> str:
    """The ``Subject`` field, encoded and folded as the module docstring says."""
    subject = _one_line(subject)
    if subject.isascii():
        field = _folded("Subject", subject)
        if all(len(line) <= _MAX_LINE for line in field.split("\r\n")):
            return field
    return f"Subject: {_encoded_words(subject)}"


def address_field(name: str, address: str) -> str:
    """``From`` or ``To``: ``Name <addr>`` or ``addr``; a non-ASCII display name encoded.

    A non-ASCII mailbox stays as it is (UTF-8, RFC 6532): it can only go to a server
    that offers SMTPUTF8, which the sender asks for (see ``needs_smtputf8``).
    """
    address = _one_line(address)
    if address.isascii():
        return f"{name}: {address}"
    display, mailbox = parseaddr(address)
    return f"{name}: {formataddr((display, mailbox), charset='utf-8')}"


def _body(text: str) -> tuple[str, bytes]:
    """The transfer encoding and the encoded body, CRLF line ends, ending in CRLF."""
    lines = _LINE_BREAKS.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    if text.isascii() and all(len(line) <= _MAX_LINE for line in lines):
        return "7bit", ("\r\n".join(lines) + "\r\n").encode("ascii")
    # b2a_qp with istext keeps "\n" as a hard line break (trailing white space encoded)
    # and inserts soft breaks ("=\n") to keep every line within 76 characters.
    encoded = binascii.b2a_qp("\n".join(lines).encode("utf-8"), istext=True)
    return "quoted-printable", encoded.replace(b"\n", b"\r\n") + b"\r\n"


def message_bytes(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    message_id: str,
    date: str,
    extra: dict[str, str] | None = None,
) -> bytes:
    """The whole message, headers and body, ready for SMTP ``DATA``.

    Args:
        sender: The ``From`` field (``addr`` or ``Name <addr>``).
        to: The ``To`` field.
        subject: The subject, any characters.
        body: The plain-text body; any line ends.
        message_id: The ``Message-ID``, with its angle brackets.
        date: The ``Date`` field, as ``email.utils.format_datetime`` writes it.
        extra: More header fields; ASCII names and values (our ``X-WHN-*``).
    """
    encoding, payload = _body(body)
    fields = [
        address_field("From", sender),
        address_field("To", to),
        subject_field(subject),
        f"Message-ID: {_one_line(message_id)}",
        f"Date: {_one_line(date)}",
    ]
    fields += [f"{name}: {_one_line(value)}" for name, value in (extra or {}).items()]
    fields += [
        'Content-Type: text/plain; charset="utf-8"',
        f"Content-Transfer-Encoding: {encoding}",
        "MIME-Version: 1.0",
    ]
    head = "\r\n".join(fields) + "\r\n\r\n"
    return head.encode("utf-8") + payload


def needs_smtputf8(*addresses: str) -> bool:
    """Whether an envelope address is not ASCII (its MAIL command must ask for SMTPUTF8)."""
    return not all(address.isascii() for address in addresses)
