"""Vendor the GOV.UK Design System's styles into the package: ``web/static/govuk/``.

``make web-assets`` (part of ``make test``, ``make run`` and the install) runs this:
``npm ci`` of ``web/assets/package.json`` (govuk-frontend pinned there and in its
package-lock.json, with the registry's integrity hash), then copies the compiled
stylesheet and the images the page uses into ``web/static/govuk/``, served by whn-web
at ``/static/govuk/``. Nothing is fetched from a CDN at run time. The built files are
not committed (``.gitignore``); a fresh clone builds them here, and a second run with
the same version does nothing. Where npm is missing (the Docker image's build stage),
the same tarball is fetched from the npm registry (``NPM_CONFIG_REGISTRY``, default
registry.npmjs.org) and checked against the lock file's integrity hash before use.

The stylesheet is changed in two ways on the way: its ``/assets/`` URLs point at
``/static/govuk/assets/``, and its ``@font-face`` rules are dropped, because the GDS
Transport typeface is licensed for GOV.UK services only; the Design System's stated
fallback for other services is Arial, which the same font stacks name next.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "web" / "assets"
OUT = ROOT / "web" / "static" / "govuk"
IMAGES = ("favicon.ico", "favicon.svg", "govuk-crest.svg")
_FONT_FACE = re.compile(r"@font-face\{[^}]*\}")


def pinned() -> str:
    return str(json.loads((ASSETS / "package.json").read_text())["dependencies"]["govuk-frontend"])


def built() -> bool:
    stamp = OUT / "VERSION"
    return stamp.is_file() and stamp.read_text().strip() == pinned()


def fetch() -> None:
    """Without npm: the locked tarball from the registry, checked, into node_modules."""
    locked = json.loads((ASSETS / "package-lock.json").read_text())
    entry = locked["packages"]["node_modules/govuk-frontend"]
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/").rstrip("/")
    url = f"{registry}/govuk-frontend/-/govuk-frontend-{entry['version']}.tgz"
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    algorithm, _, expected = entry["integrity"].partition("-")
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        raise SystemExit(f"vendor_govuk: {url} does not match the lock file's integrity hash")
    target = ASSETS / "node_modules" / "govuk-frontend"
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = Path(member.name)
            if not member.isfile() or name.parts[0] != "package" or ".." in name.parts:
                continue
            out = target.joinpath(*name.parts[1:])
            out.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            out.write_bytes(source.read())


def build() -> None:
    npm = shutil.which("npm")
    if npm is None or os.environ.get("WHN_VENDOR_WITHOUT_NPM"):
        fetch()
    else:
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=ASSETS,
            check=True,
        )
    dist = ASSETS / "node_modules" / "govuk-frontend" / "dist" / "govuk"
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "assets" / "images").mkdir(parents=True)
    css = (dist / "govuk-frontend.min.css").read_text()
    css = _FONT_FACE.sub("", css).replace("/assets/", "/static/govuk/assets/")
    css = re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", css)
    (OUT / "govuk-frontend.min.css").write_text(css)
    for name in IMAGES:
        shutil.copy2(dist / "assets" / "images" / name, OUT / "assets" / "images" / name)
    # MIT licence (its package.json); the README names it.
    (OUT / "VERSION").write_text(pinned() + "\n")
    shutil.rmtree(ASSETS / "node_modules", ignore_errors=True)


def main() -> None:
    if built():
        return
    build()
    print(f"vendor_govuk: govuk-frontend {pinned()} -> {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
