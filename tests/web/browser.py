"""One headless Chromium for the session (Debian's /usr/bin/chromium, driven by Playwright;
never ``playwright install``), and axe-core on a page.

``make test`` installs Chromium when it is missing (``make chromium``) and builds the
GOV.UK assets (``make web-assets``); run alone, the fixture builds the assets itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

from whn.devstack.chromium import CHROMIUM, HEADLESS_FLAGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).is_file(), "Debian's chromium is missing: make chromium"
    vendor = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "vendor_govuk.py")
    )
    assert await vendor.wait() == 0, "scripts/vendor_govuk.py failed"
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=HEADLESS_FLAGS)
        yield chromium
        await chromium.close()


async def serious(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    results = await Axe().run(page)
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
