"""The reporter's page over plain HTTP requests: what a browser is told about cookies and
headers behind https, and what the access log keeps of a link (nothing but its route)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import httpx
import pytest

from tests.web.conftest import serve
from web.app import create_app
from whn.temporal import keyring
from whn.tracklink import TrackSigner


async def test_behind_https_cookies_are_secure_and_the_log_keeps_no_token(
    dev_client, db_pool, settings, caplog: pytest.LogCaptureFixture
) -> None:
    public = settings.model_copy(update={"public_url": "https://track.example.org"})
    app = create_app(public, client=dev_client, pool=db_pool)
    signer = TrackSigner.from_keys(secret=None, ring=keyring(public))
    assert signer is not None
    token = signer.seal("case-WHN-0000-0000-00", purpose="link", ttl=timedelta(minutes=5))
    caplog.set_level(logging.INFO, logger="whn.web.access")
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/track")
        assert page.status_code == 200
        cookie = page.headers["set-cookie"]
        assert re.search(r"(?i)\bsecure\b", cookie) and "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        opened = await http.get(f"/track/t/{token}")
        assert opened.status_code == 303 and opened.headers["location"] == "/track/case"
        session = [c for c in opened.headers.get_list("set-cookie") if c.startswith("whn_track=")]
        assert session and re.search(r"(?i)\bsecure\b", session[0])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/track/t/{token}" in logged
    assert token not in logged and "WHN-0000" not in logged
