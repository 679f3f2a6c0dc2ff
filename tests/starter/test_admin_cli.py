"""``whn-admin`` as a subprocess: every Step-1/2 command, wrong stage, wrong role, unknown refs."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

from tests.helpers import EXAMPLES


async def _submit(cli, tmp_path, name="ordinary") -> str:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data["submission_id"] = f"cli-{uuid.uuid4()}"
    path = tmp_path / f"{data['submission_id']}.json"
    path.write_text(json.dumps(data))
    result = await cli.json("whn-intake", "submit", str(path))
    return result["receipt_code"]


async def _until_stage(cli, ref, stage, timeout=20.0):
    for _ in range(int(timeout * 5)):
        result = await cli("whn-admin", "show", ref, "--json")
        if result.returncode == 0 and json.loads(result.stdout)["stage"] == stage:
            return json.loads(result.stdout)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{ref} never reached {stage}")


async def test_show_and_list(cli, tmp_path):
    code = await _submit(cli, tmp_path)
    shown = await _until_stage(cli, code, "awaiting_review")
    for key in (
        "receipt_code",
        "crime_reference",
        "investigation_reference",
        "stage",
        "closed",
        "outcome",
        "redirected_to",
        "team",
        "officer",
        "deadlines",
        "timeline",
        "workflow_id",
    ):
        assert key in shown
    assert shown["closed"] is False
    assert {"name", "due_at", "met"} <= set(shown["deadlines"][0])
    assert {"at", "event", "actor"} <= set(shown["timeline"][0])
    text = await cli("whn-admin", "show", code)
    assert "Deadlines:" in text.stdout and "UI: http" in text.stdout

    for _ in range(50):
        listed = await cli.json("whn-admin", "list", "--stage", "awaiting_review")
        if code in {c["receipt_code"] for c in listed["cases"]}:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("case never listed")
    assert all(c["stage"] == "awaiting_review" for c in listed["cases"])


async def test_details_round_trip(cli, tmp_path, mail_sink):
    code = await _submit(cli, tmp_path)
    await _until_stage(cli, code, "awaiting_review")
    asked = await cli.json(
        "whn-admin",
        "request-details",
        code,
        "--question",
        "What colour was the bike?",
        "--as",
        "handler-1",
    )
    assert asked["stage"] == "awaiting_details"
    await mail_sink.await_for(lambda m: "more information" in m["Subject"] and code in m["Subject"])
    replied = await cli("whn-intake", "details", code, "--text", "Red")
    assert replied.returncode == 0, replied.stderr
    await _until_stage(cli, code, "awaiting_review")


async def test_record_crime_then_lookup_by_crn_and_wrong_stage(cli, tmp_path, mail_sink):
    code = await _submit(cli, tmp_path)
    await _until_stage(cli, code, "awaiting_review")
    recorded = await cli.json(
        "whn-admin", "record-crime", code, "--category", "burglary", "--as", "handler-1"
    )
    crn = recorded["reference"]
    assert re.match(r"^35/\d{5}/\d{2}$", crn)
    assert recorded["stage"] == "with_imu"
    await mail_sink.await_for(lambda m: crn in m["Subject"])
    shown = await cli.json("whn-admin", "show", crn)
    assert shown["receipt_code"] == code and shown["crime_reference"] == crn

    again = await cli("whn-admin", "not-a-crime", crn, "--advice", "x", "--as", "handler-1")
    assert again.returncode == 2
    assert "with_imu" in again.stderr and len(again.stderr.strip().splitlines()) == 1


async def test_record_crime_no_investigation_closes(cli, tmp_path):
    code = await _submit(cli, tmp_path)
    await _until_stage(cli, code, "awaiting_review")
    closed = await cli.json(
        "whn-admin",
        "record-crime",
        code,
        "--category",
        "other-theft",
        "--no-investigation",
        "--outcome",
        "18",
        "--as",
        "handler-1",
    )
    assert closed["stage"] == "closed"
    bad = await cli(
        "whn-admin",
        "record-crime",
        code,
        "--category",
        "x",
        "--no-investigation",
        "--as",
        "handler-1",
    )
    assert bad.returncode == 2


async def test_not_a_crime_and_redirect(cli, tmp_path, mail_sink):
    code = await _submit(cli, tmp_path)
    await _until_stage(cli, code, "awaiting_review")
    done = await cli.json(
        "whn-admin",
        "not-a-crime",
        code,
        "--advice",
        "Speak to the landlord.",
        "--agency",
        "Citizens Advice",
        "--agency",
        "Shelter",
        "--as",
        "handler-1",
    )
    assert done["stage"] == "not_a_crime"
    mail = await mail_sink.await_for(lambda m: m["Subject"] == f"About your report {code}")
    assert "- Shelter" in mail.get_content()

    other = await _submit(cli, tmp_path)
    await _until_stage(cli, other, "awaiting_review")
    moved = await cli.json(
        "whn-admin",
        "redirect",
        other,
        "--agency",
        "Essex Police",
        "--reason",
        "happened in Saffron Walden",
        "--as",
        "handler-1",
    )
    assert moved["stage"] == "redirected"


async def test_emergency_ack(cli, tmp_path):
    code = await _submit(cli, tmp_path, "emergency")
    await _until_stage(cli, code, "emergency")
    wrong = await cli("whn-admin", "ack-emergency", code, "--as", "handler-1")
    assert wrong.returncode == 2 and "control_room" in wrong.stderr
    acked = await cli.json("whn-admin", "ack-emergency", code, "--as", "control-1")
    assert acked["stage"] == "awaiting_review"


async def test_unknown_reference_and_missing_actor(cli, tmp_path):
    for ref in ("WHN-ZZZZ-ZZZZ-ZZ", "35/99999/26", "garbage"):
        result = await cli(
            "whn-admin", "record-crime", ref, "--category", "burglary", "--as", "handler-1"
        )
        assert result.returncode == 2, (ref, result.stderr)
        assert "Traceback" not in result.stderr
    code = await _submit(cli, tmp_path)
    result = await cli("whn-admin", "record-crime", code, "--category", "burglary")
    assert result.returncode == 2 and "--as" in result.stderr
    result = await cli(
        "whn-admin", "record-crime", code, "--category", "burglary", "--as", "nobody-9"
    )
    assert result.returncode == 2 and "unknown staff id" in result.stderr


async def test_postgres_down_for_crn_lookup_exits_1(cli):
    cli.env = {**cli.env, "WHN_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/whn"}
    result = await cli("whn-admin", "show", "35/00001/26")
    assert result.returncode == 1 and "case store could not be reached" in result.stderr
    assert "Traceback" not in result.stderr
