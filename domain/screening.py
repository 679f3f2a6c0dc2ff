"""The result of the Step-1 check of a report."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from domain.agency import AgencyDecision
from domain.triage import Triage


class Screening(BaseModel):
    """Emergency triage and the right agency, as decided by the screening activity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    triage: Triage
    agency: AgencyDecision
