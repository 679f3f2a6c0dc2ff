"""Staff actions: one model per action, and each model carries its rule.

A rule (``ActionRule``) is the action's name (the ``whn-admin`` command and the name in
``audit_log``; the workflow's update is the same name with underscores), the roles that
may take it (a supervisor may always) and the stages it is allowed in. Everything that
needs one of these reads it from the model: the workflow's validator and its
authorisation step (``workflows.acting``), the roster check (``activities.store``), the
admin functions (``starter.admin``) and the CLI (``starter.admin_cli``). Rules about an
action's own fields (an outcome only with ``no_investigation``, a known team) are
validated by the model, so no caller can send, and no workflow can accept, an action
that breaks them.

Adding an action: a model here with its ``rule``; its handler in the step file
(``@staff_action(Model)``, see ``workflows``); its ``whn-admin`` command; its letter in
``domain.letters``. Tightening a model's rule later makes cases that took the action
under the old rule fail to replay (the update's input no longer validates): loosen
freely, tighten only with a new model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from domain.terms import ImuCloseReason, InvestigationStep, Message, Role, Stage, check_team


@dataclass(frozen=True)
class ActionRule:
    """Who may take an action and when: the one place an action is spelled."""

    name: str
    roles: frozenset[Role]
    stages: frozenset[Stage]

    def __init__(self, name: str, *, roles: Iterable[Role], stages: Iterable[Stage]) -> None:
        object.__setattr__(self, "name", name)
        # Supervisors may act at every step.
        object.__setattr__(self, "roles", frozenset({*roles, Role.SUPERVISOR}))
        object.__setattr__(self, "stages", frozenset(stages))

    @property
    def update_name(self) -> str:
        """The workflow update's name (Python names cannot hold a hyphen)."""
        return self.name.replace("-", "_")

    def allows(self, stage: Stage) -> bool:
        return stage in self.stages

    def wrong_stage(self, stage: Stage) -> str:
        """The refusal a call handler reads when the stage does not allow the action."""
        allowed = ", ".join(sorted(self.stages))
        return f"{self.name} is not allowed while the case is {stage.value} (allowed in: {allowed})"

    def wrong_role(self, actor: str, has: Iterable[str]) -> str:
        needed = " or ".join(sorted(self.roles))
        return f"{self.name} needs the role {needed}; {actor} has " + (", ".join(has) or "no role")


_REVIEW = (Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS)


_BY_NAME: dict[str, type[StaffAction]] = {}


class StaffAction(Message):
    """Fields every staff action carries: who acts. Subclasses set ``rule``."""

    rule: ClassVar[ActionRule]

    actor: str = Field(min_length=1, max_length=64)
    # Set by the admin client for a supervisor: acting on a case someone else holds. The
    # roster check (CaseStore.authorise) refuses it to anyone who is not a supervisor.
    override_claim: bool = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        rule = cls.__dict__.get("rule")
        if rule is None:
            raise TypeError(f"{cls.__name__} needs a rule: ActionRule(...)")
        if rule.name in _BY_NAME:
            raise TypeError(f"two actions named {rule.name!r}")
        _BY_NAME[rule.name] = cls


def staff_actions() -> dict[str, type[StaffAction]]:
    """Every staff action by name, in the order they are defined."""
    return dict(_BY_NAME)


def action_rule(name: str) -> ActionRule:
    """The rule of the action called ``name`` (KeyError for an unknown one)."""
    return _BY_NAME[name].rule


class AckEmergency(StaffAction):
    """The control room confirms it has taken an emergency escalation."""

    rule = ActionRule("ack-emergency", roles={Role.CONTROL_ROOM}, stages={Stage.EMERGENCY})


class Redirect(StaffAction):
    """Send the report to another agency; the reporter is told."""

    rule = ActionRule("redirect", roles={Role.CALL_HANDLER}, stages={Stage.EMERGENCY, *_REVIEW})

    agency: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2_000)


class RequestDetails(StaffAction):
    """Ask the reporter a question; the case waits for the reply."""

    rule = ActionRule("request-details", roles={Role.CALL_HANDLER}, stages=_REVIEW)

    question: str = Field(min_length=1, max_length=4_000)


class RecordCrime(StaffAction):
    """Record the crime (a CRN is issued); to the IMU, or closed with an outcome."""

    rule = ActionRule("record-crime", roles={Role.CALL_HANDLER}, stages=_REVIEW)

    category: str = Field(min_length=1, max_length=64)
    no_investigation: bool = False
    outcome: int | None = Field(default=None, ge=1, le=22, validate_default=True)

    @field_validator("outcome")
    @classmethod
    def _outcome_only_when_closing(cls, outcome: int | None, info: ValidationInfo) -> int | None:
        closing = bool(info.data.get("no_investigation"))
        if closing and outcome is None:
            raise ValueError("needed with no-investigation (a Home Office outcome type 1-22)")
        if outcome is not None and not closing:
            raise ValueError("only given with no-investigation")
        return outcome


