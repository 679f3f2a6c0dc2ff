"""The supervisor's morning email: run once a day by a Temporal Schedule.

``whn-admin summary-schedule`` creates the schedule (07:00 in the force's time by
default). Each run reads the compliance projection in an activity (overdue now, the
promises due the day before and how many were missed) and sends the supervisor one
email through the outbox, once per day however often the run is repeated.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.compliance import Summaries
    from activities.mail import Mailer
    from domain.compliance import DailySummary, SummaryInput, SummaryRequest
    from domain.effects import Notify

from workflows.base import DB_RETRY
from workflows.letters import MAIL_RETRY

SUMMARY_WORKFLOW_ID = "supervisor-summary"


@workflow.defn(name="SupervisorSummary")
class SupervisorSummaryWorkflow:
    """One morning's summary for the duty supervisor."""

    @workflow.run
    async def run(self, inp: SummaryInput) -> DailySummary:
        now = workflow.now()
        day = inp.day or (now - timedelta(days=1)).date()
        summary: DailySummary = await workflow.execute_activity_method(
            Summaries.daily_summary,
            SummaryRequest(day=day, as_of=now),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=DB_RETRY,
            summary=f"Figures for {day}",
        )
        await workflow.execute_activity_method(
            Mailer.notify,
            Notify(
                workflow_id=f"{SUMMARY_WORKFLOW_ID}-{day}",
                purpose=f"daily-summary-{day}",
                audience="supervisor",
                letter="supervisor_daily_summary",
                context=summary.context(),
            ),
            start_to_close_timeout=timedelta(minutes=3),
            retry_policy=MAIL_RETRY,
            summary="Email: the supervisor's summary",
        )
        return summary
