"""``whn-intake`` as a subprocess: submit, duplicates, bad input, details, schema, server down."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers import EXAMPLES


def _report(**changes) -> dict:
    data = json.loads((EXAMPLES / "ordinary.json").read_text())
    data["submission_id"] = f"cli-{uuid.uuid4()}"
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return data


_DELETE = object()


async def test_submit_prints_receipt_and_resubmission_gets_the_same(cli, tmp_path, mail_sink):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_report()))
    first = await cli("whn-intake", "submit", str(path))
    assert first.returncode == 0, first.stderr
    code = first.stdout.split()[0]
    assert code.startswith("WHN-")
    again = await cli.json("whn-intake", "submit", str(path))
    assert again["receipt_code"] == code and again["duplicate"] is True
    mail = await mail_sink.await_for(lambda m: code in m["Subject"], timeout=20)
    assert mail["To"] == "karen@example.org"


async def test_submit_from_stdin(cli):
    result = await cli("whn-intake", "submit", "-", "--json", stdin=json.dumps(_report()).encode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["duplicate"] is False


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"reporter__name": _DELETE}, "reporter.name"),
        ({"reporter__name": ""}, "reporter.name"),
        ({"reporter__email": "not-an-email"}, "reporter.email"),
        ({"reporter__email": None}, "reporter.email"),
        ({"incident__category": "jaywalking"}, "incident.category"),
        ({"incident__description": "x" * 10_001}, "incident.description"),
        ({"incident__witnesses": "two"}, "incident.witnesses"),
        ({"channel": "pigeon"}, "channel"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_report_exits_2_naming_the_field_and_starts_nothing(
    cli, tmp_path, changes, named
):
    report = _report(**changes)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(report))
    result = await cli("whn-intake", "submit", str(path))
    assert result.returncode == 2
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    listed = await cli.json("whn-admin", "list")
    from domain.case import receipt_code_for

    assert receipt_code_for(report["submission_id"]) not in {
        c["receipt_code"] for c in listed["cases"]
    }


async def test_broken_json_and_missing_file_exit_2(cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"submission_id": ')
    result = await cli("whn-intake", "submit", str(path))
    assert result.returncode == 2 and "invalid JSON" in result.stderr
    result = await cli("whn-intake", "submit", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "cannot read" in result.stderr


async def test_schema_is_the_report_json_schema(cli):
    result = await cli("whn-intake", "schema")
    schema = json.loads(result.stdout)
    assert result.returncode == 0
    assert {"submission_id", "channel", "reporter", "incident"} <= set(schema["properties"])


async def test_details_for_unknown_reference_exits_2(cli):
    result = await cli("whn-intake", "details", "WHN-0000-0000-00", "--text", "hello")
    assert result.returncode == 2 and "unknown reference" in result.stderr
    result = await cli("whn-intake", "details", "nonsense", "--text", "hello")
    assert result.returncode == 2


async def test_temporal_down_exits_1_without_traceback(cli, tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_report()))
    cli.env = {**cli.env, "WHN_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    result = await cli("whn-intake", "submit", str(path))
    assert result.returncode == 1
    assert "Temporal could not be reached" in result.stderr
    assert "Traceback" not in result.stderr
