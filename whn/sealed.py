"""Personal data at rest in the case store, sealed with the payload keys (``whn.codec``).

The replies, questions and notes ``whn-admin show --report`` reads are kept in
PostgreSQL for the case's whole life, each sealed on its own with AES-256-GCM under the
current key of the same keyring that encrypts Temporal payloads, so a database dump or
backup holds none of them in plaintext. The row's identity (case and event key) is the
associated data: a sealed note moved to another case or event does not open.

    row       key_id   the id of the key that sealed it (rotation: keep old keys)
              sealed   12-byte nonce || ciphertext || 16-byte tag

Without a keyring (``WHN_CODEC_REQUIRED=false`` and no key, an explicit choice made
for Temporal payloads as well) the text is stored under the key id ``plaintext``.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from whn.codec import CodecKeyError, Keyring

PLAINTEXT = "plaintext"
_NONCE_BYTES = 12


def _aad(key_id: str, context: str) -> bytes:
    return f"{key_id}\x00{context}".encode()


def seal(ring: Keyring | None, text: str, *, context: str) -> tuple[str, bytes]:
    """``(key_id, sealed bytes)`` of ``text``, bound to ``context`` (the row's identity)."""
    if ring is None:
        return PLAINTEXT, text.encode()
    key_id = ring.current_id
    key = dict(ring.keys)[key_id]
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return key_id, nonce + AESGCM(key).encrypt(nonce, text.encode(), _aad(key_id, context))


def unseal(ring: Keyring | None, key_id: str, data: bytes, *, context: str) -> str:
    """The text ``seal`` sealed; CodecKeyError if its key is missing or it was altered."""
    if key_id == PLAINTEXT:
        return bytes(data).decode()
    keys = dict(ring.keys) if ring is not None else {}
    if key_id not in keys:
        have = ", ".join(ring.ids()) if ring is not None else "none"
        raise CodecKeyError(
            f"note sealed with key {key_id!r}, which is not configured (have: {have})"
        )
    data = bytes(data)
    try:
        plain = AESGCM(keys[key_id]).decrypt(
            data[:_NONCE_BYTES], data[_NONCE_BYTES:], _aad(key_id, context)
        )
    except InvalidTag:
        raise CodecKeyError(
            f"note under key {key_id!r} failed authentication (wrong key or altered)"
        ) from None
    return plain.decode()
