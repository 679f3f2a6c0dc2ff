"""Encryption fails closed at every entry point, and the dev stack's key is found unset.

With no payload key configured, the CLIs, the worker and the starter functions refuse
with one line naming WHN_CODEC_KEYS / WHN_CODEC_KEY_FILE (exit 1, no traceback) and
nothing reaches Temporal. A client with the wrong key, or none, cannot read a case and
never sends an action to it. (The HTTP edge's refusal is in tests/web/.)
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from domain.case import AckEmergency, case_workflow_id, receipt_code_for
from starter import admin, intake
from starter.errors import PayloadKeyError
from tests.conftest import TEST_CODEC_KEYS
from tests.helpers import EXAMPLES, example, until
from tests.starter.conftest import Cli
from whn.codec import CodecKeyError, generate_key
from whn.settings import Settings
from whn.temporal import connect_client


def _without_keys(cli: Cli, data_dir: Path, **extra: str) -> Cli:
    env = {k: v for k, v in cli.env.items() if not k.startswith("WHN_CODEC")}
    return Cli(env | {"WHN_DATA_DIR": str(data_dir)} | extra)


def _refusal(result) -> str:
    # WHN_CODEC_REQUIRED=false asked for plaintext: its warning line is expected, too.
    lines = [ln for ln in result.stderr.splitlines() if "stored in plaintext" not in ln]
    err = "\n".join(lines).strip()
    assert result.returncode == 1, (result.returncode, err)
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


async def _absent(client: Client, workflow_id: str) -> None:
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


def _report_file(tmp_path: Path) -> tuple[Path, str]:
    data = json.loads((EXAMPLES / "ordinary.json").read_text())
    data["submission_id"] = f"closed-{uuid.uuid4()}"
    path = tmp_path / f"{data['submission_id']}.json"
    path.write_text(json.dumps(data))
    return path, receipt_code_for(data["submission_id"])


async def _history_events(client: Client, code: str) -> list[str]:
    history = await client.get_workflow_handle(case_workflow_id(code)).fetch_history()
    return [e.WhichOneof("attributes") or "" for e in history.events]


async def test_every_command_without_a_key_refuses_and_sends_nothing(cli, dev_client, tmp_path):
    path, code = _report_file(tmp_path)
    bare = _without_keys(cli, tmp_path / "no-key-here")

    err = _refusal(await bare("whn-intake", "submit", str(path)))
    assert "WHN_CODEC_KEYS" in err and "WHN_CODEC_KEY_FILE" in err
    await _absent(dev_client, case_workflow_id(code))

    # A case that exists (submitted with the key): a reply and an action are refused too.
    assert (await cli("whn-intake", "submit", str(path))).returncode == 0
    await until(
        lambda: cli.json("whn-admin", "show", code),
        what="case visible",
    )
    before = await _history_events(dev_client, code)
    err = _refusal(await bare("whn-intake", "details", code, "--text", "The back door."))
    assert "WHN_CODEC_KEYS" in err
    err = _refusal(
        await bare("whn-admin", "request-details", code, "--question", "Which?", "--as", "handler-1")
    )
    assert "WHN_CODEC_KEYS" in err
    after = await _history_events(dev_client, code)
    assert not [e for e in after if "signaled" in e or "update" in e], after
    assert len(after) >= len(before)

    # Nor do the worker and the codec server start.
    err = _refusal(await bare("whn-worker"))
    assert "WHN_CODEC_KEYS" in err
    err = _refusal(await Cli(bare.env | {"WHN_CODEC_TOKEN": "t" * 32})("whn-codec-server"))
    assert "WHN_CODEC_KEYS" in err


async def test_starter_functions_refuse_a_client_that_would_write_plaintext(
    dev_server, dev_client, task_queue, tmp_path
):
    plain = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    report = example("ordinary", submission_id=f"plain-{uuid.uuid4()}")
    code = receipt_code_for(report.submission_id)
    with pytest.raises(PayloadKeyError, match="WHN_CODEC_KEYS"):
        await intake.submit(plain, report, task_queue=task_queue)
    with pytest.raises(PayloadKeyError, match="WHN_CODEC_KEYS"):
        await intake.details(plain, code, "text")
    with pytest.raises(PayloadKeyError, match="WHN_CODEC_KEYS"):
        await admin.act(plain, code, AckEmergency(actor="control-1"), database_url=None)
    await _absent(dev_client, case_workflow_id(code))

    # connect_client itself refuses without a key, naming both ways to give one.
    unset = Settings(_env_prefix="WHN_UNSET_", data_dir=tmp_path)
    with pytest.raises(CodecKeyError, match=r"WHN_CODEC_KEYS or WHN_CODEC_KEY_FILE"):
        await connect_client(unset.model_copy(update={"temporal_address": dev_server.address}))


async def test_the_dev_stack_key_is_found_with_nothing_set(cli, dev_client, tmp_path):
    # What whn-dev leaves in a repository: .whn/codec-keys.json (here: the suite's keys).
    (tmp_path / ".whn").mkdir()
    (tmp_path / ".whn" / "codec-keys.json").write_text(TEST_CODEC_KEYS.replace(",", "\n") + "\n")
    env = {k: v for k, v in cli.env.items() if not k.startswith(("WHN_CODEC", "WHN_DATA_DIR"))}
    here = Cli(env, cwd=tmp_path)
    path, code = _report_file(tmp_path)
    result = await here("whn-intake", "submit", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warning: it encrypted
    history = await dev_client.get_workflow_handle(case_workflow_id(code)).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == b"binary/encrypted"
    assert b"Karen" not in history.events[0].SerializeToString()
    view = await until(lambda: here.json("whn-admin", "show", code), what="show")
    assert view["receipt_code"] == code


async def test_a_wrong_key_or_none_cannot_read_a_case_and_applies_nothing(
    cli, dev_client, tmp_path
):
    path, code = _report_file(tmp_path)
    assert (await cli("whn-intake", "submit", str(path))).returncode == 0

    async def reviewed() -> dict | None:
        view = await cli.json("whn-admin", "show", code)
        return view if view["stage"] == "awaiting_review" else None

    await until(reviewed, what="awaiting_review")
    wrong = _without_keys(cli, tmp_path / "none", WHN_CODEC_KEYS=f"other:{generate_key()}")
    plaintext = _without_keys(cli, tmp_path / "none", WHN_CODEC_REQUIRED="false")
    for client in (wrong, plaintext):
        err = _refusal(await client("whn-admin", "show", code))
        assert "could not be decoded" in err and "WHN_CODEC_KEYS" in err
        err = _refusal(
            await client(
                "whn-admin", "request-details", code, "--question", "Which?", "--as", "handler-1"
            )
        )
        assert "could not be decoded" in err
    view = await cli.json("whn-admin", "show", code)
    assert view["stage"] == "awaiting_review"
    assert "details_requested" not in {e["event"] for e in view["timeline"]}
    assert not [e for e in await _history_events(dev_client, code) if "update" in e]

