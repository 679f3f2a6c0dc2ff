"""``whn-admin intake-key add|list|revoke`` and ``whn-intake status`` as subprocesses."""

from __future__ import annotations

import json
import uuid

from starter.intake_keys import authenticate, key_hash


async def test_a_key_is_shown_once_stored_hashed_and_revoked_at_once(cli, db_pool):
    name = f"sohp-{uuid.uuid4().hex[:6]}"
    added = await cli.json("whn-admin", "intake-key", "add", name, "--as", "supervisor-1")
    key = added["key"]
    assert key.startswith("whn_ik_") and added["name"] == name
    assert await authenticate(db_pool, key) == name
    stored = await db_pool.fetch("SELECT key_hash, prefix FROM intake_keys WHERE name = $1", name)
    assert [r["key_hash"] for r in stored] == [key_hash(key)]
    assert key not in json.dumps([dict(r) for r in stored])

    listed = await cli.json("whn-admin", "intake-key", "list", "--as", "supervisor-1")
    mine = [k for k in listed["keys"] if k["name"] == name]
    assert len(mine) == 1 and "key" not in mine[0] and mine[0]["revoked_at"] is None
    assert key not in json.dumps(listed)

    refused = await cli("whn-admin", "intake-key", "add", name, "--as", "handler-1")
    assert refused.returncode == 2 and "supervisor" in refused.stderr

    revoked = await cli.json("whn-admin", "intake-key", "revoke", name, "--as", "supervisor-1")
    assert len(revoked["revoked"]) == 1
    assert await authenticate(db_pool, key) is None
    again = await cli("whn-admin", "intake-key", "revoke", name, "--as", "supervisor-1")
    assert again.returncode == 2 and "no active key" in again.stderr
    audited = await db_pool.fetch(
        "SELECT action, allowed FROM audit_log WHERE action LIKE 'intake-key-%' AND reason LIKE $1",
        f"{name}%",
    )
    assert {(r["action"], r["allowed"]) for r in audited} == {
        ("intake-key-add", True),
        ("intake-key-revoke", True),
    }


async def test_status_gives_the_stage_and_no_personal_data(cli, tmp_path):
    from tests.helpers import EXAMPLES

    data = json.loads((EXAMPLES / "ordinary.json").read_text())
    data["submission_id"] = f"status-{uuid.uuid4()}"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    code = (await cli.json("whn-intake", "submit", str(path)))["receipt_code"]
    status = await cli.json("whn-intake", "status", code)
    assert status["receipt_code"] == code and status["closed"] is False
    assert "Karen" not in json.dumps(status)
    unknown = await cli("whn-intake", "status", "WHN-0000-0000-00")
    assert unknown.returncode == 2 and "unknown reference" in unknown.stderr
