"""No personal data where it does not belong: Temporal's history, search attributes,
workflow ids, log lines, span attributes and exception messages.

A case runs with a reporter whose name, email, phone and description are distinctive,
through review, a request for details and the reply, the crime record and the IMU's
closure; then each place is searched for those values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.message import Message
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from domain.case import DetailsReply, ImuClose, RecordCrime, RequestDetails, Stage
from domain.report import Report
from starter.errors import RejectedError
from starter.intake import describe_validation_error, parse_report, submit
from tests.helpers import EXAMPLES, wait_stage, wait_view
from tests.security.conftest import PERSONAL
from tests.workflows.conftest import FAST
from whn.codec import ENCODING, EncryptionCodec
from whn.temporal import data_converter
from worker import build_worker
from workflows.case import CaseWorkflow

REPLY = f"Call me on {PERSONAL['phone']}; the bikes were red."
# Loggers that stand in for systems outside the product: the dev SMTP sink logs each
# recipient, as a mail server would. The product's own loggers are all checked.
_OUTSIDE = ("whn.devstack.mailsink", "mail.log")
_LOCAL_ACTIVITY_MARKER = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}
_PATCH_MARKER = {"id", "deprecated"}


def personal_report_json() -> str:
    data = json.loads((EXAMPLES / "ordinary.json").read_text())
    data["submission_id"] = f"privacy-{abs(hash(object()))}"
    data["reporter"] |= {
        "name": PERSONAL["name"],
        "email": PERSONAL["email"],
        "phone": PERSONAL["phone"],
    }
    data["incident"]["description"] = PERSONAL["description"]
    return json.dumps(data)


def _secrets() -> list[str]:
    return [*PERSONAL.values(), REPLY]


async def _run_case(client: Client, task_queue: str) -> Any:
    """One case from receipt to the IMU's closure, with a details request and reply."""
    submitted = await submit(
        client, Report.model_validate_json(personal_report_json()), task_queue=task_queue,
        timings=FAST,
    )  # fmt: skip
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    await handle.execute_update(
        CaseWorkflow.request_details,
        RequestDetails(actor="handler-1", question="What colour were the bicycles?"),
    )
    await handle.signal(CaseWorkflow.details_reply, DetailsReply(text=REPLY))
    await wait_view(handle, lambda v: any(e.event == "details_received" for e in v.timeline))
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await wait_view(handle, lambda v: v.stage == Stage.WITH_IMU and v.assessment is not None)
    await handle.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="no-witnesses")
    )
    await handle.result()
    return handle


def _payloads(message: Message, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Payload]]:
    """Every Payload inside a protobuf message, with the field path that leads to it."""
    if isinstance(message, Payload):
        yield ".".join(path), message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        here = (*path, field.name)
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type == value_field.TYPE_MESSAGE:
                for item in value.values():
                    yield from _payloads(item, here)
        elif field.is_repeated:
            for item in value:
                yield from _payloads(item, here)
        else:
            yield from _payloads(value, here)


async def test_raw_history_has_no_personal_data_and_decodes_with_the_codec(
    client, case_worker, time_env
):
    handle = await _run_case(client, case_worker)

    # Read as anyone with access to Temporal (its UI, its database) would: no codec.
    plain = Client(time_env.client.service_client, namespace="default")
    history = await plain.get_workflow_handle(handle.id).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    as_json = history.to_json()
    for secret in _secrets():
        assert secret.encode() not in raw, f"{secret!r} in raw history"
        assert secret not in as_json
        assert json.dumps(secret)[1:-1] not in as_json

    found = [(path, p) for e in history.events for path, p in _payloads(e)]
    sealed = [p for _, p in found if p.metadata.get("encoding") == ENCODING]
    assert len(sealed) > 20  # input, update args and results, activities, summaries
    # The only plaintext payloads: search attributes, which Temporal must read, and the
    # markers the SDK core writes itself: beside each local activity's (encrypted) result,
    # and for each workflow.patched (its patch id).
    for path, p in found:
        if p.metadata.get("encoding") == ENCODING or "search_attributes" in path:
            continue
        assert path == "marker_recorded_event_attributes.details.payloads", path
        keys = set(json.loads(p.data))
        assert keys <= _LOCAL_ACTIVITY_MARKER or keys <= _PATCH_MARKER, p.data

    # The same history, decoded with the project's codec, holds everything.
    codec = data_converter().payload_codec
    assert isinstance(codec, EncryptionCodec)
    decoded = b"".join(p.data for p in codec.decode_sync(sealed))
    for secret in _secrets():
        assert secret.encode() in decoded, f"{secret!r} not recovered by the codec"


