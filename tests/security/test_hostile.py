"""Hostile input: each report or argument is refused with a clear reason or kept exactly.

Property-based (hypothesis) over the report model and the admin script's arguments, then
a handful of hostile files through ``whn-intake`` itself, and hostile text through a
whole case into PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.case import (
    NotACrime,
    RecordStep,
    Redirect,
    RequestDetails,
    Stage,
)
from domain.report import Report
from starter.admin_cli import _build
from starter.errors import RejectedError
from starter.intake import describe_validation_error, submit
from tests.helpers import EXAMPLES, wait_stage
from tests.workflows.conftest import FAST
from workflows.case import CaseWorkflow

WHN_INTAKE = Path(sys.executable).parent / "whn-intake"
BASE: dict[str, Any] = json.loads((EXAMPLES / "ordinary.json").read_text())

SQL = [
    "Robert'); DROP TABLE cases;--",
    "' OR '1'='1",
    '" OR 1=1 --',
    "1; DELETE FROM staff WHERE true; --",
    "$1, $2); TRUNCATE audit_log; --",
    "'); COPY cases TO PROGRAM 'sh -c id'; --",
    "\\'; SELECT pg_sleep(10); --",
    "E'\\x00'",
]
CONTROL = ["\x00", "\x07", "\x1b[31m", "\r\n\r\n", "\t", "\u202e", "\u200b", "\ufeff", "\x7f"]
UNICODE = [
    "Zoë Ní Bhriain",
    "李小龙",
    "مرحبا",
    "🚲🚲",
    "e\u0301",
    "\U0001d518\U0001d52b\U0001d526",
    "\U0010ffff",
]
HOSTILE_TEXT = st.one_of(
    st.sampled_from(SQL + CONTROL + UNICODE),
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=50).map(lambda s: s * 300),
    st.lists(st.sampled_from(SQL + CONTROL + UNICODE), max_size=6).map("".join),
)
# Keys without line breaks: a key with one is test_a_field_name_cannot_break_the_line.
KEYS = HOSTILE_TEXT.filter(
    lambda k: not any(c in k for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
# Every place a report holds a value, as (section path, field).
FIELDS = [
    ((), "submission_id"),
    ((), "channel"),
    (("reporter",), "name"),
    (("reporter",), "email"),
    (("reporter",), "phone"),
    (("reporter",), "relationship"),
    (("reporter",), "under_18"),
    (("incident",), "category"),
    (("incident",), "description"),
    (("incident",), "occurred_from"),
    (("incident",), "witnesses"),
    (("incident", "location"), "address"),
    (("incident", "location"), "postcode"),
    (("incident", "location"), "latitude"),
    (("incident", "suspect"), "description"),
    (("incident", "suspect"), "vehicle_registration"),
    (("incident",), "evidence"),
    (("incident",), "unexpected_field"),
    ((), "unexpected_top_level"),
]


_WHITE_SPACE = "".join(
    c for c in map(chr, range(0x3001)) if c.isspace() and c not in "\x1c\x1d\x1e\x1f"
)


def _with(path: tuple[str, ...], field: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    section = data
    for key in path:
        section = section[key]
    section[field] = value
    return data


def _check(document: str) -> Report | None:
    """Refused naming a field (or the JSON), or accepted and round-tripping exactly."""
    try:
        report = Report.model_validate_json(document)
    except ValidationError as err:
        reason = describe_validation_error(err)
        assert reason and "\n" not in reason, reason
        first = err.errors()[0]
        if first["type"] == "json_invalid":
            assert reason.startswith("invalid JSON")
        else:
            # the field as written; a key holding a control character is quoted, so the
            # reason stays one printable line
            where = ".".join(str(p) if str(p).isprintable() else repr(str(p)) for p in first["loc"])
            assert reason.startswith(where or "report"), reason
            assert reason.isprintable(), reason
        return None
    again = Report.model_validate_json(report.model_dump_json())
    assert again == report
    assert again.model_dump_json() == report.model_dump_json()
    return report


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_value_anywhere_is_refused_naming_the_field_or_kept_exactly(place, value):
    path, field = place
    report = _check(json.dumps(_with(path, field, value)))
    if (
        report is not None
        and isinstance(value, str)
        and field in {"name", "description", "address"}
    ):
        kept: Any = report.model_dump()
        for key in (*path, field):
            kept = kept[key]
        # text is kept as given, less surrounding whitespace (Unicode White_Space, as
        # pydantic strips it: not the separators U+001C-U+001F that str.strip() takes too)
        assert kept == value.strip(_WHITE_SPACE)


@settings(max_examples=200, deadline=None)
@given(value=JSON_VALUES)
def test_any_json_document_is_refused_cleanly(value):
    _check(json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2_000))
def test_any_bytes_are_refused_cleanly(data):
    try:
        _check(data.decode("utf-8", errors="surrogateescape"))
    except UnicodeEncodeError:
        pass  # not text at all: the CLI reads bytes, see test_hostile_files_through_the_cli
    try:
        Report.model_validate_json(data)
    except ValidationError as err:
        assert describe_validation_error(err)


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
def test_deeply_nested_json_is_refused_not_a_crash(depth):
    nested = "[" * depth + "]" * depth
    data = json.dumps(_with(("incident",), "description", "x"))[:-1] + f', "x": {nested}}}'
    assert _check(data) is None


@pytest.mark.parametrize("key", ["\n", "x\r\nwhn-intake: forged line", "a\u2028b"])
def test_a_field_name_cannot_break_the_line(key):
    document = json.dumps(_with(("incident", "evidence"), key, None))
    with pytest.raises(ValidationError) as caught:
        Report.model_validate_json(document)
    reason = describe_validation_error(caught.value)
    assert len(reason.splitlines()) == 1, reason


def test_very_long_text_is_refused_naming_the_field():
    for path, field, limit in [
        (("reporter",), "name", 200),
        (("incident",), "description", 10_000),
        (("incident", "location"), "address", 300),
    ]:
        too_long = "é" * (limit + 1)
        with pytest.raises(ValidationError) as caught:
            Report.model_validate_json(json.dumps(_with(path, field, too_long)))
        assert describe_validation_error(caught.value).startswith(".".join((*path, field)))
        at_limit = Report.model_validate_json(json.dumps(_with(path, field, "é" * limit)))
        assert at_limit is not None


# --- the admin script's arguments -------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    model_field=st.sampled_from(
        [
            (RequestDetails, "question"),
            (NotACrime, "advice"),
            (Redirect, "agency"),
            (Redirect, "reason"),
            (RecordStep, "note"),
            (RecordStep, "step"),
        ]
    ),
    value=HOSTILE_TEXT,
    actor=HOSTILE_TEXT,
)
def test_admin_arguments_are_refused_naming_the_option_or_kept_exactly(model_field, value, actor):
    model, field = model_field
    fields: dict[str, Any] = {
        RequestDetails: {"question": "Q?"},
        NotACrime: {"advice": "A."},
        Redirect: {"agency": "Suffolk", "reason": "R."},
        RecordStep: {"step": "cctv", "note": "N."},
    }[model] | {field: value, "actor": actor}
    try:
        built = _build(model, **fields)
    except RejectedError as err:
        message = str(err)
        assert message.startswith("--") and "\n" not in message, message
        return
    assert getattr(built, field) == value and built.actor == actor  # not altered
    assert type(built).model_validate_json(built.model_dump_json()) == built


# --- whn-intake with hostile files ------------------------------------------------------

HOSTILE_FILES: dict[str, bytes] = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "invalid-utf8": b'{"submission_id": "\xff\xfe\xfd"}',
    "nul-bytes": b"\x00" * 64,
    "utf16": json.dumps(BASE).encode("utf-16"),
    "json-null": b"null",
    "json-array": b"[" + json.dumps(BASE).encode() + b"]",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "sql-in-id": json.dumps(_with((), "submission_id", "x'; DROP TABLE cases;--")).encode(),
    "control-in-postcode": json.dumps(
        _with(("incident", "location"), "postcode", "CB1\x1b]0;pwned\x07")
    ).encode(),
    "huge-number": json.dumps(_with(("incident",), "witnesses", 10**400)).encode(),
    "over-256k": json.dumps(_with(("incident",), "description", "x" * 300_000)).encode(),
    "near-2mb-blob": json.dumps(_with(("incident",), "description", "é" * 1_100_000)).encode(),
    "under-256k-too-long": json.dumps(_with(("incident",), "description", "x" * 200_000)).encode(),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_files_through_the_cli_exit_2_with_one_line(name, tmp_path):
    path = tmp_path / f"{name}.json"
    path.write_bytes(HOSTILE_FILES[name])
    # Refused before Temporal is contacted: a closed port proves nothing was started.
    env = {
        "PATH": "/usr/bin:/bin",
        "WHN_TEMPORAL_ADDRESS": "127.0.0.1:1",
        "WHN_CODEC_KEYS": os.environ["WHN_CODEC_KEYS"],
    }
    result = subprocess.run(
        [str(WHN_INTAKE), "submit", str(path)], env=env, capture_output=True, timeout=60
    )
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("whn-intake: ")
    if name.startswith(("over-256k", "near-2mb")):
        assert "the limit is 262144" in err
    if name == "under-256k-too-long":
        assert "incident.description" in err and "10000" in err


# --- hostile text through a whole case --------------------------------------------------

KEPT = [
    "Robert'); DROP TABLE cases;-- and \" OR 1=1 -- then $1 $$ \\x00 %s {0}",
    "Tab\there, new\nline, bell\x07, escape \x1b[31m, bidi \u202e override, zero\u200bwidth",
    "Zoë Ní Bhriain 李小龙 مرحبا 🚲 e\u0301 \U0010ffff",
]


@pytest.mark.parametrize("text", KEPT, ids=["sql", "control", "unicode"])
async def test_hostile_text_is_stored_exactly_as_given(client, case_worker, db_pool, text):
    data = _with(("incident",), "description", text)
    data["reporter"]["name"] = text[:200].strip()
    data["submission_id"] = f"hostile-{abs(hash(text))}-{id(data)}"
    report = Report.model_validate_json(json.dumps(data))
    before = await _counts(db_pool)
    submitted = await submit(client, report, task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    stored = await db_pool.fetchrow(
        """SELECT report->'incident'->>'description' AS description,
                  report->'reporter'->>'name' AS name
           FROM cases WHERE workflow_id = $1""",
        submitted.workflow_id,
    )
    assert stored["description"] == text
    assert stored["name"] == data["reporter"]["name"]
    # Nothing the injection names ran: no table dropped, no staff deleted, no log
    # truncated, and the case is one more row.
    after = await _counts(db_pool)
    assert after["staff"] == before["staff"] > 0
    assert after["cases"] == before["cases"] + 1
    sentinel = await db_pool.fetchval(
        "DELETE FROM audit_log WHERE id = $1 RETURNING id", before["sentinel"]
    )
    assert sentinel == before["sentinel"], "the audit log lost a row"


async def _counts(db_pool: Any) -> dict[str, int]:
    """Rows of the tables the hostile text names (a dropped table raises here), and a
    sentinel row planted in the audit log (which may be empty so far)."""
    counts = {
        table: await db_pool.fetchval(f"SELECT count(*) FROM {table}")
        for table in ("cases", "staff")
    }
    counts["sentinel"] = await db_pool.fetchval(
        "INSERT INTO audit_log (actor, action, allowed, reason)"
        " VALUES ('hostile-test', 'sentinel', false, 'must survive the hostile text')"
        " RETURNING id"
    )
    return counts


def test_a_nul_character_is_refused_naming_the_field() -> None:
    """PostgreSQL cannot store NUL in text or jsonb: a report holding one would never be
    recorded (its case stuck opening), so the model refuses it, naming the field."""
    data = _with(("incident",), "description", "before\x00after")
    with pytest.raises(ValidationError) as refused:
        Report.model_validate_json(json.dumps(data))
    assert describe_validation_error(refused.value).startswith("incident.description")
    assert "NUL" in describe_validation_error(refused.value)
