"""Letters owed to a reporter without email: kept sealed for a person to send.

The mail activity writes every letter to the outbox; one to a reporter with no email
address stays there unsent. ``owe_letter`` moves its rendered text into ``owed_letters``
sealed under the payload keys (whn/sealed.py) and blanks the outbox row's body, so the
letter is read only through ``whn-admin show --report`` (audited) and never sits in
plaintext in the case store. ``letter_delivered`` records how it reached the reporter.
Both are idempotent: a retry changes nothing.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity

from domain.effects import LetterDelivered, OweLetter
from whn.codec import Keyring
from whn.sealed import seal


def owed_context(workflow_id: str, purpose: str) -> str:
    """What a sealed owed letter is bound to: its row's identity in owed_letters."""
    return f"{workflow_id}/owed/{purpose}"


_DELIVERED = """UPDATE owed_letters SET delivered_at = $3, delivered_how = $4, delivered_by = $5
    WHERE workflow_id = $1 AND purpose = $2 AND delivered_at IS NULL"""


class OwedLetters:
    """Activities over ``owed_letters``; one instance per worker, sharing a pool."""

    def __init__(self, pool: asyncpg.Pool, *, keyring: Keyring | None) -> None:
        self._pool = pool
        self._keyring = keyring

    @activity.defn
    async def owe_letter(self, owed: OweLetter) -> None:
        """Keep the outbox's rendered letter sealed as owed; blank its plaintext body."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT subject, body FROM notifications WHERE workflow_id = $1 AND purpose = $2"
                " FOR UPDATE",
                owed.workflow_id,
                owed.purpose,
            )
            exists = await conn.fetchval(
                "SELECT 1 FROM owed_letters WHERE workflow_id = $1 AND purpose = $2",
                owed.workflow_id,
                owed.purpose,
            )
            if exists:
                return
            text = f"{row['subject']}\n\n{row['body']}" if row is not None else ""
            key_id, sealed = seal(
                self._keyring, text, context=owed_context(owed.workflow_id, owed.purpose)
            )
            await conn.execute(
                """INSERT INTO owed_letters (workflow_id, purpose, letter, meets, due_at, ways,
                       owed_at, key_id, sealed)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                owed.workflow_id,
                owed.purpose,
                owed.letter,
                owed.meets,
                owed.due_at,
                owed.ways,
                owed.at,
                key_id,
                sealed,
            )
            await conn.execute(
                "UPDATE notifications SET body = '' WHERE workflow_id = $1 AND purpose = $2",
                owed.workflow_id,
                owed.purpose,
            )

    @activity.defn
    async def letter_delivered(self, delivered: LetterDelivered) -> None:
        """Record how an owed letter reached the reporter (the first record stands)."""
        d = delivered
        async with self._pool.acquire() as conn:
            await conn.execute(_DELIVERED, d.workflow_id, d.purpose, d.at, d.how, d.by)
