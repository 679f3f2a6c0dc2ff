"""The letters of the process: who each is for, its wording, and how it is filled in.

One table (``LETTERS``): each letter's audience (who gets it; the mailer turns that into
an address) and its subject and body. The workflow passes *facts* (a reason code, a team
slug, whether Victim Support was referred, an outcome number); every word the reader
sees is made here, from those facts, by the placeholders' wording functions
(``_WORDING``), and rendered in the mail activity. Wording changes while cases are open,
so it never lives in workflow code: a change here reaches the next letter a case sends
without a ``workflow.patched``.

A placeholder the facts cannot fill (a missing key, or ``None``) raises LetterError: a
letter never goes out without its reference number. The mail activity lets that error
retry, so the letter waits in the outbox until the wording or the workflow is mended.

Facts written by an older workflow carried the wording itself (``next_steps``,
``agency_contact``, ...): a placeholder already in the facts is used as given, so a
letter in flight across a deployment still renders.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.effects import Audience

__all__ = [
    "LETTERS",
    "SUSPECT_LETTERS",
    "Letter",
    "LetterError",
    "fill",
    "render",
    "team_name",
    "track_paragraph",
]

Facts = Mapping[str, Any]


class LetterError(ValueError):
    """A letter whose facts do not fill every placeholder."""


@dataclass(frozen=True)
class Letter:
    """One letter: who it is for, its subject and its body (``$placeholders``)."""

    audience: Audience
    subject: str
    body: str

    def placeholders(self) -> list[str]:
        seen: list[str] = []
        for text in (self.subject, self.body + _FOOTER):
            for name in string.Template(text).get_identifiers():
                if name not in seen:
                    seen.append(name)
        return seen


_FOOTER = """
Keep this email: it is your record. Please check your junk folder for our emails.
In an emergency, or if a crime is happening now, call 999. Otherwise call 101.

$force_name
"""

# --- Victims' Code Right 6: what a suspect event means, in plain words -------------------

_SUSPECT_NOTE = """
What your officer added: $note
"""
NO_NOTE = "nothing more for now."
_SUSPECT_ENDING = """
Your crime reference number is $crime_reference. If you have questions, contact your
officer, quoting it. If you feel unsafe, or anyone threatens you, call 999.
"""
_RIGHT_TO_REVIEW = """
You can ask us to look at this decision again. This is called the Victims' Right to
Review. An officer who was not part of the decision will look at the case again and
write to you with the answer. To ask for a review, contact us within 3 months of this
letter, quoting $crime_reference, and say that you want a review under the Victims'
Right to Review scheme. You can ask even if you are not sure the decision is wrong.
"""
_VPS_OFFER = """
You can make a Victim Personal Statement. It is your chance to say, in your own words,
how the crime has affected you: your health, your feelings, your money, your family,
or anything else. If the suspect is found guilty, the court reads it before deciding
the sentence. To make one, tell your officer, quoting $crime_reference. You can make
it now or later, and you can add to it.
"""
_BAIL_CONDITIONS = """
Bail can have conditions to protect you, such as not contacting you, not coming near
your home or work, or staying at an address away from you. Your officer will tell you
which conditions apply. If the suspect breaks a condition, call 101 and quote
$crime_reference. If you are in danger, call 999.
"""


def _suspect(subject: str, means: str, next_steps: str, *extra: str) -> tuple[str, str]:
    body = means + "\nWhat happens next: " + next_steps + "".join(extra)
    return subject + ": $crime_reference", body + _SUSPECT_NOTE + _SUSPECT_ENDING


# One letter per suspect event (domain.victims.SuspectEvent.letter): its key and wording.
SUSPECT_LETTERS: dict[str, tuple[str, str]] = {
    "suspect_arrested": _suspect(
        "Someone has been arrested",
        "The police have arrested someone we think may have committed the crime\n"
        "against you. This does not yet mean they did it.\n",
        "we will question them. Then they may be charged, released on bail,\n"
        "released while we carry on investigating, or released with no further\n"
        "action. We will tell you which.\n",
    ),
    "suspect_interviewed": _suspect(
        "The suspect has been interviewed",
        "We have interviewed the suspect under caution. This means they were\n"
        "asked questions about the crime and told their answers could be used in\n"
        "court.\n",
        "we will look at what they said with the other evidence and decide\n"
        "what to do next. We will tell you what we decide.\n",
    ),
    "suspect_charged": _suspect(
        "The suspect has been charged",
        "The suspect has been charged. This means they are accused of the crime\n"
        "and the case will go to court.\n",
        "the Witness Care Unit will contact you about the court case and\n"
        "whether you may need to go to court. They will tell you the date of each\n"
        "hearing.\n",
        _VPS_OFFER,
    ),
    "suspect_released_nfa": _suspect(
        "No further action against the suspect",
        "We have released the suspect and decided to take no further action\n"
        "against them. This means they will not be charged for now. It does not\n"
        "mean we did not believe you.\n",
        "the investigation against this suspect stops. If you or anyone else\n"
        "has new information, tell us: we can look at the case again.\n",
        _RIGHT_TO_REVIEW,
    ),
    "suspect_bailed": _suspect(
        "The suspect has been released on bail",
        "The suspect has been released on bail. This means they are free for now\n"
        "but must come back to the police station or to court on a set date.\n",
        "we carry on investigating. We will tell you what happens when they\ncome back.\n",
        _BAIL_CONDITIONS,
    ),
    "suspect_released_under_investigation": _suspect(
        "The suspect has been released while we investigate",
        "The suspect has been released while we carry on investigating. They\n"
        "have no bail conditions, but it is still a crime for anyone to threaten\n"
        "or scare you.\n",
        "we carry on gathering evidence and then decide whether to charge them.\n"
        "We will tell you what we decide. If the suspect contacts you, call 101\n"
        "and quote your crime reference number.\n",
    ),
    "suspect_bail_changed": _suspect(
        "The suspect's bail has changed",
        "The conditions of the suspect's bail, or the date they must come back,\nhave changed.\n",
        "we carry on investigating. We will tell you what happens next.\n",
        _BAIL_CONDITIONS,
    ),
}


_TEMPLATES: dict[str, tuple[Audience, str, str]] = {
    "receipt": (
        "reporter",
        "Your report has been received: $receipt_code",
        """Thank you for your report. Your receipt code is $receipt_code: it is your proof of
