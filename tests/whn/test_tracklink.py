"""The reporter page's tokens: opaque, bound to their case and purpose, expiring."""

from __future__ import annotations

from datetime import timedelta

import pytest

from whn.codec import Keyring, generate_key
from whn.tracklink import TokenError, TokenExpiredError, TrackSigner

RING = Keyring.parse(f"k2:{generate_key()},k1:{generate_key()}")


def signer(ring: Keyring = RING) -> TrackSigner:
    found = TrackSigner.from_keys(secret=None, ring=ring)
    assert found is not None
    return found


def test_a_token_opens_for_its_purpose_only_and_says_nothing() -> None:
    token = signer().seal("case-WHN-7K3P-Q9RM-4T", purpose="link", ttl=timedelta(days=1))
    assert "WHN" not in token and "7K3P" not in token
    assert signer().open(token, purpose="link") == "case-WHN-7K3P-Q9RM-4T"
    with pytest.raises(TokenError):
        signer().open(token, purpose="session")


def test_tampered_expired_and_foreign_tokens_do_not_open() -> None:
    token = signer().seal("case-1", purpose="link", ttl=timedelta(days=1))
    body = token.split(".", 1)[1]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, "k2." + body[:-4], "nope." + body, "", "k2.", "k2.!!!"):
        with pytest.raises(TokenError):
            signer().open(bad, purpose="link")
    with pytest.raises(TokenExpiredError):
        signer().open(
            signer().seal("case-1", purpose="link", ttl=timedelta(seconds=-1)), purpose="link"
        )
    other = signer(Keyring.parse(f"k2:{generate_key()}"))
    with pytest.raises(TokenError):
        other.open(token, purpose="link")


def test_an_old_key_still_opens_after_rotation_and_csrf_matches_its_cookie() -> None:
    before = TrackSigner(keys=(signer().keys[1],))
    token = before.seal("case-2", purpose="session", ttl=timedelta(hours=1))
    assert signer().open(token, purpose="session") == "case-2"
    assert signer().csrf_ok("nonce-1", signer().csrf("nonce-1"))
    assert not signer().csrf_ok("nonce-2", signer().csrf("nonce-1"))
    assert signer().blind("WHN-A") != signer().blind("WHN-B")
