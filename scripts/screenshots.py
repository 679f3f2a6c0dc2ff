"""What an operator sees: start a fresh stack, run cases down several paths, screenshot the UI.

Run with ``make screenshots``. Needs Debian's Chromium (``apt-get install chromium``).
Writes ``docs/screenshots/cases-awaiting-review.png``, ``cases-all.png`` and
``case-history.png``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from whn.devstack.chromium import HEADLESS_FLAGS
from whn.devstack.temporal_server import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "docs" / "screenshots"


# The tests' headless flags, scrollbars hidden for the pictures.
CHROMIUM_FLAGS = [*HEADLESS_FLAGS, "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("screenshots: Chromium not found (apt-get install chromium)")


def shoot(
    url: str, path: Path, *, width: int = 1600, height: int = 1000, settle: float = 6.0
) -> None:
    """Screenshot ``url`` in headless Chromium after ``settle`` seconds of real time.

    Driven over the DevTools protocol rather than ``--screenshot``: the UI long-polls a
    workflow's history, so Chromium's virtual-time budget never runs out on that page.
    """
    asyncio.run(_shoot(url, path, width=width, height=height, settle=settle))
    print(f"screenshots: wrote {path.relative_to(ROOT)}")


async def _shoot(url: str, path: Path, *, width: int, height: int, settle: float) -> None:
    import websockets

    port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            target = None
            for _ in range(100):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                        pages = [t for t in json.load(r) if t["type"] == "page"]
                    if pages:
                        target = pages[0]["webSocketDebuggerUrl"]
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.1)
            if target is None:
                raise SystemExit("screenshots: Chromium did not start")
            async with websockets.connect(target, max_size=64 * 1024 * 1024) as ws:
                ids = iter(range(1, 1_000_000))

                async def call(method: str, **params: object) -> dict:
                    number = next(ids)
                    await ws.send(json.dumps({"id": number, "method": method, "params": params}))
                    while True:
                        reply = json.loads(await ws.recv())
                        if reply.get("id") == number:
                            return dict(reply.get("result", {}))

                await call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                await call("Page.navigate", url=url)
                await asyncio.sleep(settle)
                shot = await call("Page.captureScreenshot", format="png")
                path.write_bytes(base64.b64decode(shot["data"]))
        finally:
            browser.terminate()
            browser.wait(timeout=30)


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
        "WHN_CODEC_PORT": str(free_port()),
    }
    log = tmp / "whn-dev.log"
    with log.open("w") as out:
        dev = subprocess.Popen(
            [str(BIN / "whn-dev"), "--ui-port", str(ui_port)], env=env, stdout=out, stderr=out
        )
    try:
        text = ""
        for _ in range(120):
            text = log.read_text()
            if "Then try" in text or dev.poll() is not None:
                break
            time.sleep(0.5)
        if "Then try" not in text:
            raise SystemExit(f"screenshots: whn-dev did not start:\n{text}")
        for line in text.splitlines():
            if line.strip().startswith("export WHN_"):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                env[name] = value  # the stack's own settings, e.g. its payload key file
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
        if os.environ.get("WHN_KEEP_SCREENSHOT_STACK"):
            print(f"screenshots: stack data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
