"""``python -m whn.migrate``: apply the case store's migrations, then exit.

The one-shot step of a deployment (the ``migrate`` service of ``docker-compose.yml``, a
Kubernetes Job, a release script): it reads ``WHN_DATABASE_URL`` like every other
process, applies the numbered SQL files in ``migrations/`` that the database has not
recorded yet, and seeds nothing unless asked. Safe to run again, and beside a starting
worker (``whn.db.migrate`` holds an advisory lock).

Exit codes: ``0`` done; ``1`` PostgreSQL could not be reached or a migration failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence

import asyncpg

from whn import db
from whn.settings import settings_or_exit

log = logging.getLogger("whn.migrate")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m whn.migrate``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_or_exit("whn.migrate")
    try:
        applied = asyncio.run(
            _run(settings.database_url, seed=args.seed_demo_roster, wait=args.wait)
        )
    except (OSError, asyncpg.PostgresError) as err:
        print(f"whn.migrate: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        sys.exit(1)
    print(f"whn.migrate: {len(applied)} migration(s) applied")
    for name in applied:
        print(f"  {name}")
    if args.seed_demo_roster:
        staff = ", ".join(staff_id for staff_id, _, _ in db.DEMO_ROSTER)
        print(f"whn.migrate: demo roster present ({staff})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m whn.migrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seed-demo-roster",
        action="store_true",
        help="also add the contract's demo staff (control-1, handler-1, ...); demos only",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="keep retrying a refused connection this long (default 30)",
    )
    return parser


async def _run(dsn: str, *, seed: bool, wait: float) -> list[str]:
    # A database container can report healthy a moment before it accepts logins.
    deadline = time.monotonic() + wait
    while True:
        try:
            applied = await db.migrate(dsn)
            break
        except (OSError, asyncpg.CannotConnectNowError) as err:
            if time.monotonic() >= deadline:
                raise
            log.info("database not ready (%s); retrying", err)
            await asyncio.sleep(1.0)
    if seed:
        await db.seed_demo_roster(dsn)
    return applied


if __name__ == "__main__":
    main()
