"""Where the project's real data is: ``../shared/data`` beside the checkout (its README).

The committed postcode table is built from it (``scripts/build_postcode_table.py``) and
checked against it (``tests/domain/test_postcodes.py``, ``bench/postcodes.py``); nothing
reads it at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shared_data() -> Path:
    """``WHN_SHARED_DATA`` if set, else ``../shared/data`` beside the checkout, else this
    machine's copy (for a clone made elsewhere, e.g. under /tmp); the first that exists,
    or ``../shared/data`` (so a missing copy names where it was looked for)."""
    beside = ROOT.parent / "shared" / "data"
    given = os.environ.get("WHN_SHARED_DATA")
    for place in (Path(given) if given else None, beside, Path("/work/shared/data")):
        if place is not None and place.is_dir():
            return place
    return beside
