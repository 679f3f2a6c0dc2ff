"""The reporter's page, ``/track`` (issue #17): sign-in by receipt code and email, signed
links from letters, the case in plain words, forms to answer a details request and to
add information.

    GET  /track              the sign-in form (or on to the case when signed in)
    POST /track              sign in: the same answer for a wrong code or a wrong email;
                             failures slowed, then locked out per code and per client
    GET  /track/t/{token}    a letter's signed, expiring link: signs in to that case
    GET  /track/case         the case page (from the case store, never a workflow query)
    POST /track/case/answer  the answer to the open details request (the details signal,
                             ``starter.intake.details``, as ``whn-intake details`` sends it)
    POST /track/case/add     more information, or on a closed case a request to look again
    POST /track/sign-out

Every form carries a CSRF token tied to a cookie; cookies are HttpOnly, SameSite=Lax and
Secure over https; every page has a strict Content-Security-Policy (no script at all:
the page works without JavaScript). Every reporter action is a row of ``audit_log``.
Nothing personal reaches a log or a URL: the access log names the route template, and
the only thing in a URL is a link's opaque token.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from domain import track as words
from domain.case import DetailsReply
from domain.references import normalise_reference, reference_kind
from starter import reporter
from starter.errors import ConflictError, RejectedError, UnavailableError, WhnError
from starter.intake import details
from web.deps import ClientDep, PoolDep, SettingsDep
from whn.codec import Keyring
from whn.settings import Settings
from whn.temporal import keyring
from whn.tracklink import TokenError, TokenExpiredError, TrackSigner

router = APIRouter(tags=["reporters"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["when"] = words.when

SESSION = "whn_track"
CSRF = "whn_csrf"
MAX_TEXT = DetailsReply.model_fields["text"].metadata[-1].max_length  # 10,000, as the API's
MAX_FIELD = 320

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cache-Control": "no-store",
}


class _Keys:
    """The page's signer and the payload keys (to read sealed questions), made once."""

    def __init__(self, settings: Settings) -> None:
        self.ring: Keyring | None = keyring(settings)
        secret = settings.track_secret.get_secret_value() if settings.track_secret else None
        signer = TrackSigner.from_keys(secret=secret, ring=self.ring)
        if signer is None:
            raise UnavailableError("the reporter's page needs WHN_TRACK_SECRET or payload keys")
        self.signer = signer


def _keys(request: Request, settings: Settings) -> _Keys:
    found: _Keys | None = getattr(request.app.state, "track_keys", None)
    if found is None:
        found = request.app.state.track_keys = _Keys(settings)
    return found


def _https(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_url.startswith("https://")


def _finish(request: Request, settings: Settings, response: Response, nonce: str) -> Response:
    """Security headers, and the CSRF cookie the page's forms are tied to."""
    response.headers.update(SECURITY_HEADERS)
    secure = _https(request, settings)
    if secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if request.cookies.get(CSRF) != nonce:
        response.set_cookie(
            CSRF, nonce, httponly=True, secure=secure, samesite="lax", path="/track"
        )
    return response


def _nonce(request: Request) -> str:
    given = request.cookies.get(CSRF, "")
    return given if 20 <= len(given) <= 64 and given.isascii() else secrets.token_urlsafe(24)


def _render(
    request: Request,
    settings: Settings,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    nonce = _nonce(request)
    keys = _keys(request, settings)
    context = {
        "force_name": settings.force_name,
        "csrf": keys.signer.csrf(nonce),
        "errors": {},
        "error_summary": [],
        **context,
    }
    response = templates.TemplateResponse(request, f"track/{template}", context, status_code=status)
    return _finish(request, settings, response, nonce)


def _message(
    request: Request,
    settings: Settings,
    title: str,
    *paragraphs: str,
    status: int,
    back: tuple[str, str] = ("/track", "Sign in to see your report"),
) -> Response:
    return _render(
        request,
        settings,
        "message.html",
        {"title": title, "paragraphs": paragraphs, "back_href": back[0], "back_text": back[1]},
        status=status,
    )


def _session(request: Request, settings: Settings) -> str | None:
    """The workflow id of the signed-in case, or None."""
    token = request.cookies.get(SESSION)
    if not token:
        return None
    try:
        return _keys(request, settings).signer.open(token, purpose="session")
    except TokenError:
        return None


def _signed_in(request: Request, settings: Settings, workflow_id: str) -> Response:
    response = RedirectResponse("/track/case", status_code=303)
    token = _keys(request, settings).signer.seal(
        workflow_id, purpose="session", ttl=settings.track_session_ttl
    )
    response.set_cookie(
        SESSION,
        token,
        max_age=int(settings.track_session_ttl.total_seconds()),
        httponly=True,
        secure=_https(request, settings),
        samesite="lax",
        path="/track",
    )
    return _finish(request, settings, response, _nonce(request))


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(request: Request, settings: Settings, form: dict[str, str]) -> bool:
    nonce = request.cookies.get(CSRF, "")
    token = form.get("csrf", "")
    return bool(nonce and token) and _keys(request, settings).signer.csrf_ok(nonce, token)


def _csrf_refused(request: Request, settings: Settings, back: str) -> Response:
    return _message(
        request,
        settings,
        "Please try again",
        "We could not accept this form because it had expired or did not come from this"
        " page. Nothing has been sent or changed.",
        "Go back, reload the page and send it again.",
        status=400,
        back=(back, "Go back to the page"),
    )


# --- signing in --------------------------------------------------------------------------


@router.get("/track")
async def sign_in_form(request: Request, settings: SettingsDep) -> Response:
    if _session(request, settings):
        return RedirectResponse("/track/case", status_code=303)
    return _render(
        request,
        settings,
        "signin.html",
        {"title": "Track your report", "receipt_code": "", "email": ""},
    )


@router.post("/track")
async def sign_in(request: Request, settings: SettingsDep, pool: PoolDep) -> Response:
    form = await _form(request)
    if not _csrf_ok(request, settings, form):
        await reporter.audit(pool, "track-sign-in", workflow_id=None, allowed=False, reason="csrf")
        return _csrf_refused(request, settings, "/track")
    code = normalise_reference(form.get("receipt_code", "")[:MAX_FIELD])
    email = form.get("email", "")[:MAX_FIELD].strip()
    errors: dict[str, str] = {}
    if not code:
        errors["receipt_code"] = "Enter your receipt code"
    if not email:
        errors["email"] = "Enter the email address you gave in your report"
    keys = _keys(request, settings)
    client = request.client.host if request.client else "unknown"
    code_key = f"code:{keys.signer.blind(code)}"
    client_key = f"client:{keys.signer.blind(client)}"

    def again(status: int, locked: str | None = None) -> Response:
        return _render(
            request,
            settings,
            "signin.html",
            {
                "title": "Track your report",
                "receipt_code": code,
                "email": email,
                "errors": errors,
                "error_summary": list(errors.items()),
                "locked": locked,
            },
            status=status,
        )

    if errors:
        return again(400)
    until = await reporter.locked_until(pool, [code_key, client_key])
    if until is not None:
        await reporter.audit(
            pool, "track-sign-in", workflow_id=None, allowed=False, reason="locked out"
        )
        return again(429, _locked_words(until))
    found = await reporter.reporter_email(pool, code) if reference_kind(code) == "receipt" else None
    if found is not None and reporter.same_email(email, found[1]):
        await reporter.clear_failures(pool, code_key)
        await reporter.audit(pool, "track-sign-in", workflow_id=found[0], allowed=True)
        return _signed_in(request, settings, found[0])
    failures = await reporter.record_failure(
        pool,
        {code_key: settings.track_code_failures, client_key: settings.track_client_failures},
        settings.track_lockout,
    )
    await reporter.audit(pool, "track-sign-in", workflow_id=None, allowed=False, reason="no match")
    # Slowed: each failure in the window waits longer before it is answered (capped).
    delay = settings.track_failure_delay.total_seconds() * 2 ** min(failures - 1, 5)
    await asyncio.sleep(min(delay, 5.0))
    until = await reporter.locked_until(pool, [code_key, client_key])
    message = "The receipt code or email address is not right. Check them and try again."
    errors["receipt_code"] = message
    return again(429 if until else 400, _locked_words(until) if until else None)


def _locked_words(until: datetime) -> str:
    return (
        "There have been too many attempts to sign in. For your security, you cannot"
        f" sign in until {words.when(until)}. You can also call 101 and give your receipt code."
    )


@router.get("/track/t/{token}")
async def open_link(request: Request, token: str, settings: SettingsDep, pool: PoolDep) -> Response:
    try:
        workflow_id = _keys(request, settings).signer.open(token, purpose="link")
    except TokenExpiredError:
        await reporter.audit(pool, "track-link", workflow_id=None, allowed=False, reason="expired")
        return _message(
            request,
            settings,
            "This link has expired",
            "Links in our emails work for a limited time, to keep your report safe.",
            "You can still see your report: sign in with your receipt code and email address.",
            status=410,
        )
    except TokenError:
        await reporter.audit(
            pool, "track-link", workflow_id=None, allowed=False, reason="not valid"
        )
        return _message(
            request,
            settings,
            "This link does not work",
            "The link may have been copied wrongly or changed.",
            "You can still see your report: sign in with your receipt code and email address.",
            status=400,
        )
    await reporter.audit(pool, "track-link", workflow_id=workflow_id, allowed=True)
    return _signed_in(request, settings, workflow_id)


@router.post("/track/sign-out")
async def sign_out(request: Request, settings: SettingsDep, pool: PoolDep) -> Response:
    form = await _form(request)
    if not _csrf_ok(request, settings, form):
        return _csrf_refused(request, settings, "/track/case")
    workflow_id = _session(request, settings)
    if workflow_id:
        await reporter.audit(pool, "track-sign-out", workflow_id=workflow_id, allowed=True)
    response = RedirectResponse("/track", status_code=303)
    response.delete_cookie(SESSION, path="/track")
    return _finish(request, settings, response, _nonce(request))


# --- the case ----------------------------------------------------------------------------

_BANNERS = {
    "answer": "Thank you. We have your answer and will carry on looking at your report.",
    "added": "Thank you. We have added what you sent to your report.",
    "reopen": "Thank you. We will read what you sent and decide whether to look at your case again.",
}


def _timings(settings: Settings) -> words.PageTimings:
    return words.PageTimings(
        review_deadline=settings.review_deadline,
        crn_deadline=settings.crn_deadline,
        details_expiry=settings.details_expiry,
        update_interval=settings.update_interval,
    )


async def _case_page(
    request: Request,
    settings: Settings,
    pool: Any,
    workflow_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    answer_text: str = "",
    information_text: str = "",
) -> Response:
    facts = await reporter.case_facts(pool, workflow_id)
    if facts is None:
        return _message(
            request,
            settings,
            "We are still setting up your report",
            "Please try again in a few minutes.",
            status=503,
        )
    timings = _timings(settings)
    open_request = words.open_request(facts, timings)
    question = None
    if open_request is not None:
        question = await reporter.question(
            pool, _keys(request, settings).ring, workflow_id, open_request.number
        )
    errors = errors or {}
    sent = request.query_params.get("sent", "")
    return _render(
        request,
        settings,
        "case.html",
        {
            "title": words.headline(facts),
            "facts": facts,
            "headline": words.headline(facts),
            "stage_sentence": words.stage_sentence(facts),
            "steps": words.STEPS,
            "step_index": words.step_index(facts.stage),
            "next_steps": words.next_steps(facts, timings, now=datetime.now(UTC)),
            "timeline": words.timeline(facts),
            "team": words.team_name(facts.team),
            "open_request": open_request,
            "request_by": words.when(open_request.lapses_at) if open_request else "",
            "question": question,
            "reopen": facts.stage in words.REOPENABLE,
            "banner": None if errors else _BANNERS.get(sent),
            "errors": errors,
            "error_summary": [
                (("answer" if k == "answer" else "information"), v) for k, v in errors.items()
            ],
            "answer_text": answer_text,
            "information_text": information_text,
        },
        status=status,
    )


@router.get("/track/case")
async def case_page(request: Request, settings: SettingsDep, pool: PoolDep) -> Response:
    workflow_id = _session(request, settings)
    if workflow_id is None:
        return RedirectResponse("/track", status_code=303)
    await reporter.audit(pool, "track-view", workflow_id=workflow_id, allowed=True)
    return await _case_page(request, settings, pool, workflow_id)


def _text_error(text: str, *, empty: str) -> str | None:
    if not text:
        return empty
    if len(text) > MAX_TEXT:
        return f"Your answer must be {MAX_TEXT:,} characters or fewer. It is {len(text):,} characters now."
    return None


async def _open_form(
    request: Request, settings: Settings, pool: Any, action: str
) -> tuple[dict[str, str], str, str] | Response:
    """The opening both of the case page's forms share: signed in, CSRF checked.

    Returns the form, the case's workflow id and the submitted text, or the response
    that ends the request (back to sign-in, or the CSRF refusal, audited as ``action``).
    """
    form = await _form(request)
    workflow_id = _session(request, settings)
    if workflow_id is None:
        return RedirectResponse("/track", status_code=303)
    if not _csrf_ok(request, settings, form):
        await reporter.audit(pool, action, workflow_id=workflow_id, allowed=False, reason="csrf")
        return _csrf_refused(request, settings, "/track/case")
    return form, workflow_id, form.get("text", "").strip()


async def _invalid_text(
    request: Request,
    settings: Settings,
    pool: Any,
    workflow_id: str,
    action: str,
    field: str,
    problem: str,
    text: str,
) -> Response:
    """The case page again with ``problem`` against ``field`` and the text kept; audited."""
    await reporter.audit(
        pool, action, workflow_id=workflow_id, allowed=False, reason="invalid text"
    )
    return await _case_page(
        request,
        settings,
        pool,
        workflow_id,
        status=400,
        errors={field: problem},
        answer_text=text if field == "answer" else "",
        information_text=text if field == "information" else "",
    )


@router.post("/track/case/answer")
async def answer(
    request: Request, settings: SettingsDep, pool: PoolDep, client: ClientDep
) -> Response:
    opened = await _open_form(request, settings, pool, "track-answer")
    if isinstance(opened, Response):
        return opened
    form, workflow_id, text = opened
    facts = await reporter.case_facts(pool, workflow_id)
    current = words.open_request(facts, _timings(settings)) if facts else None
    if facts is None or current is None or str(current.number) != form.get("request"):
        await reporter.audit(
            pool, "track-answer", workflow_id=workflow_id, allowed=False, reason="no open request"
        )
        return _message(
            request,
            settings,
            "This question has closed",
            "We are no longer waiting for an answer to this question, so your answer has not been sent.",
            "If you still want to tell us, use 'Tell us something new' on your report's page.",
            status=409,
            back=("/track/case", "Go back to your report"),
        )
    problem = _text_error(text, empty="Enter your answer")
    if problem:
        return await _invalid_text(
            request, settings, pool, workflow_id, "track-answer", "answer", problem, text
        )
    try:
        await details(client, facts.receipt_code, text, require_open_request=True)
    except (ConflictError, RejectedError):
        await reporter.audit(
            pool, "track-answer", workflow_id=workflow_id, allowed=False, reason="case closed"
        )
        return _message(
            request,
            settings,
            "This question has closed",
            "Your case is closed, so your answer has not been sent.",
            status=409,
            back=("/track/case", "Go back to your report"),
        )
    except WhnError:
        await reporter.audit(
            pool, "track-answer", workflow_id=workflow_id, allowed=False, reason="unavailable"
        )
        return _message(
            request,
            settings,
            "Sorry, there is a problem with the service",
            "We could not send your answer just now. Nothing has been sent.",
            "Please try again in a few minutes.",
            status=503,
            back=("/track/case", "Go back to your report"),
        )
    await reporter.audit(pool, "track-answer", workflow_id=workflow_id, allowed=True)
    return RedirectResponse("/track/case?sent=answer", status_code=303)


@router.post("/track/case/add")
async def add_information(request: Request, settings: SettingsDep, pool: PoolDep) -> Response:
    opened = await _open_form(request, settings, pool, "track-add")
    if isinstance(opened, Response):
        return opened
    _, workflow_id, text = opened
    problem = _text_error(text, empty="Enter what you want to tell us")
    if problem:
        return await _invalid_text(
            request, settings, pool, workflow_id, "track-add", "information", problem, text
        )
    facts = await reporter.case_facts(pool, workflow_id)
    if facts is None:
        return RedirectResponse("/track/case", status_code=303)
    reopen = facts.stage in words.REOPENABLE
    what: reporter.Added = "reopen_requested" if reopen else "reporter_information"
    await reporter.add(pool, _keys(request, settings).ring, workflow_id, text, what=what)
    await reporter.audit(
        pool, f"track-{what.replace('_', '-')}", workflow_id=workflow_id, allowed=True
    )
    return RedirectResponse(f"/track/case?sent={'reopen' if reopen else 'added'}", status_code=303)
