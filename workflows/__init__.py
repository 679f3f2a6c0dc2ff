"""The case lifecycle workflow (``workflows.case.CaseWorkflow``) and its steps.

=========================  ============================================================
``case``                   the workflow: ``run()``'s loop, the deadlines, the view
``receipt``                Step 1: receipt, screening, emergency, redirection
``review``                 Step 2: call-handler review
``imu``                    Step 3: the IMU's decision
``investigation``          Step 4: allocation, hand-off, the investigation, closure
``base``                   the case's state (``self.case``), records, stage, deadlines
``letters``                the one way to send a letter: ``self._send(letter, ...)``
``acting``                 ``@staff_action(Model)``: update, validator, authorisation
``due``                    ``Due`` / ``Work``: what falls due, read by wait and firing
=========================  ============================================================

How to add a staff action
-------------------------
1. ``domain/actions.py``: a model ``class Reopen(StaffAction)`` with its fields, their
   rules (pydantic validators; a known team is ``check_team``) and its rule:
   ``rule = ActionRule("reopen", roles={Role.CALL_HANDLER}, stages={Stage.CLOSED})``.
   The name is the ``whn-admin`` command and the audit name; the update is
   ``reopen`` (underscores for hyphens); supervisors are always allowed.
2. Its handler in the step file it belongs to::

       @staff_action(Reopen)
       async def reopen(self, action: Reopen) -> ActionResult:
           ...  # change self.case, self._set_stage(...), self._send(...)
           return self._result("Reopened.")

   The decorator refuses the wrong stage before anything reaches history, serialises
   the action with the others, checks the stage again and authorises the actor
   (audited); the body only does the action.
3. Its command in ``starter/admin_cli.py``: one line in the table of actions,
   ``_action(Reopen, "summary", _option("--reason"), ...)``, naming the options that
   are the model's fields (``fields=`` maps them where they differ). The command is the
   rule's name; ``starter.admin.act`` finds the update from the model
   (``update_for``); nothing else to register.
4. Its letter, if it sends one: an entry in ``domain/letters.py`` (audience, subject,
   body; wording functions for any placeholder made from facts), sent with
   ``await self._send("reopened", "reopened", after_decision=True, reason=...)``, and a
   path in ``tests/workflows/test_letters.py`` that orders it.
5. Tests: a row in ``tests/security/test_roles.py`` (``CASES``; it fails until there is
   one), the step's workflow test, a recorded history (``scripts/record_histories.py``).

How to add a timer (or stage work)
----------------------------------
Add one entry to the list of the step file that owns it: ``Due(when, label, act)`` in
its ``_..._due()`` (``_review_due``, ``_receipt_due``, ``_investigation_due``; the
deadlines are ``CaseWorkflow._deadlines_due``), or ``Work(label, act)`` in its
``_..._work()``. List the entry only while it is pending (build it from ``self.case``),
and make ``act`` change the state so it is no longer pending (``request.reminded =
True``, a next time moved on); state the default on silence in a comment. The loop
waits for the earliest ``when`` (``label`` is the timer's summary in the UI) and fires
from the same list, so there is no second place to add it. A new step file's list is
added to ``CaseWorkflow._timers`` / ``_stage_work``; their order is the order things are
acted on, which the recorded histories fix: append, never reorder.

Changing what an open case does next
------------------------------------
A change that alters the order of commands (activities, timers, search attributes,
letters) of a case already running must be behind ``self._patched`` (a patch id; new
cases take the ones in ``workflows.base.BUNDLES`` with one marker) with recorded
histories (``docs/versioning.md``); ``tests/test_replay.py`` replays every history
under ``tests/histories/``. Wording, rules and table data live in activities and
``domain/`` and change freely.

One commit per step (patch ``one-transaction-actions``)
-----------------------------------------------------
``self._record``, a referral and a control-room alert are kept, not written, and the
search attributes only marked; ``self._commit()`` writes what is kept in one local
activity (``CaseStore.commit``, one transaction, idempotent by event key) and upserts
the attributes once. It runs at the end of every staff action (``workflows.acting``),
after every act of the main loop, before a letter sent in place, after a letter's own
record, before continue-as-new and completion; a new step that must be in the store
before it awaits something long calls it itself. A staff action's first local activity
is ``CaseStore.begin``: the authorisation (audited either way) and, only when allowed,
what ``@staff_action(..., needs=...)`` asks for (its reference, its rules), found by the
body in ``self._begun`` (``_issue_reference``, ``_right6_due``, ``_prepared``).
Under patch ``begin-in-commit`` an action without ``needs`` is decided first: its body
runs on a copy of the case's state and one local activity (``CaseStore.decide``)
authorises and commits at once, the state put back on a refusal (``workflows.acting``).
A new action whose body runs an activity of its own says ``decide_first=False``
(``CaseBase._in_store`` and ``_rule`` refuse to run inside one decided first).

Lock or test: the main loop does not take the lock
--------------------------------------------------
Staff actions hold ``CaseBase._lock`` from their stage check to their answer; the main
loop (the inbox, stage work, timers) does not. Taking it would hold every action behind
a hand-off that retries for up to an hour, and would move an action's commands after
the loop's in cases recorded without it (a replay failure). Instead two properties,
held by tests (``tests/workflows/test_due.py``), make an action and a timer falling due
in the same task safe: the loop reads what falls due again after every act, so no act
runs on a condition an action has since changed (a request the action closed does not
lapse after the reminder's letter went); and the only stage the loop sets while an
action runs is ``awaiting_review`` from ``awaiting_details``, where every action allowed
in the one is allowed in the other. Acts that set a stage do so before their first
await.
"""
