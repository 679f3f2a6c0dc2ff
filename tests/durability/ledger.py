"""What the world holds for a set of cases: emails in the sink, outbox rows, references.

The database and the sink are shared with the rest of the session, so everything here
is scoped to the workflow ids a test started.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default
from typing import Any

import asyncpg

from domain.references import parse_crime_reference, parse_investigation_reference
from whn.devstack.mailsink import MailSink

# Events a case records at most once whatever happens to the processes running it.
ONCE = ("crime_recorded", "investigation_opened", "stage:with_imu", "stage:closed_by_imu")


@dataclass
class Ledger:
    emails: Counter[tuple[str, str]] = field(default_factory=Counter)
    message_ids: Counter[str] = field(default_factory=Counter)
    outbox: dict[tuple[str, str], asyncpg.Record] = field(default_factory=dict)
    references: Counter[tuple[str, str]] = field(default_factory=Counter)
    reference_of: dict[tuple[str, str], str] = field(default_factory=dict)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)

    def twice(self) -> dict[str, Any]:
        """Everything recorded more than once; empty when nothing was."""
        found = {
            "emails": [k for k, n in self.emails.items() if n > 1],
            "message_ids": [k for k, n in self.message_ids.items() if n > 1],
            "references": [k for k, n in self.references.items() if n > 1],
            "events": [k for k, n in self.events.items() if n > 1 and k[1] in ONCE],
        }
        return {k: v for k, v in found.items() if v}

    def purposes(self, workflow_id: str) -> set[str]:
        return {p for (w, p) in self.emails if w == workflow_id}


def sink_headers(mail_sink: MailSink, workflow_ids: set[str]) -> list[Any]:
    parser = BytesHeaderParser(policy=default)
    found = []
    for path in mail_sink.paths():
        with path.open("rb") as f:
            headers = parser.parse(f)
        if headers["X-WHN-Case"] in workflow_ids:
            found.append(headers)
    return found


async def ledger(pool: asyncpg.Pool, mail_sink: MailSink, workflow_ids: list[str]) -> Ledger:
    ids = set(workflow_ids)
    book = Ledger()
    for headers in sink_headers(mail_sink, ids):
        book.emails[(headers["X-WHN-Case"], headers["X-WHN-Purpose"])] += 1
        book.message_ids[headers["Message-ID"]] += 1
    rows = await pool.fetch(
        """SELECT workflow_id, purpose, sent_at, attempts, last_error FROM notifications
           WHERE workflow_id = ANY($1)""",
        list(ids),
    )
    book.outbox = {(r["workflow_id"], r["purpose"]): r for r in rows}
    for r in await pool.fetch(
        "SELECT workflow_id, kind, reference FROM case_references WHERE workflow_id = ANY($1)",
        list(ids),
    ):
        book.references[(r["workflow_id"], r["kind"])] += 1
        book.reference_of[(r["workflow_id"], r["kind"])] = r["reference"]
    for r in await pool.fetch(
        "SELECT workflow_id, event FROM case_events WHERE workflow_id = ANY($1)", list(ids)
    ):
        book.events[(r["workflow_id"], r["event"])] += 1
    return book


async def counter(pool: asyncpg.Pool, kind: str, year: int) -> int:
    """The reference counter's value, creating its row so it can be locked."""
    await pool.execute(
        "INSERT INTO reference_counters (kind, year, value) VALUES ($1, $2, 0)"
        " ON CONFLICT (kind, year) DO NOTHING",
        kind,
        year,
    )
    return int(
        await pool.fetchval(
            "SELECT value FROM reference_counters WHERE kind = $1 AND year = $2", kind, year
        )
    )


def sequence(reference: str) -> int:
    if reference.startswith("INV-"):
        return parse_investigation_reference(reference).sequence
    return parse_crime_reference(reference).sequence


def assert_gapless(book: Ledger, kind: str, before: int, after: int) -> None:
    """The counter moved once per case, and the cases hold exactly the numbers it gave out."""
    issued = sorted(sequence(ref) for (_, k), ref in book.reference_of.items() if k == kind)
    assert issued == list(range(before + 1, after + 1)), (kind, before, after, issued)