async def test_search_attributes_ids_summaries_and_memo_have_no_personal_data(client, case_worker):
    handle = await _run_case(client, case_worker)
    described = await handle.describe()
    visible = [
        handle.id,
        described.run_id or "",
        repr({k.name: v for k, v in described.typed_search_attributes}),
        repr(described.search_attributes),
        await described.static_summary() or "",
        await described.static_details() or "",
        repr(await described.memo()),
    ]
    text = "\n".join(visible)
    for secret in _secrets():
        assert secret not in text
    # ... and no identifying fragment of them either.
    for fragment in ("Quillfeather", "zq.private", "900781", "Q7781"):
        assert fragment not in text


async def test_log_lines_of_a_whole_case_have_no_personal_data(client, case_worker, caplog):
    caplog.set_level(logging.DEBUG)
    await _run_case(client, case_worker)
    records = [r for r in caplog.records if not r.name.startswith(_OUTSIDE)]
    assert records, "the case logged nothing: this test would prove nothing"
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {getattr(r, '__dict__', '')}"
        for r in records
    )
    for secret in _secrets():
        assert secret not in text, f"{secret!r} logged"


async def test_span_attributes_and_events_have_no_personal_data(
    client, db_pool, settings, task_queue
):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = client.config()
    config["interceptors"] = [*config["interceptors"], TracingInterceptor(provider.get_tracer("t"))]
    traced = Client(**config)
    async with build_worker(traced, db_pool, settings, task_queue=task_queue):
        await _run_case(traced, task_queue)
    provider.force_flush()
    spans = exporter.get_finished_spans()
    assert len(spans) > 20
    text = repr(
        [
            (
                s.name,
                dict(s.attributes or {}),
                [(e.name, dict(e.attributes or {})) for e in s.events],
            )
            for s in spans
        ]
    )
    for secret in _secrets():
        assert secret not in text, f"{secret!r} in a span"


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("reporter", "email", "zq.private-7781-at-example.org"),  # the bad value is personal
        ("reporter", "phone", "+44 7700 900781 (mobile) ext. 12345678"),
        ("reporter", "name", PERSONAL["name"] * 20),
        ("incident", "description", PERSONAL["description"] * 300),
        ("incident", "category", "no-such-category"),  # bad value elsewhere, personal data in
        ("reporter", "nickname", PERSONAL["name"]),  # an unknown field holding a name
    ],
)
def test_a_refused_report_names_the_field_not_the_personal_data(section, field, value):
    data = json.loads(personal_report_json())
    data[section][field] = value
    with pytest.raises(RejectedError) as caught:
        parse_report(json.dumps(data))
    message = str(caught.value)
    assert f"{section}.{field}" in message, message
    for secret in [*_secrets(), value, "Quillfeather", "zq.private", "900781"]:
        assert secret not in message, message
    # The raw pydantic error would have leaked the input: only its description is shown.
    with pytest.raises(ValidationError) as raw:
        Report.model_validate_json(json.dumps(data))
    assert describe_validation_error(raw.value) == message


def test_broken_json_errors_do_not_quote_the_document():
    text = personal_report_json()[:-40]  # cut off inside the description
    with pytest.raises(RejectedError) as caught:
        parse_report(text)
    assert "invalid JSON" in str(caught.value)
    for fragment in ("Quillfeather", "zq.private", "900781", "Q7781"):
        assert fragment not in str(caught.value)
