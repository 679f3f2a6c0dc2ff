"""Hand-off of a case to its team: the team's work queue, and the team's own system if any.

The queue row is written first, in our database, so a case is on the team's list even
while the team's system is down; the webhook is retried by the workflow's retry policy.
"""

from __future__ import annotations

import asyncpg
import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.effects import Handoff
from domain.terms import check_team
from whn.settings import Settings


class TeamHandoff:
    """Activities that deliver cases to teams."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._webhooks = settings.team_webhooks

    @activity.defn
    async def hand_off(self, handoff: Handoff) -> str:
        """Queue the case for the team and notify the team's system; returns how it went."""
        try:
            check_team(handoff.team)
        except ValueError as err:
            raise ApplicationError(str(err), type="UnknownTeam", non_retryable=True) from None
        async with self._pool.acquire() as conn:
            delivered = await conn.fetchval(
                """INSERT INTO team_queue (workflow_id, team, attempt_key, investigation_reference,
                       crime_reference, category, priority, acknowledged_by, acknowledged_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                           CASE WHEN $8::text IS NULL THEN NULL ELSE now() END)
                   ON CONFLICT (workflow_id, attempt_key)
                   DO UPDATE SET team = EXCLUDED.team
                   RETURNING delivered_at""",
                handoff.workflow_id,
                handoff.team,
                handoff.attempt_key,
                handoff.investigation_reference,
                handoff.crime_reference,
                handoff.category,
                handoff.priority,
                handoff.acknowledged_by,
            )
        if delivered is not None:
            return "already delivered"
        url = self._webhooks.get(handoff.team)
        if url:
            # No personal data leaves in the webhook: the team reads the case by reference.
            payload = {
                "investigation_reference": handoff.investigation_reference,
                "crime_reference": handoff.crime_reference,
                "category": handoff.category,
                "priority": handoff.priority,
                "team": handoff.team,
            }
            async with httpx.AsyncClient(timeout=10) as http:
                try:
                    response = await http.post(
                        url, json=payload, headers={"Idempotency-Key": handoff.attempt_key}
                    )
                except httpx.HTTPError as err:
                    raise ApplicationError(
                        f"team system for {handoff.team} unreachable: {type(err).__name__}",
                        type="TeamSystemDown",
                    ) from None
            if response.status_code >= 500 or response.status_code == 429:
                raise ApplicationError(
                    f"team system for {handoff.team} answered {response.status_code}",
                    type="TeamSystemDown",
                )
            if response.status_code >= 400:
                raise ApplicationError(
                    f"team system for {handoff.team} refused the case ({response.status_code})",
                    type="TeamSystemRefused",
                    non_retryable=True,
                )
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE team_queue SET delivered_at = now()
                   WHERE workflow_id = $1 AND attempt_key = $2""",
                handoff.workflow_id,
                handoff.attempt_key,
            )
        return "delivered to team system" if url else "queued"

    @activity.defn
    async def mark_acknowledged(self, handoff_key: tuple[str, str, str]) -> None:
        """Record on the team's queue that an officer took the case."""
        async with self._pool.acquire() as conn:
            await conn.execute(ACKNOWLEDGED_SQL, *handoff_key)


# The queue entry of hand-off $2 taken by officer $3 (once: a retry changes nothing).
# ``CaseStore.commit`` runs it too (patch acknowledged-in-commit).
ACKNOWLEDGED_SQL = """UPDATE team_queue SET acknowledged_at = now(), acknowledged_by = $3
    WHERE workflow_id = $1 AND attempt_key = $2 AND acknowledged_at IS NULL"""
