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


async def test_a_client_trying_many_codes_is_locked_out_for_every_code(
    dev_client, db_pool, settings
) -> None:
    strict = settings.model_copy(
        update={
            "track_client_failures": 3,
            "track_code_failures": 100,
            "track_failure_delay": timedelta(milliseconds=1),
        }
    )
    app = create_app(strict, client=dev_client, pool=db_pool)
    await db_pool.execute("DELETE FROM track_attempts")
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        form = await http.get("/track")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf

        async def attempt(code: str) -> httpx.Response:
            return await http.post(
                "/track",
                data={"csrf": csrf.group(1), "receipt_code": code, "email": "a@example.org"},
            )

        answers = [await attempt(f"WHN-AAAA-AAAA-A{n}") for n in range(3)]
        assert [a.status_code for a in answers] == [400, 400, 429]
        locked = await attempt("WHN-BBBB-BBBB-BB")
        assert locked.status_code == 429 and "too many attempts" in locked.text
        no_token = await http.post("/track", data={"receipt_code": "WHN-A", "email": "a@b.c"})
        assert no_token.status_code == 400 and "Nothing has been sent" in no_token.text
    rows = await db_pool.fetch("SELECT key, locked_until FROM track_attempts")
    # This client (127.0.0.1, every test's) is locked now: unlock it for the tests after.
    await db_pool.execute("DELETE FROM track_attempts")
    assert any(r["key"].startswith("client:") and r["locked_until"] for r in rows)
