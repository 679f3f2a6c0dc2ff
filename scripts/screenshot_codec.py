"""The Temporal UI showing a case's payloads decrypted through the codec server.

Starts ``whn-dev`` in a temporary data directory on free ports (it generates a payload
key and runs the codec server the UI uses), submits ``examples/ordinary.json``, closes
the case as not a crime (a closed case's page has no history long-poll, so Chromium's
virtual-time budget runs out and the screenshot is taken), then:

1. checks that Temporal holds the case encrypted: ``temporal workflow show`` without a
   codec finds ``binary/encrypted`` payloads and none of the reporter's details;
2. screenshots the workflow page to ``docs/screenshots/decoded-payload.png``;
3. checks that the same page, as the browser rendered it, shows the reporter's name:
   decoded by the UI through the codec server.

Run: ``.venv/bin/python scripts/screenshot_codec.py``. Needs Debian's Chromium
(``apt-get install chromium``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from whn.devstack.main import READY_LINE
from whn.devstack.temporal_server import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "docs" / "screenshots" / "decoded-payload.png"
REPORTER = "Karen Smith"


def chromium(*args: str, profile: str) -> subprocess.CompletedProcess[str]:
    browser = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    if browser is None:
        raise SystemExit("screenshot_codec: Chromium not found (apt-get install chromium)")
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def tool(env: dict[str, str], *args: str) -> dict:
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:], "--json"], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"screenshot_codec: {' '.join(args)}: {result.stderr.strip()}")
    return dict(json.loads(result.stdout))


def wait_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(900):
        if READY_LINE in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise SystemExit(f"screenshot_codec: whn-dev exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise SystemExit("screenshot_codec: whn-dev not ready after 90 s")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="whn-codec-shot-"))
    ui = f"http://127.0.0.1:{free_port()}"
    temporal = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")} | {
        "WHN_DATA_DIR": str(work / ".whn"),
        "WHN_TEMPORAL_ADDRESS": temporal,
        "WHN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/whn",
        "WHN_SMTP_PORT": str(free_port()),
        "WHN_UI_URL": ui,
        "WHN_CODEC_PORT": str(free_port()),
        "WHN_TASK_QUEUE": "whn-codec-shot",
    }
    log = work / "whn-dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [str(BIN / "whn-dev")], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=work
        )
    try:
        wait_ready(dev, log)
        env["WHN_CODEC_KEY_FILE"] = str(work / ".whn" / "codec-keys.json")

        report = json.loads((ROOT / "examples" / "ordinary.json").read_text())
        report["submission_id"] = f"codec-shot-{uuid.uuid4()}"
        path = work / "report.json"
        path.write_text(json.dumps(report))
        code = tool(env, "whn-intake", "submit", str(path))["receipt_code"]
        for _ in range(200):
            shown = tool(env, "whn-admin", "show", code)
            if shown["stage"] == "awaiting_review":
                break
            time.sleep(0.1)
        tool(
            env,
            "whn-admin",
            "not-a-crime",
            code,
            "--advice",
            "Please contact your insurer.",
            "--as",
            "handler-1",
        )
        workflow_id = shown["workflow_id"]

        raw = subprocess.run(
            [
                *(str(BIN / "temporal"), "workflow", "show", "-w", workflow_id),
                *("--address", temporal, "--output", "json"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "YmluYXJ5L2VuY3J5cHRlZA==" in raw, "no binary/encrypted payload in history"
        for value in (REPORTER, report["reporter"]["email"], report["incident"]["description"]):
            assert value not in raw, f"{value!r} stored in plaintext"
        print("screenshot_codec: history in Temporal is encrypted (binary/encrypted)")

        url = f"{ui}/namespaces/default/workflows/{workflow_id}"
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            chromium(f"--screenshot={OUT}", url, profile=profile)
        with tempfile.TemporaryDirectory() as profile:
            dom = chromium("--dump-dom", url, profile=profile).stdout
        if REPORTER not in dom:
            raise SystemExit("screenshot_codec: the UI did not show the decoded input")
        print(f"screenshot_codec: the UI shows {REPORTER!r}, decoded through the codec server")
        print(f"screenshot_codec: wrote {OUT.relative_to(ROOT)}")
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
