"""Opaque, expiring tokens for the reporter's page: the links in letters, the session
cookie and the forms' CSRF tokens (``web/track.py``).

A token is ``<key id>.<base64url(nonce || AES-256-GCM(claims))>``: the claims (the case's
workflow id, an expiry, a purpose) are encrypted as well as authenticated, so a link in an
email or a cookie says nothing to whoever reads it, and a token made for one purpose
(``link``, ``session``) does not open as another. The keys are derived (HKDF-SHA256)
from ``WHN_TRACK_SECRET`` when it is set, otherwise from the payload keys
(``whn.codec``), so the worker that writes a letter and ``whn-web`` that opens its link
agree without another secret to hand out; every key of the ring opens, the first seals.

    TrackSigner.seal(workflow_id, purpose=..., ttl=...) -> token
    TrackSigner.open(token, purpose=...) -> workflow id    (TokenError: tampered, expired)
    TrackSigner.csrf(nonce) -> the form token of a browser's CSRF cookie
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from whn.codec import Keyring
from whn.settings import Settings

_NONCE = 12
SECRET_ID = "s"  # the key id of WHN_TRACK_SECRET's key


class TokenError(ValueError):
    """A token that does not open: altered, for another purpose, or under an unknown key."""


class TokenExpiredError(TokenError):
    """A genuine token whose time has passed."""


def _derive(material: bytes, label: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"whn-track", info=label.encode()
    ).derive(material)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TrackSigner:
    """Seals and opens the page's tokens under keys derived from a ring (first seals)."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_keys(cls, *, secret: str | None, ring: Keyring | None) -> TrackSigner | None:
        """The signer of ``WHN_TRACK_SECRET`` if set, else of the payload keys; None: neither."""
        if secret:
            return cls(((SECRET_ID, _derive(secret.encode(), "secret")),))
        if ring is None:
            return None
        return cls(tuple((key_id, _derive(key, "payload")) for key_id, key in ring.keys))

    def _key(self, key_id: str, purpose: str) -> bytes:
        return _derive(dict(self.keys)[key_id], purpose)

    def seal(
        self, workflow_id: str, *, purpose: str, ttl: timedelta, now: float | None = None
    ) -> str:
        """A token for ``workflow_id`` and ``purpose``, good for ``ttl``."""
        key_id = self.keys[0][0]
        expires = int((time.time() if now is None else now) + ttl.total_seconds())
        claims = json.dumps({"w": workflow_id, "x": expires}, separators=(",", ":")).encode()
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM(self._key(key_id, purpose)).encrypt(nonce, claims, purpose.encode())
        return f"{key_id}.{_b64(nonce + sealed)}"

    def open(self, token: str, *, purpose: str, now: float | None = None) -> str:
        """The workflow id sealed in ``token``; TokenError if it does not open or has expired."""
        key_id, _, body = token.partition(".")
        if key_id not in dict(self.keys) or not body or len(token) > 512:
            raise TokenError("not a token of ours")
        try:
            data = _unb64(body)
            claims = json.loads(
                AESGCM(self._key(key_id, purpose)).decrypt(
                    data[:_NONCE], data[_NONCE:], purpose.encode()
                )
            )
            workflow_id, expires = str(claims["w"]), int(claims["x"])
        except (InvalidTag, ValueError, KeyError, TypeError) as err:
            raise TokenError("the token does not open") from err
        if (time.time() if now is None else now) >= expires:
            raise TokenExpiredError("the token has expired")
        return workflow_id

    def csrf(self, nonce: str) -> str:
        """The form token that goes with a browser's CSRF cookie ``nonce``."""
        key = self._key(self.keys[0][0], "csrf")
        return _b64(hmac.new(key, nonce.encode(), hashlib.sha256).digest())

    def csrf_ok(self, nonce: str, token: str) -> bool:
        """``token`` is the form token of ``nonce`` under any key of the ring."""
        for key_id, _ in self.keys:
            key = self._key(key_id, "csrf")
            expected = _b64(hmac.new(key, nonce.encode(), hashlib.sha256).digest())
            if hmac.compare_digest(expected, token):
                return True
        return False

    def blind(self, text: str) -> str:
        """A keyed digest of ``text`` (a receipt code, a client address) for the lockout
        table: counts failures per code and client without storing either."""
        key = self._key(self.keys[0][0], "blind")
        return _b64(hmac.new(key, text.encode(), hashlib.sha256).digest())[:32]


def track_url(public_url: str, token: str) -> str:
    """The link a letter carries."""
    return f"{public_url.rstrip('/')}/track/t/{token}"


def signer_of(settings: Settings) -> TrackSigner | None:
    """The signer ``settings`` configure (``WHN_TRACK_SECRET``, else the payload keys)."""
    secret = settings.track_secret.get_secret_value() if settings.track_secret else None
    keys = settings.codec_keys.get_secret_value() if settings.codec_keys else None
    key_file = settings.payload_key_file()
    ring = Keyring.combine(
        Keyring.parse(keys) if keys and keys.strip() else None,
        Keyring.from_file(key_file) if key_file else None,
    )
    return TrackSigner.from_keys(secret=secret, ring=ring)