submission, so please keep it safe and quote it if you contact us.

What we received: a report of $category_name, $occurred, at $address.

What happens next: we check that your report does not need an emergency response and
that we are the right agency to deal with it. A trained call handler then reviews it and,
if it is a crime, we will email you a crime reference number. We will contact you only
if we need more information.
""",
    ),
    "control_room_alert": (
        "control_room",
        "EMERGENCY escalation $attempt_label: online report $receipt_code",
        """An online report needs an emergency response (Grade 1).

Receipt code: $receipt_code
Indicators: $indicators
Location: $address
Attempt: $attempt

Confirm you have taken it: whn-admin ack-emergency $receipt_code --as <your staff id>
""",
    ),
    "supervisor_escalation": (
        "supervisor",
        "Escalation: $what ($receipt_code)",
        """Case $receipt_code needs a supervisor: $what.

Due: $due_at
Stage: $stage

Open it with: whn-admin show $receipt_code --as <your staff id>
""",
    ),
    "redirected": (
        "reporter",
        "Your report $receipt_code has been passed to $agency_name",
        """We have looked at your report ($receipt_code). It is dealt with by $agency_name,
not by us: $reason.

We have passed a copy of your report to them. You can also contact them directly:
$agency_contact
""",
    ),
    "agency_copy": (
        "agency",
        "Report passed on from $force_name: $receipt_code",
        """$force_name has received a report that falls to $agency_name: $reason.

Our receipt code: $receipt_code
Category: $category_name
When: $occurred
Where: $address

Account as given by the reporter:
$description

Reporter contact: $reporter_name, $reporter_email, $reporter_phone
""",
    ),
    "details_request": (
        "reporter",
        "We need a little more information: $receipt_code",
        """Thank you for your report ($receipt_code). To deal with it, our call handler needs
some more information:

$question

Please reply through the reporting service, quoting $receipt_code.
""",
    ),
    "details_reminder": (
        "reporter",
        "Reminder: we still need more information ($receipt_code)",
        """We asked you for more information about your report ($receipt_code) and have not
yet had a reply:

$question

Please reply through the reporting service, quoting $receipt_code. If we do not hear
from you by $expires_at, we will carry on with the information we have.
""",
    ),
    "details_received": (
        "reporter",
        "Thank you: we have your reply ($receipt_code)",
        """Thank you for the information you sent about your report ($receipt_code). A call
handler will now carry on with it; we will contact you again only if we need more.
""",
    ),
    "crime_recorded": (
        "reporter",
        "Your crime reference number: $crime_reference",
        """We have recorded your report as a crime.

