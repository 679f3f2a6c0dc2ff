"""Staff actions on a case: ``@staff_action(Model)`` makes a handler an update.

The model (``domain.actions``) carries the action's rule; the decorator reads it for
everything around the handler's body:

- the update's name (the rule's name with underscores: ``record_crime``);
- its validator, which refuses an action the stage does not allow before anything
  reaches history (the model itself has already refused bad fields on decoding);
- the run of the body: one action at a time (``CaseBase._lock``), the stage checked
  again (an earlier action may have moved the case on since the validator ran), the
  actor authorised against the roster (audited either way), the body, and (patch
  ``one-transaction-actions``) one commit of everything the action changed.

How the actor is authorised, by the case's patches:

- before ``one-transaction-actions``: ``CaseStore.authorise``, then the body, each
  write its own local activity;
- ``one-transaction-actions``: two local activities. ``CaseStore.begin`` first (the
  roster check; once the actor is allowed, what the action ``needs``: its reference,
  its rules), then the body, then ``CaseStore.commit`` of what it changed with the
  allowed actor's audit row (unless ``begin`` wrote it: a refusal, or a reference issued
  in its own transaction);
- ``begin-in-commit`` (bundle ``bundle-2026-12-actions``): decide before authorising,
  ONE local activity. An action whose body needs nothing from ``begin`` (no ``needs``,
  and no activity of its own: ``decide_first=False`` says it has one) runs its body on a
  copy of the case's state (``CaseBase._tentative``: ``self.case``, what is kept for the
  commit, the letters ordered after the decision, the search attributes marked, the UI's
  current details), then ``CaseStore.decide`` authorises the actor and, only if allowed,
  writes the whole commit in the same PostgreSQL transaction. The search attributes are
  upserted and the letters set off only once it has answered. Refused, the case is put
  back exactly as it was (the same objects: nothing the body changed survives, no
  upsert, no letter), only the refusal's audit row is written (committed alone), and the
  update fails ``NotAuthorised`` as before. It is taken only while nothing else can
  change the case until the answer (``CaseBase._quiet``): the main loop parked in its
  wait, which holds while an action decides (``CaseBase._park``), and no letter on its
  way; otherwise, and for an action with ``needs``, ``begin`` then ``commit`` as before.
  A query meanwhile answers the case as it was before the action (``_as_decided``).
  Every action's audit row carries its key (``Authorise.key``: run and update id), so a
  retried ``decide`` or ``begin`` follows the answer first written and writes no second
  row.

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
    decide_first: bool = True,
) -> Callable[[Handler[C, A]], Handler[C, A]]:
    """Make ``body`` the update handler of ``model``'s action (see the module docstring).

    ``check`` is the action's own refusal before history, after the stage and the holder
    checks every action makes (workflows.claims uses it). ``needs`` says what the body
    needs first (``domain.effects.Begin``'s fields: a reference, rules): under
    PATCH_ONE_TRANSACTION the authorisation's local activity does those too, once the
    actor is allowed, and the body finds them in ``CaseBase._begun``.

    ``decide_first=False``: the body runs an activity of its own (a check, a write), so
    it is never decided before its authorisation (PATCH_BEGIN_IN_COMMIT); an action with
    ``needs`` never is either.
    """
    rule = model.rule
    decides = decide_first and needs is None

    def register(body: Handler[C, A]) -> Handler[C, A]:
        @functools.wraps(body)
        async def handler(self: C, action: A) -> ActionResult:
            async with _Acting(self, rule, action, check, needs, decides):
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


def _surfaced(err: ActivityError | ApplicationError) -> BaseException:
    """The roster's refusal as the update's own failure (NotAuthorised); else ``err``.
    A local activity's last failure may come unwrapped (no ActivityError)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.type == "NotAuthorised":
        return ApplicationError(cause.message, type="NotAuthorised", non_retryable=True)
    return err


class _Acting:
    """Runs one staff action: serialised, re-checked, authorised, then performed (or,
    PATCH_BEGIN_IN_COMMIT, performed on a copy, then authorised and committed at once)."""

    def __init__(
        self,
        case: CaseBase,
        rule: ActionRule,
        who: StaffAction,
        check: Callable[[Any, Any], None] | None = None,
        needs: Callable[[Any, Any], dict[str, Any]] | None = None,
        decides: bool = False,
    ) -> None:
        self._case = case
        self._rule = rule
        self._who = who
        self._check = check
        self._needs = needs
        self._decides = decides
        # Deciding first: the authorisation its one local activity makes at the end.
        self._deciding: Authorise | None = None

    def _key(self) -> str | None:
        """The action's audit key (PATCH_BEGIN_IN_COMMIT): its run and update id, the same
        on every retry and replay, another for every update the case takes."""
        update = workflow.current_update_info()
        if not self._case._decides_first or update is None:
            return None
        return f"{workflow.info().run_id}/{update.id}"

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
                key=self._key(),
            )
            summary = f"Authorised {self._rule.name} for {self._who.actor}"
            if self._decides and case._decides_first and case._quiet():
                # Decided first: the body runs on a copy; its one local activity is at
                # the end (__aexit__), authorisation and commit in one transaction.
                case._tentative()
                self._deciding = authorise
            elif case._one_transaction:
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
            surfaced = _surfaced(err)
            if surfaced is err:
                raise
            raise surfaced from None
        except BaseException:
            case._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        case = self._case
        refused = False
        try:
            if self._deciding is not None:
                # Authorised and committed at once; refused, the case is as it was.
                try:
                    await case._decide(self._deciding)
                except (ActivityError, ApplicationError) as err:
                    surfaced = _surfaced(err)
                    refused = surfaced is not err
                    if refused:
                        raise surfaced from None
                    raise
            case._begun = None
            # PATCH_ONE_TRANSACTION: what the action changed is in the store before it
            # answers (even when it failed part way, as each write was before); decided
            # first, only the search attributes' upsert and the letters are left.
            await case._commit()
        finally:
            if not refused:
                case._changes += 1
            case._lock.release()
