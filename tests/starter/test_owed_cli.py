"""A reporter with no email through ``whn-admin`` on real servers: the queue lists the
letter a person must send, ``letter-sent`` clears it and meets its deadline, ``show``
says how each promise reached the reporter; refusals exit 2 with one line."""

from __future__ import annotations

from tests.helpers import until
from tests.starter.test_admin_cli import _submit, _until_stage


async def test_an_owed_letter_from_the_queue_to_the_post(cli, tmp_path):
    code = await _submit(cli, tmp_path, "phone")
    shown = await _until_stage(cli, code, "awaiting_review")
    receipt = next(d for d in shown["deadlines"] if d["name"] == "receipt")
    assert receipt["met"] is True  # the call handler gave the code on the call
    recorded = await cli(
        "whn-admin", "record-crime", code, "--category", "burglary", "--as", "handler-1"
    )
    assert recorded.returncode == 0, recorded.stderr

    async def owed_row():
        queued = await cli.json("whn-admin", "queue", "--as", "handler-1", "--limit", "10000")
        return next((c for c in queued["letters"] if c["receipt_code"] == code), None)

    row = await until(owed_row, within=20, what="the CRN letter on the queue")
    assert (row["purpose"], row["meets"], row["ways"]) == (
        "crime-recorded",
        "crn_or_explanation",
        ["post", "phone"],
    )
    text = await cli("whn-admin", "queue", "--as", "handler-1", "--limit", "10000")
    assert "letter(s) to send to reporters without email" in text.stdout
    assert "letter-sent --letter crime-recorded" in text.stdout
    # Not in an officer's queue: the call handlers' desk sends them.
    officer = await cli.json("whn-admin", "queue", "--as", "officer-1")
    assert officer["letters"] == []

    filed = await cli("whn-admin", "show", code, "--report", "--as", "handler-1")
    assert "Letter crime-recorded (OWED: send by post or phone)" in filed.stdout
    assert "postal address: 4 Station Road, Ely, CB7 4BS" in filed.stdout
    plain = await cli("whn-admin", "show", code)
    assert "crime-recorded" in plain.stdout and "OWED: send by post or phone" in plain.stdout
    assert "Station Road, Ely, CB7" not in plain.stdout

    sent = await cli("whn-admin", "letter-sent", code, "--how", "post", "--as", "handler-1")
    assert sent.returncode == 0, sent.stderr
    assert "recorded as posted; crn_or_explanation met on time" in sent.stdout
    assert await owed_row() is None
    shown = await cli.json("whn-admin", "show", code)
    crn = next(d for d in shown["deadlines"] if d["name"] == "crn_or_explanation")
    assert crn["met"] is True
    how = {o["purpose"]: (o["how"], o["by"]) for o in shown["owed_letters"]}
    assert how == {"receipt": ("phone", "intake"), "crime-recorded": ("post", "handler-1")}

    again = await cli("whn-admin", "letter-sent", code, "--how", "post", "--as", "handler-1")
    assert again.returncode == 2 and "no letter is owed" in again.stderr
    bad = await cli("whn-admin", "letter-sent", code, "--how", "pigeon", "--as", "handler-1")
    assert bad.returncode == 2 and "--how" in bad.stderr
    unknown = await cli(
        "whn-admin", "letter-sent", "WHN-0000-0000-00", "--how", "post", "--as", "handler-1"
    )
    assert unknown.returncode == 2 and "unknown reference" in unknown.stderr
