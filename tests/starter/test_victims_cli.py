"""``whn-admin reopen``, ``suspect-event`` and ``set-updates`` as subprocesses: the
reopened case in ``show`` and ``list``, and every bad input refused with exit 2, one line
naming the field or stage, and nothing recorded."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from starter.admin_cli import app
from tests.starter.test_admin_cli import _submit, _until_stage


async def test_reopen_shows_in_show_and_list_once(cli, tmp_path, mail_sink):
    code = await _submit(cli, tmp_path)
    await _until_stage(cli, code, "awaiting_review")
    await cli.json("whn-admin", "not-a-crime", code, "--advice", "Civil.", "--as", "handler-1")
    await _until_stage(cli, code, "not_a_crime")
    for _ in range(50):  # until the closed run has finished (its letter is out)
        done = await cli(
            "whn-admin", "reopen", code, "--reason", "CCTV found.", "--as", "handler-1"
        )
        if "closing" not in done.stderr:
            break
        await asyncio.sleep(0.2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{code} [awaiting_review] Reopened")
    shown = await cli.json("whn-admin", "show", code)
    assert shown["stage"] == "awaiting_review" and shown["closed"] is False
    assert shown["reopenings"] == 1
    assert any(d["superseded"] is False and d["met"] is None for d in shown["deadlines"])
    for _ in range(50):
        listed = await cli.json("whn-admin", "list")
        rows = [c for c in listed["cases"] if c["receipt_code"] == code]
        if rows and rows[0]["stage"] == "awaiting_review":
            break
        await asyncio.sleep(0.2)
    assert len(rows) == 1 and rows[0]["stage"] == "awaiting_review"
    again = await cli("whn-admin", "reopen", code, "--reason", "More CCTV.", "--as", "handler-1")
    assert again.returncode == 2
    assert again.stderr.strip().endswith("(reopen works from not_a_crime, closed_by_imu, closed)")
    assert "while the case is awaiting_review" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["reopen", "WHN-0000-0000-00", "--reason", "  "], "--reason"),
        (["suspect-event", "WHN-0000-0000-00", "--event", "escaped"], "--event"),
        (["set-updates", "WHN-0000-0000-00", "--every", "PT12H"], "--every"),
        (["set-updates", "WHN-0000-0000-00", "--every", "P2Y"], "--every"),
        (["set-updates", "WHN-0000-0000-00", "--every", "weekly"], "--every"),
    ],
)
def test_bad_input_exits_2_naming_the_field_before_anything_is_asked(args, named):
    """Refused before Temporal is even reached (in process; no server is running here).

    The same actions outside their stages: tests/workflows/test_victims.py, through
    ``starter.admin.act`` and ``starter.reopen.reopen``, which this CLI calls.
    """
    result = CliRunner().invoke(
        app, [*args, "--as", "supervisor-1"], env={"WHN_TEMPORAL_ADDRESS": "127.0.0.1:9"}
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
