"""The reporter's page in a real browser: Chromium through Playwright, axe-core on every
page, against whn-web on uvicorn, the dev server, a worker and PostgreSQL (issue #17)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page
from temporalio.client import Client, WorkflowExecutionStatus

from domain.actions import Reopen
from domain.case import NotACrime, RequestDetails, Timings, case_workflow_id
from starter import admin, casework, intake
from starter.reopen import reopen
from tests.helpers import EXAMPLES, until
from tests.web.browser import serious
from tests.web.conftest import serve
from web.app import create_app
from whn.devstack.mailsink import MailSink
from whn.settings import Settings
from whn.temporal import keyring
from whn.tracklink import TrackSigner
from worker import build_worker

EMAIL = "karen@example.org"


@dataclass
class Site:
    url: str
    settings: Settings
    client: Client
    pool: asyncpg.Pool
    task_queue: str


@pytest.fixture
async def site(dev_client, db_pool, settings, task_queue) -> AsyncIterator[Site]:
    shipped = settings.model_copy(
        update={
            "workflow_sandbox": False,
            "task_queue": task_queue,
            "track_failure_delay": timedelta(milliseconds=10),
            "track_code_failures": 3,
            "track_client_failures": 50,
        }
    )
    app = create_app(shipped, client=dev_client, pool=db_pool)
    async with build_worker(dev_client, db_pool, shipped, task_queue=task_queue), serve(app) as url:
        yield Site(url, shipped, dev_client, db_pool, task_queue)


async def new_case(site: Site, **timings: Any) -> str:
    data = json.loads((EXAMPLES / "ordinary.json").read_text())
    data["submission_id"] = f"track-{uuid.uuid4()}"
    data["reporter"]["email"] = EMAIL
    done = await intake.submit(
        site.client,
        intake.parse_report(json.dumps(data)),
        task_queue=site.task_queue,
        timings=Timings(**timings),
    )
    await stage_of(site, done.receipt_code, "awaiting_review")
    return done.receipt_code


async def stage_of(site: Site, code: str, stage: str) -> None:
    async def there() -> bool:
        return (
            await site.pool.fetchval("SELECT stage FROM cases WHERE receipt_code = $1", code)
            == stage
        )

    await until(there, within=30, what=f"{code} at {stage}")


async def events(site: Site, code: str, event: str) -> int:
    return int(
        await site.pool.fetchval(
            """SELECT count(*) FROM case_events e JOIN cases c USING (workflow_id)
               WHERE c.receipt_code = $1 AND e.event = $2""",
            code,
            event,
        )
    )


async def accessible(page: Page) -> None:
    found = await serious(page)
    assert found == [], f"axe: serious or critical violations on {page.url}: {found}"


async def sign_in(page: Page, site: Site, code: str, email: str = EMAIL) -> None:
    await page.goto(f"{site.url}/track")
    await page.fill("#receipt_code", code)
    await page.fill("#email", email)
    await page.click("button:has-text('Continue')")


async def test_reporter_signs_in_answers_and_sees_the_case_move_on(
    site: Site,
    browser: Browser,
) -> None:
    code = await new_case(site)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{site.url}/track")
    await accessible(page)
    headers = (await page.request.get(f"{site.url}/track")).headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    await sign_in(page, site, code, email=EMAIL.upper())  # email case does not matter
    assert page.url.endswith("/track/case")
    assert "decide whether to record it as a crime" in await page.inner_text("#stage")
    assert code in await page.inner_text("#references")
    await accessible(page)
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["whn_track"]["httpOnly"] and cookies["whn_track"]["sameSite"] == "Lax"
    assert code not in cookies["whn_track"]["value"]

    await admin.act(
        site.client,
        code,
        RequestDetails(actor="handler-1", question="What colour were the bicycles?"),
        database_url=site.settings.database_url,
    )
    await stage_of(site, code, "awaiting_details")
    await page.reload()
    assert await page.is_visible("#answer")
    # The question itself, from its sealed note in the case store.
    assert await page.inner_text("#question") == "What colour were the bicycles?"
    await accessible(page)

    # Bad input: an empty and an oversized answer are refused on the page, nothing sent.
    await page.click("button:has-text('Send your answer')")
    assert "Enter your answer" in await page.inner_text(".govuk-error-summary")
    await accessible(page)
    await page.fill("#answer", "x" * 10_001)
    await page.click("button:has-text('Send your answer')")
    assert "10,000 characters or fewer" in await page.inner_text(".govuk-error-summary")
    assert await events(site, code, "details_received") == 0

    # A form without its CSRF token is refused, and nothing is recorded.
    refused = await page.request.post(
        f"{site.url}/track/case/add", form={"text": "no token"}, max_redirects=0
    )
    assert refused.status == 400 and "Nothing has been sent" in await refused.text()
    assert await events(site, code, "reporter_information") == 0

    csrf = await page.get_attribute("input[name=csrf]", "value")
    await page.fill("#answer", "Red and blue.")
    await page.click("button:has-text('Send your answer')")
    assert "We have your answer" in await page.inner_text("#banner")
    # The same answer again (a double click, a resent form): recorded once.
    again = await page.request.post(
        f"{site.url}/track/case/answer",
        form={"csrf": csrf or "", "request": "1", "text": "Red and blue."},
        max_redirects=0,
    )
    assert again.status in (303, 409)
    await stage_of(site, code, "awaiting_review")
    await page.goto(f"{site.url}/track/case")
    assert "We are looking at your report" in await page.inner_text("#headline")
    assert "We received your answer." in await page.inner_text("#timeline")
    assert await events(site, code, "details_received") == 1

    await page.fill("#information", "I have found a receipt for one bicycle.")
    await page.click("button:has-text('Send')")
    assert "We have added what you sent" in await page.inner_text("#banner")
    assert "You sent us more information." in await page.inner_text("#timeline")
    assert await events(site, code, "reporter_information") == 1
    # It shows in the staff queue, until a member of staff acts on the case.
    queued = await casework.queue(
        site.settings.database_url,
        actor="handler-1",
        role="call_handler",
        review_deadline=site.settings.review_deadline,
        limit=1000,
    )
    row = next(c for c in queued["cases"] if c["receipt_code"] == code)
    assert row["reporter_added"] and "read what the reporter added" in row["next_action"]
    timeline = await page.inner_text("#timeline")
    assert "handler-1" not in timeline and "bicycles?" not in timeline

    actions = await site.pool.fetch(
        """SELECT action, allowed, reason FROM audit_log
           WHERE actor = 'reporter' AND workflow_id = $1 ORDER BY id""",
        case_workflow_id(code),
    )
    seen = {(a["action"], a["allowed"]) for a in actions}
    assert {
        ("track-sign-in", True),
        ("track-view", True),
        ("track-answer", True),
        ("track-answer", False),
        ("track-add", False),
        ("track-reporter-information", True),
    } <= seen
    await context.close()


async def test_a_letter_link_opens_the_page_and_bad_links_say_so(
    site: Site,
    browser: Browser,
    mail_sink: MailSink,
) -> None:
    code = await new_case(site)
    workflow_id = case_workflow_id(code)
    letter = await mail_sink.await_for(
        lambda m: m["X-WHN-Case"] == workflow_id and m["To"] == EMAIL, timeout=30
    )
    body = letter.get_content()
    link = re.search(r"(https?://\S+/track/t/(\S+))", body)
    assert link, body
    assert link.group(1).startswith(site.settings.public_url)
    token = link.group(2)
    assert code not in token and "karen" not in token
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{site.url}/track/t/{token}")
    assert page.url.endswith("/track/case")
    assert code in await page.inner_text("#references")
    await accessible(page)

    other = await browser.new_context()
    page = await other.new_page()
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = await page.goto(f"{site.url}/track/t/{tampered}")
    assert response is not None and response.status == 400
    assert "This link does not work" in await page.inner_text("h1")
    await accessible(page)
    signer = TrackSigner.from_keys(secret=None, ring=keyring(site.settings))
    assert signer is not None
    expired = signer.seal(workflow_id, purpose="link", ttl=timedelta(seconds=-1))
    response = await page.goto(f"{site.url}/track/t/{expired}")
    assert response is not None and response.status == 410
    assert "This link has expired" in await page.inner_text("h1")
    # A session token is not a link, nor the other way round.
    session = signer.seal(workflow_id, purpose="session", ttl=timedelta(hours=1))
    response = await page.goto(f"{site.url}/track/t/{session}")
    assert response is not None and response.status == 400
    assert (await page.goto(f"{site.url}/track/case")).url.endswith("/track")  # type: ignore[union-attr]
    await context.close()
    await other.close()


async def test_sign_in_failures_are_locked_out(site: Site, browser: Browser) -> None:
    code = await new_case(site)
    context = await browser.new_context()
    page = await context.new_page()
    answers = []
    for attempt in (("wrong@example.org", code), (EMAIL, "WHN-AAAA-AAAA-AA")):
        email, given = attempt
        await sign_in(page, site, given, email)
        answers.append(await page.inner_text(".govuk-error-summary"))
    assert answers[0] == answers[1]  # a wrong email and a wrong code: the same answer
    await accessible(page)
    await sign_in(page, site, code, "again-wrong@example.org")
    await sign_in(page, site, code, "third-wrong@example.org")
    assert "too many attempts" in await page.inner_text("#locked")
    await accessible(page)
    await sign_in(page, site, code)  # the right details, but the code is locked
    assert page.url.endswith("/track")
    assert "too many attempts" in await page.inner_text("#locked")
    stored = await site.pool.fetch("SELECT key FROM track_attempts")
    assert all(code not in r["key"] and "127.0.0.1" not in r["key"] for r in stored)
    await context.close()


async def test_an_answer_to_a_lapsed_request_is_not_sent(site: Site, browser: Browser) -> None:
    code = await new_case(
        site, details_expiry=timedelta(seconds=4), details_reminder=timedelta(seconds=2)
    )
    await admin.act(
        site.client,
        code,
        RequestDetails(actor="handler-1", question="Which shed?"),
        database_url=site.settings.database_url,
    )
    await stage_of(site, code, "awaiting_details")
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, site, code)
    assert await page.is_visible("#answer")
    await stage_of(site, code, "awaiting_review")  # the request lapsed meanwhile
    await page.fill("#answer", "The one at the back.")
    await page.click("button:has-text('Send your answer')")
    assert "This question has closed" in await page.inner_text("h1")
    await accessible(page)
    assert await events(site, code, "details_received") == 0
    await context.close()


async def test_the_page_answers_and_keeps_an_answer_while_no_worker_runs(
    dev_client, db_pool, settings, task_queue, browser: Browser
) -> None:
    shipped = settings.model_copy(update={"workflow_sandbox": False, "task_queue": task_queue})
    app = create_app(shipped, client=dev_client, pool=db_pool)
    async with serve(app) as url:
        site = Site(url, shipped, dev_client, db_pool, task_queue)
        async with build_worker(dev_client, db_pool, shipped, task_queue=task_queue):
            code = await new_case(site)
            await admin.act(
                dev_client,
                code,
                RequestDetails(actor="handler-1", question="Was anything else taken?"),
                database_url=shipped.database_url,
            )
            await stage_of(site, code, "awaiting_details")
        # No worker now: the page still reads the case, and the answer is kept.
        context = await browser.new_context()
        page = await context.new_page()
        await sign_in(page, site, code)
        assert "We need more information from you" in await page.inner_text("#headline")
        await page.fill("#answer", "A helmet as well.")
        await page.click("button:has-text('Send your answer')")
        assert "We have your answer" in await page.inner_text("#banner")
        assert await events(site, code, "details_received") == 0
        async with build_worker(dev_client, db_pool, shipped, task_queue=task_queue):
            await stage_of(site, code, "awaiting_review")
        assert await events(site, code, "details_received") == 1
        await context.close()


async def test_a_closed_case_asks_to_be_looked_at_again_and_shows_the_reopening(
    site: Site, browser: Browser
) -> None:
    code = await new_case(site)
    await admin.act(
        site.client,
        code,
        NotACrime(actor="handler-1", advice="This is a civil matter."),
        database_url=site.settings.database_url,
    )
    await stage_of(site, code, "not_a_crime")
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, site, code)
    assert "Ask us to look at your case again" in await page.inner_text("#add-heading")
    await accessible(page)
    await page.fill("#information", "A neighbour saw a van take the bicycles.")
    await page.click("button:has-text('Send and ask us to look again')")
    assert "decide whether to look at your case again" in await page.inner_text("#banner")
    assert await events(site, code, "reopen_requested") == 1
    await until(lambda: reopen_allowed(site, code), within=30, what="letters of the closing out")
    await reopen(
        site.client,
        code,
        Reopen(actor="handler-1", reason="New witness (reporter, on the tracking page)"),
        database_url=site.settings.database_url,
    )
    await stage_of(site, code, "awaiting_review")
    await page.goto(f"{site.url}/track/case")
    assert "We are looking at your report" in await page.inner_text("#headline")
    timeline = await page.inner_text("#timeline")
    assert "You asked us to look at your case again." in timeline
    assert "Your case was opened again." in timeline
    assert "We started looking at your case again." in timeline
    await context.close()


async def reopen_allowed(site: Site, code: str) -> bool:
    """The closed run has finished (its letters out), so a reopening may start."""
    handle = site.client.get_workflow_handle(case_workflow_id(code))
    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING
