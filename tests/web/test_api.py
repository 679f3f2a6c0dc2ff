"""The intake API on a running server: receipts, idempotency (also racing), refusals, details."""

from __future__ import annotations

import asyncio
import json

import httpx

from domain.case import RequestDetails, Stage, case_workflow_id, receipt_code_for
from starter import admin, intake
from starter.errors import RejectedError
from starter.intake_keys import revoke_keys
from tests.helpers import until
from tests.web.conftest import new_intake_key, report


async def _stage(web, code: str) -> str:
    answer = await web.http.get(f"/api/v1/cases/{code}")
    assert answer.status_code == 200, answer.text
    return answer.json()["stage"]


async def test_a_report_gets_its_receipt_and_the_same_again_the_same_case(web, db_pool):
    body = report()
    first = await web.http.post("/api/v1/reports", json=body)
    assert first.status_code == 201, first.text
    code = first.json()["receipt_code"]
    assert first.json() == {"receipt_code": code, "created": True}
    assert code == receipt_code_for(body["submission_id"])
    again = await web.http.post("/api/v1/reports", json=body)
    assert (again.status_code, again.json()) == (200, {"receipt_code": code, "created": False})

    await until(lambda: _reviewed(web, code), what="reviewed")
    status = (await web.http.get(f"/api/v1/cases/{code}")).json()
    assert set(status) == {
        "receipt_code",
        "stage",
        "crime_reference",
        "investigation_reference",
        "closed",
    }
    assert status["receipt_code"] == code and status["closed"] is False
    # The intake system is the case's source, and in the audit log.
    source = await db_pool.fetchrow(
        "SELECT source, channel, receipt_code FROM case_sources WHERE submission_id = $1",
        body["submission_id"],
    )
    assert dict(source) == {"source": web.name, "channel": "online", "receipt_code": code}
    audited = await db_pool.fetch(
        "SELECT action, reason FROM audit_log WHERE actor = $1 AND workflow_id = $2 ORDER BY id",
        f"intake:{web.name}",
        case_workflow_id(code),
    )
    assert [(r["action"], r["reason"]) for r in audited] == [
        ("intake-submit", None),
        ("intake-submit", "duplicate"),
    ]


async def _reviewed(web, code: str) -> bool:
    return await _stage(web, code) == Stage.AWAITING_REVIEW.value


async def test_two_identical_requests_racing_start_one_case(web, dev_client, db_pool):
    body = report()
    answers = await asyncio.gather(*(web.http.post("/api/v1/reports", json=body) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert len({a.json()["receipt_code"] for a in answers}) == 1
    assert [a.json()["created"] for a in answers].count(True) == 1
    code = answers[0].json()["receipt_code"]
    runs = [e async for e in dev_client.list_workflows(f"WorkflowId = '{case_workflow_id(code)}'")]
    assert len(runs) == 1


async def test_a_submission_id_used_for_another_report_is_409_and_the_case_untouched(web, db_pool):
    body = report()
    first = await web.http.post("/api/v1/reports", json=body)
    code = first.json()["receipt_code"]
    other = report(submission_id=body["submission_id"], incident__description="Something else.")
    refused = await web.http.post("/api/v1/reports", json=other)
    assert refused.status_code == 409
    assert "already used for a different report" in refused.json()["error"]
    assert code in refused.json()["error"]
    audited = await db_pool.fetchval(
        "SELECT allowed FROM audit_log WHERE actor = $1 AND workflow_id = $2 AND NOT allowed",
        f"intake:{web.name}",
        case_workflow_id(code),
    )
    assert audited is False
    # Still the first report's case, which goes on as before.
    await until(lambda: _reviewed(web, code), what="first case reviewed")


async def test_keys_missing_wrong_or_revoked_are_401(web, db_pool, pg_dsn):
    body = report()
    for headers in ({}, {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer whn_ik_nope"}):
        async with httpx.AsyncClient(base_url=web.url, headers=headers) as other:
            answer = await other.post("/api/v1/reports", json=body)
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "error" in answer.json()
    name, key = await new_intake_key(db_pool)
    async with httpx.AsyncClient(
        base_url=web.url, headers={"Authorization": f"Bearer {key}"}
    ) as soon_revoked:
        assert (await soon_revoked.get("/api/v1/cases/WHN-0000-0000-00")).status_code == 404
        await revoke_keys(pg_dsn, actor="supervisor-1", name=name)
        answer = await soon_revoked.post("/api/v1/reports", json=body)
        assert answer.status_code == 401 and "revoked" in answer.json()["error"]
    # None of those started anything.
    assert (
        await web.http.get(f"/api/v1/cases/{receipt_code_for(body['submission_id'])}")
    ).status_code == 404


async def test_invalid_bodies_are_422_naming_the_field_and_start_nothing(web):
    cases = [
        (b'{"submission_id": ', "invalid JSON"),
        (json.dumps(report(incident__witnesses="two")).encode(), "incident.witnesses"),
        (json.dumps(report(surprise=1)).encode(), "surprise"),
        (json.dumps(report(reporter__email="not-an-email")).encode(), "reporter.email"),
        (json.dumps(report(incident__description="x" * 10_001)).encode(), "incident.description"),
    ]
    for body, named in cases:
        answer = await web.http.post(
            "/api/v1/reports", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        reason = answer.json()["error"]
        assert named in reason and "\n" not in reason
        # The CLI's own reason, word for word.
        try:
            intake.parse_report(body)
        except RejectedError as err:
            assert str(err) == reason
    listed = await web.http.get("/api/v1/cases/WHN-0000-0000-00")
    assert listed.status_code == 404


async def test_a_body_over_the_limit_is_413_before_parsing(web):
    big = b'{"submission_id": "' + b"x" * (300 * 1024) + b'"}'
    answer = await web.http.post(
        "/api/v1/reports", content=big, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and "limit" in answer.json()["error"]

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b"x" * 8192

    answer = await web.http.post("/api/v1/reports", content=chunks())
    assert answer.status_code == 413


async def test_details_reach_an_open_request_and_are_refused_otherwise(web, dev_client):
    assert (
        await web.http.post("/api/v1/cases/WHN-0000-0000-00/details", json={"text": "x"})
    ).status_code == 404
    assert (
        await web.http.post("/api/v1/cases/nonsense/details", json={"text": "x"})
    ).status_code == 404
    code = (await web.http.post("/api/v1/reports", json=report())).json()["receipt_code"]
    await until(lambda: _reviewed(web, code), what="reviewed")
    refused = await web.http.post(f"/api/v1/cases/{code}/details", json={"text": "The back door."})
    assert refused.status_code == 409 and "no open request" in refused.json()["error"]
    bad = await web.http.post(f"/api/v1/cases/{code}/details", json={"txt": "x"})
    assert bad.status_code == 422 and "text" in bad.json()["error"]

    await admin.act(
        dev_client,
        code,
        RequestDetails(actor="handler-1", question="Which door?"),
        database_url=None,
    )
    sent = await web.http.post(f"/api/v1/cases/{code}/details", json={"text": "The back door."})
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"ref": code, "delivered": True}
    await until(lambda: _reviewed(web, code), what="back to review with the reply")


async def test_the_openapi_report_schema_is_the_intake_schema(web):
    document = (await web.http.get("/api/openapi.json")).json()
    assert {"/api/v1/reports", "/api/v1/cases/{ref}/details", "/api/v1/cases/{ref}"} <= set(
        document["paths"]
    )
    body = document["paths"]["/api/v1/reports"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schemas = document["components"]["schemas"]

    def inline(node, defs, prefix):
        if isinstance(node, dict):
            if "$ref" in node and node["$ref"].startswith(prefix):
                return inline(defs[node["$ref"][len(prefix) :]], defs, prefix)
            return {k: inline(v, defs, prefix) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [inline(v, defs, prefix) for v in node]
        return node

    cli_schema = json.loads(intake.schema())
    ours = inline(schemas[ref.rsplit("/", 1)[1]], schemas, "#/components/schemas/")
    theirs = inline(cli_schema, cli_schema.get("$defs", {}), "#/$defs/")
    assert ours == theirs


async def test_an_intake_system_reads_and_writes_only_the_cases_it_submitted(
    web, dev_client, db_pool, task_queue
):
    """Another intake system's key, or a case started by whn-intake or the Python function,
    is a 404 as an unknown reference: no stage read back, no reply put into the case."""
    code = (await web.http.post("/api/v1/reports", json=report())).json()["receipt_code"]
    await until(lambda: _reviewed(web, code), what="reviewed")
    await admin.act(
        dev_client, code, RequestDetails(actor="handler-1", question="Which?"), database_url=None
    )

    async def awaiting() -> bool:
        return await _stage(web, code) == Stage.AWAITING_DETAILS.value

    await until(awaiting, what="awaiting details")
    direct = await intake.submit(
        dev_client, intake.parse_report(json.dumps(report())), task_queue=task_queue
    )
    _, other_key = await new_intake_key(db_pool)
    async with httpx.AsyncClient(
        base_url=web.url, headers={"Authorization": f"Bearer {other_key}"}, timeout=30
    ) as other:
        for client, ref in ((other, code), (web.http, direct.receipt_code)):
            read = await client.get(f"/api/v1/cases/{ref}")
            assert read.status_code == 404, read.text
            assert read.json() == {"error": f"unknown reference {ref}"}
            sent = await client.post(f"/api/v1/cases/{ref}/details", json={"text": "Not mine."})
            assert sent.status_code == 404, sent.text
    history = await dev_client.get_workflow_handle(case_workflow_id(code)).fetch_history()
    signalled = "workflow_execution_signaled_event_attributes"
    assert not [e for e in history.events if e.HasField(signalled)]
    assert await _stage(web, code) == Stage.AWAITING_DETAILS.value
