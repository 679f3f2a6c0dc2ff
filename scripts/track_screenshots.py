"""The reporter's page at each stage of a case: ``make screenshots`` (after the UI's).

Starts a fresh ``whn-dev`` stack (its whn-web included), runs one ordinary report from
receipt to a closed investigation with ``whn-intake``/``whn-admin``, and at each stage
signs in at ``/track`` in headless Chromium (Debian's, through Playwright) and writes
``docs/screenshots/track-*.png``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from playwright.async_api import async_playwright
from screenshots import BIN, CHROMIUM_FLAGS, OUT, ROOT, cli, submit, until_stage

from whn.devstack.temporal_server import free_port


def start(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, str], str]:
    web_port = free_port()
    env = {
        **os.environ,
        "WHN_DATA_DIR": str(tmp / "whn"),
        "WHN_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "WHN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/whn",
        "WHN_SMTP_PORT": str(free_port()),
        "WHN_UI_URL": f"http://127.0.0.1:{free_port()}",
        "WHN_CODEC_PORT": str(free_port()),
        "WHN_WEB_PORT": str(web_port),
    }
    log = tmp / "whn-dev.log"
    with log.open("w") as out:
        ui_port = env["WHN_UI_URL"].rsplit(":", 1)[1]
        dev = subprocess.Popen(
            [str(BIN / "whn-dev"), "--ui-port", ui_port], env=env, stdout=out, stderr=out
        )
    text = ""
    for _ in range(180):
        text = log.read_text()
        if "Then try" in text or dev.poll() is not None:
            break
        time.sleep(0.5)
    if "Then try" not in text:
        dev.kill()
        raise SystemExit(f"track screenshots: whn-dev did not start:\n{text}")
    for line in text.splitlines():
        if line.strip().startswith("export WHN_"):
            name, _, value = line.strip().removeprefix("export ").partition("=")
            env[name] = value
    return dev, env, f"http://127.0.0.1:{web_port}"


async def shots(env: dict[str, str], web: str, tmp: Path) -> None:
    email = json.loads((ROOT / "examples" / "ordinary.json").read_text())["reporter"]["email"]
    code = submit(env, "ordinary", tmp)
    until_stage(env, code, "awaiting_review")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = await browser.new_page(viewport={"width": 1100, "height": 900})

        async def shoot(name: str) -> None:
            await page.screenshot(path=str(OUT / f"track-{name}.png"), full_page=True)
            print(f"screenshots: wrote docs/screenshots/track-{name}.png")

        await page.goto(f"{web}/track")
        await shoot("0-sign-in")
        await page.fill("#receipt_code", code)
        await page.fill("#email", email)
        await page.click("button:has-text('Continue')")
        await shoot("1-awaiting-review")

        cli(
            env,
            "whn-admin",
            "request-details",
            code,
            "--as",
            "handler-1",
            "--question",
            "Which door of the shed was forced, and was it locked?",
        )
        until_stage(env, code, "awaiting_details")
        await page.goto(f"{web}/track/case")
        await shoot("2-awaiting-details")
        await page.fill("#answer", "The side door. It was locked with a padlock.")
        await page.click("button:has-text('Send your answer')")
        until_stage(env, code, "awaiting_review")

        crn = cli(
            env, "whn-admin", "record-crime", code, "--category", "burglary", "--as", "handler-1"
        )["reference"]
        until_stage(env, code, "with_imu")
        await page.goto(f"{web}/track/case")
        await shoot("3-with-imu")
        cli(env, "whn-admin", "imu-investigate", crn, "--as", "imu-1")
        cli(env, "whn-admin", "acknowledge", crn, "--officer", "officer-1", "--as", "officer-1")
        until_stage(env, code, "investigating")
        await page.goto(f"{web}/track/case")
        await shoot("4-investigating")
        cli(
            env,
            "whn-admin",
            "close",
            crn,
            "--outcome",
            "18",
            "--note",
            "No further leads.",
            "--as",
            "officer-1",
        )
        until_stage(env, code, "closed")
        await page.goto(f"{web}/track/case")
        await shoot("5-closed")
        await browser.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="whn-track-shots-"))
    dev, env, web = start(tmp)
    try:
        asyncio.run(shots(env, web, tmp))
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