class NotACrime(StaffAction):
    """Close as not a crime; the reporter gets the advice and agencies."""

    rule = ActionRule("not-a-crime", roles={Role.CALL_HANDLER}, stages=_REVIEW)

    advice: str = Field(min_length=1, max_length=4_000)
    agencies: list[str] = Field(default_factory=list, max_length=20)


class ImuClose(StaffAction):
    """The IMU closes the case for one of four reasons; the victim is told."""

    rule = ActionRule("imu-close", roles={Role.IMU}, stages={Stage.WITH_IMU})

    reason: ImuCloseReason


class ImuInvestigate(StaffAction):
    """The IMU opens an investigation; the case is allocated to a team."""

    rule = ActionRule("imu-investigate", roles={Role.IMU}, stages={Stage.WITH_IMU})


class Allocate(StaffAction):
    """A supervisor moves the case to another team."""

    rule = ActionRule("allocate", roles=(), stages={Stage.ALLOCATED, Stage.INVESTIGATING})

    team: str = Field(min_length=1, max_length=64)

    @field_validator("team")
    @classmethod
    def _known_team(cls, team: str) -> str:
        return check_team(team)


class Acknowledge(StaffAction):
    """The officer takes the case."""

    rule = ActionRule("acknowledge", roles={Role.OFFICER}, stages={Stage.ALLOCATED})

    officer: str = Field(min_length=1, max_length=64)


class RecordStep(StaffAction):
    """An investigation step recorded as done."""

    rule = ActionRule(
        "record-step",
        roles={Role.OFFICER, Role.IMU},
        stages={Stage.ALLOCATED, Stage.INVESTIGATING},
    )

    step: InvestigationStep
    note: str = Field(min_length=1, max_length=4_000)


class CloseCase(StaffAction):
    """The investigation closed with a Home Office outcome; the victim is told."""

    rule = ActionRule("close", roles={Role.OFFICER}, stages={Stage.INVESTIGATING})

    outcome: int = Field(ge=1, le=22)
    note: str = Field(min_length=1, max_length=4_000)


class Reopen(StaffAction):
    """A closed case reopened on new information (docs/reopening.md). Not an update: the
    starter checks it and starts a new run with it (``CaseInput.reopen``)."""

    rule = ActionRule(
        "reopen",
        roles={Role.CALL_HANDLER, Role.IMU},
        stages={Stage.NOT_A_CRIME, Stage.CLOSED_BY_IMU, Stage.CLOSED},
    )

    reason: str = Field(min_length=1, max_length=2_000)
    number: int = Field(default=1, ge=1)  # the case's how-many-th reopening this is

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("must not be empty")
        return reason
# Claims (workflows.claims): while a case is open and waits for someone.
_OPEN = (
    Stage.EMERGENCY,
    Stage.AWAITING_REVIEW,
    Stage.AWAITING_DETAILS,
    Stage.WITH_IMU,
    Stage.ALLOCATED,
    Stage.INVESTIGATING,
)
_EVERY_ROLE = (Role.CONTROL_ROOM, Role.CALL_HANDLER, Role.IMU, Role.OFFICER)


class Claim(StaffAction):
    """Take the case: one holder at a time, until the claim lapses or is released."""

    rule = ActionRule("claim", roles=_EVERY_ROLE, stages=_OPEN)


class Release(StaffAction):
    """Give the case back to its queue."""

    rule = ActionRule("release", roles=_EVERY_ROLE, stages=_OPEN)


class Reassign(StaffAction):
    """A supervisor hands the case to someone else."""

    rule = ActionRule("reassign", roles=(), stages=_OPEN)

    to: str = Field(min_length=1, max_length=64)


# Letters owed to a reporter without email (workflows.owed): any stage a letter can be
# owed in, closed ones too (the case waits for its owed letters before it finishes).
_LETTER_STAGES = tuple(s for s in Stage if s not in (Stage.RECEIVED, Stage.SCREENING))
DeliveredHow = Literal["post", "phone", "in-person"]


class LetterSent(StaffAction):
    """A letter owed to a reporter without email reached them: posted, read out on the
    phone or handed over. Meets the deadline the letter meets, now (on time or late)."""

    rule = ActionRule(
        "letter-sent",
        roles={Role.CALL_HANDLER, Role.IMU, Role.OFFICER},
        stages=_LETTER_STAGES,
    )

    how: DeliveredHow
    # The owed letter's purpose (``queue`` and ``show`` name it); None: the one owed first.
    letter: str | None = Field(default=None, min_length=1, max_length=100)


# The actions that are about the claim itself: the holder check is theirs to make.
CLAIM_ACTIONS = frozenset({"claim", "release", "reassign"})


class ActionResult(Message):
    """What a staff action answers: where the case is now and what was issued."""

    receipt_code: str
    stage: Stage
    detail: str
    reference: str | None = None
