"""A handler's morning with ``whn-admin`` on real servers: the queue, a claim, the case
file (``show --report``, its read audited), the action; and claims' bad input."""

from __future__ import annotations

import json

from tests.helpers import until
from tests.starter.test_admin_cli import _submit, _until_stage


async def test_a_handlers_morning(cli, tmp_path, db_pool):
    await db_pool.execute(
        "INSERT INTO staff (staff_id, name, roles) VALUES ('handler-2', 'Second Handler',"
        " ARRAY['call_handler']) ON CONFLICT (staff_id) DO NOTHING"
    )
    code = await _submit(cli, tmp_path)
    redirected = await _submit(cli, tmp_path, "fraud")
    await _until_stage(cli, code, "awaiting_review")

    # The queue: what waits for a call handler, most urgent first.
    queued = await cli.json("whn-admin", "queue", "--as", "handler-1", "--limit", "10000")
    row = next(c for c in queued["cases"] if c["receipt_code"] == code)
    assert row["next_action"] == "review" and row["stage"] == "awaiting_review"
    assert row["due_at"] is not None and row["band"] in ("today", "later")
    assert row["claimed_by"] is None

    # Claim it; a second handler is told who holds it.
    claimed = await cli("whn-admin", "claim", code, "--as", "handler-1")
    assert claimed.returncode == 0 and "handler-1 holds the case" in claimed.stdout, claimed
    taken = await cli("whn-admin", "claim", code, "--as", "handler-2")
    assert taken.returncode == 2 and "held by handler-1" in taken.stderr
    mine = await cli.json("whn-admin", "queue", "--mine", "--as", "handler-1")
    assert [c["claimed_by"] for c in mine["cases"] if c["receipt_code"] == code] == ["handler-1"]

    # Ask, get the reply, read it in the case file.
    asked = await cli(
        "whn-admin",
        "request-details",
        code,
        "--question",
        "Which door was forced?",
        "--as",
        "handler-1",
    )
    assert asked.returncode == 0, asked.stderr
    replied = await cli("whn-intake", "details", code, "--text", "The back door.")
    assert replied.returncode == 0, replied.stderr

    async def the_reply():
        shown = await cli.json("whn-admin", "show", code, "--report", "--as", "handler-1")
        details = shown["report"]["details"]
        return shown if details and details[0]["replies"] else None

    shown = await until(the_reply, within=20, what="the reply in the case file")
    (asked_row,) = shown["report"]["details"]
    assert asked_row["question"] == "Which door was forced?"
    assert asked_row["asked_by"] == "handler-1"
    assert [r["text"] for r in asked_row["replies"]] == ["The back door."]
    assert shown["report"]["as_given"]["reporter"]["name"] == "Karen Smith"
    assert shown["claimed_by"] == "handler-1"
    text = await cli("whn-admin", "show", code, "--report", "--as", "handler-1")
    assert "Which door was forced?" in text.stdout and "The back door." in text.stdout
    assert "Karen Smith" in text.stdout and "held by: handler-1" in text.stdout

    plain = await cli("whn-admin", "show", code)
    assert plain.returncode == 0
    assert "The back door." not in plain.stdout and "Karen Smith" not in plain.stdout
    stranger = await cli("whn-admin", "show", code, "--report", "--as", "nobody")
    assert stranger.returncode == 2 and "unknown staff id" in stranger.stderr

    audit = await db_pool.fetch(
        "SELECT actor, allowed FROM audit_log WHERE workflow_id = $1 AND action = 'show-report'"
        " ORDER BY id",
        f"case-{code}",
    )
    reads = [(a["actor"], a["allowed"]) for a in audit]
    assert ("handler-1", True) in reads and reads[-1] == ("nobody", False)
    sealed = await db_pool.fetch(
        "SELECT sealed FROM case_notes WHERE workflow_id = $1", f"case-{code}"
    )
    assert len(sealed) == 2 and all(b"door" not in bytes(r["sealed"]) for r in sealed)
    events = await db_pool.fetch(
        "SELECT detail FROM case_events WHERE workflow_id = $1", f"case-{code}"
    )
    assert "back door" not in json.dumps([e["detail"] for e in events])

    # Bad input: exit 2, one line, nothing changes.
    for args, why in (
        (("reassign", code, "--to", "nobody-9", "--as", "supervisor-1"), ("unknown staff id",)),
        (("reassign", code, "--to", "officer-1", "--as", "supervisor-1"), ("needs call_handler",)),
        (("claim", "WHN-0000-0000-00", "--as", "handler-1"), ("unknown reference",)),
        # Finished (closed), or still sending its letters (the stage names it).
        (("claim", redirected, "--as", "handler-1"), ("is closed", "case is redirected")),
    ):
        result = await cli("whn-admin", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert any(w in result.stderr for w in why), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr

    # A supervisor hands it on; the new holder acts.
    moved = await cli("whn-admin", "reassign", code, "--to", "handler-2", "--as", "supervisor-1")
    assert moved.returncode == 0, moved.stderr
    acted = await cli.json(
        "whn-admin", "record-crime", code, "--category", "burglary", "--as", "handler-2"
    )
    assert acted["stage"] == "with_imu"
    final = await cli.json("whn-admin", "show", code)
    assert final["claimed_by"] is None  # with the IMU now: nobody holds it
    assert [
        (e["event"], e["actor"])
        for e in final["timeline"]
        if e["event"] in ("claimed", "reassigned", "released")
    ] == [("claimed", "handler-1"), ("reassigned", "supervisor-1"), ("released", "system")]
