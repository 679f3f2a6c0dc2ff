"""Debian's headless Chromium as the browser tests and the screenshot scripts run it.

Never ``playwright install`` (it downloads, and this machine has no internet): ``make
chromium`` installs Debian's package when it is missing.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"

# On a machine with no network: without the background-networking flags Chromium keeps
# trying (and failing) to reach Google's hosts.
HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