Crime reference number: $crime_reference
Offence: $offence
Receipt code: $receipt_code

Please make a note of your crime reference number and quote it when you contact us.

What happens next: $next_steps
$support_line""",
    ),
    "victim_support_referral": (
        "victim_support",
        "Referral: $crime_reference",
        """Victim support referral (Victims' Code Right 4), made with the victim's consent.

Crime reference: $crime_reference
Offence: $offence
Victim: $reporter_name, $reporter_email, $reporter_phone
Enhanced rights: $enhanced_rights
Referral due by: $due_at
""",
    ),
    "not_a_crime": (
        "reporter",
        "About your report $receipt_code",
        """We have reviewed your report ($receipt_code). It is not something we can record
as a crime, but here is what you can do:

$advice

Organisations that can help:
$agencies
""",
    ),
    "imu_closed": (
        "reporter",
        "Update on your crime $crime_reference: no further investigation",
        """We have reviewed your crime ($crime_reference) and decided not to investigate it
further at this time, because $reason_text.

Outcome recorded: $outcome_name (Home Office outcome $outcome).

If you have new information, such as a witness, CCTV or a name, please contact us
quoting $crime_reference: a closed case can be reopened.
""",
    ),
    "investigation_opened": (
        "reporter",
        "Your investigation reference: $investigation_reference",
        """Your crime ($crime_reference) is being investigated.

Investigation reference: $investigation_reference

Our first steps include talking to witnesses, assessing the scene, checking CCTV,
gathering evidence such as forensic samples, and searching our intelligence database.
The case goes to $team_name, and the investigating officer will be your single point
of contact.
""",
    ),
    "team_handoff": (
        "team",
        "New case for $team_name: $investigation_reference",
        """Case $investigation_reference ($crime_reference, $offence) has been allocated to
$team_name. Please acknowledge it:
whn-admin acknowledge $investigation_reference --officer <id> --as <your staff id>
""",
    ),
    "victim_update": (
        "reporter",
        "Update on your case $crime_reference",
        """This is your regular update on the investigation of your crime ($crime_reference,
investigation $investigation_reference).

The investigation is continuing with $team_name. Your officer is $officer.
Steps completed so far: $steps_done.
""",
    ),
    "case_closed": (
        "reporter",
        "Your case $crime_reference has been closed",
        """The investigation of your crime ($crime_reference) has finished.

Outcome: $outcome_name (Home Office outcome $outcome).
$note

If you have new information, please contact us quoting $crime_reference.
""",
    ),
    # --- after the crime is recorded: reopening, Right 6, agreed updates ---------------
    "reopened_awaiting_review": (
        "reporter",
        "We have reopened your report $receipt_code",
        """We have reopened your report ($receipt_code) because we have new information.

What happens next: a trained call handler will look at your report again and decide
whether it can be recorded as a crime. We will email you when they have decided. You
do not need to do anything now. If we need more from you, we will ask.
""",
    ),
    "reopened_with_imu": (
        "reporter",
        "We have reopened your case $crime_reference",
        """We have reopened your case ($crime_reference) because we have new information.

What happens next: our Investigation Management Unit will look at your case again and
decide whether to investigate it. We will email you when they have decided. You do not
need to do anything now. If we need more from you, we will ask.
""",
    ),
    **{name: ("reporter", *letter) for name, letter in SUSPECT_LETTERS.items()},
    "updates_agreed": (
        "reporter",
        "How often we will update you: $crime_reference",
        """You have agreed with us how often we will update you about the investigation of
your crime ($crime_reference): every $every_words.

Your next update is due by $next_update.

If you want updates more or less often, tell your officer, quoting $crime_reference.
""",
    ),
    # The supervisor's morning email (workflows.summary; domain.compliance.DailySummary).
    "supervisor_daily_summary": (
        "supervisor",
        "Promises: $overdue_total overdue now, $missed_total missed on $day",
        """Good morning. How we are keeping our promises to victims.

Overdue now (open cases, past due, not met): $overdue_total
$overdue_lines
Cases: $overdue_cases

Due on $day: $due_total, of which missed: $missed_total
$missed_lines

The full figures: whn-admin report --from DATE --to DATE --html FILE --as <your staff id>
""",
    ),
}


LETTERS: dict[str, Letter] = {
    name: Letter(audience, subject, body) for name, (audience, subject, body) in _TEMPLATES.items()
}

# --- wording: what the reader sees, made from the facts the workflow passes ---------------

IMU_REASON_TEXT = {
    "insufficient-evidence": "there is not enough evidence to pursue the investigation",
    "no-witnesses": "there are no witnesses",
    "witnesses-unwilling": "witnesses and parties involved are not willing to come forward",
    "victim-no-statement": "you have told us you do not wish to give a statement",
}

_TEAM_NAMES = {
    "rit": "the Rape Investigation Team",
    "domestic-abuse": "the Domestic Abuse Investigation and Safeguarding Unit",
    "child-abuse": "the Child Abuse Investigation Unit",
    "cyber": "the Cyber Crime Unit",
    "cid": "CID",
    "economic-crime": "the Economic Crime Unit",
}


def team_name(team: str) -> str:
    """A team as a letter names it: ``lpt-south-cambs`` is "the South Cambs local policing team"."""
    if team.startswith("lpt-"):
        return "the " + team.removeprefix("lpt-").replace("-", " ").title() + " local policing team"
    return _TEAM_NAMES.get(team, team)


def _occurred(f: Facts) -> str:
    return datetime.fromisoformat(str(f["occurred_from"])).strftime("%d %B %Y %H:%M")


def _agency_contact(f: Facts) -> str:
    contacts = f.get("agency_contacts")
    if not contacts:
        # A handler's redirect names the agency only.
        return f"Contact {f['agency_name']} directly if you need to."
    ways = "; ".join(
        str(contacts[k])
        for k in ("contact_url", "contact_phone", "contact_email")
        if contacts.get(k)
    )
    return f"{ways}. {contacts.get('how_to_report') or ''}".strip()


def _next_steps(f: Facts) -> str:
    if f["outcome"] is not None:
        return f"No further investigation: outcome {f['outcome']}."
    return (
        "Your report now goes to our Investigations Management Unit, who decide"
        " whether to investigate further."
    )


def _support_line(f: Facts) -> str:
    if f["victim_support_referred"]:
        return "We have referred you to Victim Support, who will contact you.\n"
    return ""


def _reporter(field: str, missing: str) -> Callable[[Facts], str]:
    def word(f: Facts) -> str:
        return str(f["reporter"][field] or missing)

    return word


_WORDING: dict[str, Callable[[Facts], str]] = {
    "category_name": lambda f: str(f["category"]).replace("-", " "),
    "occurred": _occurred,
    "attempt_label": lambda f: "" if f["attempt"] == 1 else f"(REPEAT {f['attempt']})",
    "indicators": lambda f: ", ".join(f["indicator_list"]),
    "agency_contact": _agency_contact,
    "reporter_name": _reporter("name", "name not given"),
    "reporter_email": _reporter("email", "no email given"),
    "reporter_phone": _reporter("phone", "no phone given"),
    "next_steps": _next_steps,
    "support_line": _support_line,
    "enhanced_rights": lambda f: "yes" if f["enhanced"] else "no",
    "agencies": lambda f: "\n".join(f"- {a}" for a in f["agency_list"]) or "- none named",
    "reason_text": lambda f: IMU_REASON_TEXT[f["reason"]],
    "team_name": lambda f: team_name(f["team"]),
    "officer": lambda f: f["officer_id"] or "to be confirmed",
    "steps_done": lambda f: ", ".join(f["steps"]) or "none yet",
}


def fill(letter: str, facts: Facts) -> dict[str, str]:
    """Every placeholder of ``letter``, filled from ``facts``; LetterError if one cannot be."""
    values: dict[str, str] = {}
    for name in LETTERS[letter].placeholders():
        try:
            value = facts[name] if name in facts else _WORDING[name](facts)
        except KeyError as missing:
            raise LetterError(f"letter {letter}: ${name} needs the fact {missing}") from None
        if value is None:
            raise LetterError(f"letter {letter}: no value for ${name}")
        values[name] = str(value)
    return values


def render(letter: str, facts: Facts) -> tuple[str, str]:
    """Render ``letter`` from ``facts``; returns ``(subject, body)``.

    Raises:
        LetterError: a placeholder the facts do not fill.
        KeyError: ``letter`` is not a letter.
    """
    template = LETTERS[letter]
    values = fill(letter, facts)
    body = string.Template(template.body + _FOOTER).substitute(values)
    return string.Template(template.subject).substitute(values), body


def track_paragraph(url: str, *, until: str) -> str:
    """The paragraph every letter to the reporter ends with: their page's signed link."""
    return f"""
See where your report is, answer our questions or tell us something new:
{url}

This link is only for you: please do not share it. It works until {until}. After
that, go to the same page and sign in with your receipt code and this email address.
"""
