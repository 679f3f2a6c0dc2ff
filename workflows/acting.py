"""Staff actions on a case: ``@staff_action(Model)`` makes a handler an update.

The model (``domain.actions``) carries the action's rule; the decorator reads it for
everything around the handler's body:

- the update's name (the rule's name with underscores: ``record_crime``);
- its validator, which refuses an action the stage does not allow before anything
  reaches history (the model itself has already refused bad fields on decoding);
- the run of the body: one action at a time (``CaseBase._lock``), the stage checked
  again (an earlier action may have moved the case on since the validator ran), the
  actor authorised against the roster by a local activity (``CaseStore.authorise``,
  audited either way; under patch ``one-transaction-actions`` ``CaseStore.begin``,
  which also does what the action ``needs`` first once the actor is allowed), then the
  body, then (under that patch) one commit of everything the action changed: with
  the allowed actor's audit row too, unless ``begin`` wrote it (a refusal, or a
  reference issued in its own transaction), so an action is one transaction.

``update_for(Model)`` is the update method for a model, for clients (``starter.admin``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.store import CaseStore
    from domain.actions import CLAIM_ACTIONS, ActionResult, ActionRule, StaffAction
    from domain.effects import Authorise, Begin

from workflows.base import CaseBase

A = TypeVar("A", bound=StaffAction)
C = TypeVar("C", bound=CaseBase)
Handler = Callable[[C, A], Awaitable[ActionResult]]

_UPDATES: dict[type[StaffAction], Any] = {}


def update_for(model: type[StaffAction]) -> Any:
    """The workflow update that takes ``model`` (KeyError if no handler takes it)."""
    return _UPDATES[model]


def wrong_stage(rule: ActionRule, case: CaseBase) -> ApplicationError:
    return ApplicationError(
        rule.wrong_stage(case.case.stage), type="WrongStage", non_retryable=True
    )


def staff_action(
    model: type[A],
    *,
    check: Callable[[C, A], None] | None = None,
    needs: Callable[[C, A], dict[str, Any]] | None = None,
) -> Callable[[Handler[C, A]], Handler[C, A]]:
    """Make ``body`` the update handler of ``model``'s action (see the module docstring).

    ``check`` is the action's own refusal before history, after the stage and the holder
    checks every action makes (workflows.claims uses it). ``needs`` says what the body
    needs first (``domain.effects.Begin``'s fields: a reference, rules): under
    PATCH_ONE_TRANSACTION the authorisation's local activity does those too, once the
    actor is allowed, and the body finds them in ``CaseBase._begun``.
    """
    rule = model.rule

    def register(body: Handler[C, A]) -> Handler[C, A]:
        @functools.wraps(body)
        async def handler(self: C, action: A) -> ActionResult:
            async with _Acting(self, rule, action, check, needs):
                return await body(self, action)

        update = workflow.update(name=rule.update_name)(handler)

        def validate(self: C, action: A) -> None:
            if not rule.allows(self.case.stage):
                raise wrong_stage(rule, self)
            if rule.name not in CLAIM_ACTIONS:
                self._check_holder(action.actor, override=action.override_claim)
            if check is not None:
                check(self, action)

        # The SDK wants the validator's parameters to be the handler's, annotations too.
        validate.__signature__ = inspect.signature(body).replace(  # type: ignore[attr-defined]
            return_annotation=None
        )
        validate.__name__ = f"_validate_{body.__name__}"
        update.validator(validate)

        _UPDATES[model] = update
        return cast(Handler[C, A], update)

    return register


class _Acting:
    """Runs one staff action: serialised, re-checked, authorised, then performed."""

    def __init__(
        self,
        case: CaseBase,
        rule: ActionRule,
        who: StaffAction,
        check: Callable[[Any, Any], None] | None = None,
        needs: Callable[[Any, Any], dict[str, Any]] | None = None,
    ) -> None:
        self._case = case
        self._rule = rule
        self._who = who
        self._check = check
        self._needs = needs

    async def __aenter__(self) -> None:
        case = self._case
        await case._lock.acquire()
        try:
            # The validator ran before an earlier action may have moved the case on.
            if not self._rule.allows(case.case.stage):
                raise wrong_stage(self._rule, case)
            # An earlier action may have claimed the case since, too.
            if self._rule.name not in CLAIM_ACTIONS:
                case._check_holder(self._who.actor, override=self._who.override_claim)
            if self._check is not None:
                self._check(case, self._who)
            authorise = Authorise(
                workflow_id=case._id,
                actor=self._who.actor,
                action=self._rule.name,
                override_claim_of=case._overriding(self._who.actor),
            )
            summary = f"Authorised {self._rule.name} for {self._who.actor}"
            if case._one_transaction:
                needs = self._needs(case, self._who) if self._needs else {}
                begun = await case._in_store(
                    CaseStore.begin,
                    Begin(authorise=authorise, audit_with_commit=True, **needs),
                    summary,
                )
                if not begun.audited:
                    # Allowed: audited with what the action writes, in its one commit.
                    case._audits.append(authorise)
                case._begun = begun
            else:
                await case._in_store(CaseStore.authorise, authorise, summary)
        except ActivityError as err:
            case._lock.release()
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "NotAuthorised":
                # Surface the roster's answer to the caller as the update's own failure.
                raise ApplicationError(
                    cause.message, type="NotAuthorised", non_retryable=True
                ) from None
            raise
        except BaseException:
            case._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        try:
            self._case._begun = None
            # PATCH_ONE_TRANSACTION: what the action changed is in the store before it
            # answers (even when it failed part way, as each write was before).
            await self._case._commit()
        finally:
            self._case._changes += 1
            self._case._lock.release()
