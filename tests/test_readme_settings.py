"""The README's configuration table names every WHN_* setting whn/settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path

from whn.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _configuration_table() -> set[str]:
    """The variables the table's first column names; ``_SUFFIX`` after a full name means
    the same name with its last part replaced (``WHN_CODEC_OIDC_ISSUER``, ``_AUDIENCE``)."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        base = ""
        for token in re.findall(r"`([A-Z_]+)`", line.split(" | ")[0]):
            if token.startswith("WHN_"):
                named.add(token)
                base = token.rsplit("_", 1)[0]
            elif token.startswith("_") and base:
                named.add(base + token)
    return named


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    settings = {f"WHN_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - _configuration_table()) == []
