"""What an operator sees: start a fresh stack, run cases down several paths, screenshot the UI.

Run with ``make screenshots``. Needs Debian's Chromium (``apt-get install chromium``).
Writes ``docs/screenshots/cases-awaiting-review.png``, ``cases-all.png`` and
``case-history.png``.
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
import urllib.parse
import uuid
from pathlib import Path

from whn.devstack.temporal_server import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "docs" / "screenshots"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("screenshots: Chromium not found (apt-get install chromium)")


def shoot(url: str, path: Path, *, width: int = 1600, height: int = 1000) -> None:
    """A headless Chromium screenshot of ``url`` once its scripts have run."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=20000",
                f"--screenshot={path}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"screenshots: wrote {path.relative_to(ROOT)}")


def cli(env: dict[str, str], *args: str) -> dict:
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:], "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise SystemExit(f"screenshots: {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def submit(env: dict[str, str], example: str, tmp: Path) -> str:
    data = json.loads((ROOT / "examples" / f"{example}.json").read_text())
    data["submission_id"] = f"shot-{uuid.uuid4()}"
    path = tmp / f"{data['submission_id']}.json"
    path.write_text(json.dumps(data))
    return str(cli(env, "whn-intake", "submit", str(path))["receipt_code"])


def until_stage(env: dict[str, str], ref: str, stage: str) -> dict:
    for _ in range(100):
        shown = cli(env, "whn-admin", "show", ref)
        if shown["stage"] == stage:
            return shown
        time.sleep(0.2)
    raise SystemExit(f"screenshots: {ref} never reached {stage}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="whn-shots-"))
    ui_port, temporal_port, pg_port, smtp_port = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "WHN_DATA_DIR": str(tmp / "whn"),
        "WHN_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "WHN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/whn",
        "WHN_SMTP_PORT": str(smtp_port),
        "WHN_UI_URL": f"http://127.0.0.1:{ui_port}",
    }
    dev = subprocess.Popen(
        [str(BIN / "whn-dev"), "--ui-port", str(ui_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert dev.stdout is not None
        for line in dev.stdout:
            if "whn-dev ready" in line:
                break
        else:
            raise SystemExit("screenshots: whn-dev did not start")
        ui = f"http://127.0.0.1:{ui_port}"

        review = [submit(env, "ordinary", tmp) for _ in range(3)]
        emergency = submit(env, "emergency", tmp)
        for name in ("fraud", "railway", "council", "other-force", "undecidable-area"):
            submit(env, name, tmp)
        for ref in review:
            until_stage(env, ref, "awaiting_review")
        until_stage(env, emergency, "emergency")
        cli(
            env,
            "whn-admin",
            "request-details",
            review[0],
            "--question",
            "Which door was forced?",
            "--as",
            "handler-1",
        )
        cli(env, "whn-intake", "details", review[0], "--text", "The back door.")
        until_stage(env, review[0], "awaiting_review")
        crn = cli(
            env,
            "whn-admin",
            "record-crime",
            review[0],
            "--category",
            "burglary",
            "--as",
            "handler-1",
        )["reference"]
        cli(env, "whn-admin", "imu-investigate", crn, "--as", "imu-1")
        cli(env, "whn-admin", "acknowledge", crn, "--officer", "officer-1", "--as", "officer-1")
        cli(
            env,
            "whn-admin",
            "record-step",
            crn,
            "--step",
            "cctv",
            "--note",
            "Footage requested",
            "--as",
            "officer-1",
        )
        cli(
            env,
            "whn-admin",
            "not-a-crime",
            review[1],
            "--advice",
            "A civil matter.",
            "--agency",
            "Citizens Advice",
            "--as",
            "handler-1",
        )
        time.sleep(2)  # visibility is eventually consistent

        shown = cli(env, "whn-admin", "show", crn)
        query = urllib.parse.quote("CaseStage = 'awaiting_review'")
        shoot(f"{ui}/namespaces/default/workflows?query={query}", OUT / "cases-awaiting-review.png")
        shoot(f"{ui}/namespaces/default/workflows", OUT / "cases-all.png")
        shoot(
            f"{ui}/namespaces/default/workflows/{shown['workflow_id']}",
            OUT / "case-history.png",
            height=1400,
        )
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
