"""Fail closed on payload encryption: every starter function checks its client first.

``require_encryption`` refuses a client that would write plaintext (unless
``WHN_CODEC_REQUIRED=false``); ``decoding`` turns a payload this client cannot open (a
key it lacks, a wrong key, no codec at all) into one ``PayloadKeyError`` line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.client import Client

from starter.errors import PayloadKeyError
from whn.codec import ENCODING, CodecKeyError
from whn.settings import get_settings
from whn.temporal import ensure_encrypted

KEY_HINT = "check WHN_CODEC_KEYS / WHN_CODEC_KEY_FILE"


def require_encryption(client: Client, *, required: bool | None = None) -> None:
    """PayloadKeyError unless ``client`` encrypts (``required`` defaults to the settings')."""
    try:
        ensure_encrypted(
            client.data_converter,
            required=get_settings().codec_required if required is None else required,
        )
    except CodecKeyError as err:
        raise PayloadKeyError(str(err)) from None


def undecodable(err: BaseException) -> str | None:
    """Why a payload could not be decoded, if ``err`` says that; else None."""
    if isinstance(err, CodecKeyError):
        return str(err)
    # The SDK's converter, without our codec, on a sealed payload.
    if isinstance(err, KeyError) and ENCODING.decode() in str(err):
        return "payloads are encrypted (binary/encrypted) and this client has no key"
    return None


@contextmanager
def decoding(what: str) -> Iterator[None]:
    """Inside it, an undecodable payload becomes ``PayloadKeyError`` naming ``what``."""
    try:
        yield
    except (CodecKeyError, KeyError) as err:
        reason = undecodable(err)
        if reason is None:
            raise
        raise PayloadKeyError(f"{what} could not be decoded: {reason}; {KEY_HINT}") from None
