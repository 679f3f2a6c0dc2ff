"""The emails of the process: one template per letter, rendered from a case's context.

Wording changes while cases are open, so letters are rendered in an activity, never in
workflow code. Missing context keys render as an empty string rather than failing a case.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

_FOOTER = """
Keep this email: it is your record. Please check your junk folder for our emails.
In an emergency, or if a crime is happening now, call 999. Otherwise call 101.

$force_name
"""

LETTERS: dict[str, tuple[str, str]] = {
    "receipt": (
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
        "Escalation: $what ($receipt_code)",
        """Case $receipt_code needs a supervisor: $what.

Due: $due_at
Stage: $stage

Open it with: whn-admin show $receipt_code --as <your staff id>
""",
    ),
    "redirected": (
        "Your report $receipt_code has been passed to $agency_name",
        """We have looked at your report ($receipt_code). It is dealt with by $agency_name,
not by us: $reason.

We have passed a copy of your report to them. You can also contact them directly:
$agency_contact
""",
    ),
    "agency_copy": (
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
        "We need a little more information: $receipt_code",
        """Thank you for your report ($receipt_code). To deal with it, our call handler needs
some more information:

$question

Please reply through the reporting service, quoting $receipt_code.
""",
    ),
    "details_reminder": (
        "Reminder: we still need more information ($receipt_code)",
        """We asked you for more information about your report ($receipt_code) and have not
yet had a reply:

$question

Please reply through the reporting service, quoting $receipt_code. If we do not hear
from you by $expires_at, we will carry on with the information we have.
""",
    ),
    "details_received": (
        "Thank you: we have your reply ($receipt_code)",
        """Thank you for the information you sent about your report ($receipt_code). A call
handler will now carry on with it; we will contact you again only if we need more.
""",
    ),
    "crime_recorded": (
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
        "About your report $receipt_code",
        """We have reviewed your report ($receipt_code). It is not something we can record
as a crime, but here is what you can do:

$advice

Organisations that can help:
$agencies
""",
    ),
    "imu_closed": (
        "Update on your crime $crime_reference: no further investigation",
        """We have reviewed your crime ($crime_reference) and decided not to investigate it
further at this time, because $reason_text.

Outcome recorded: $outcome_name (Home Office outcome $outcome).

If you have new information, such as a witness, CCTV or a name, please contact us
quoting $crime_reference: a closed case can be reopened.
""",
    ),
    "investigation_opened": (
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
        "New case for $team_name: $investigation_reference",
        """Case $investigation_reference ($crime_reference, $offence) has been allocated to
$team_name. Please acknowledge it:
whn-admin acknowledge $investigation_reference --officer <id> --as <your staff id>
""",
    ),
    "victim_update": (
        "Update on your case $crime_reference",
        """This is your regular update on the investigation of your crime ($crime_reference,
investigation $investigation_reference).

The investigation is continuing with $team_name. Your officer is $officer.
Steps completed so far: $steps_done.
""",
    ),
    "case_closed": (
        "Your case $crime_reference has been closed",
        """The investigation of your crime ($crime_reference) has finished.

Outcome: $outcome_name (Home Office outcome $outcome).
$note

If you have new information, please contact us quoting $crime_reference.
""",
    ),
}


def render(letter: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Render ``letter`` with ``context``; returns ``(subject, body)``."""
    subject, body = LETTERS[letter]
    values = {"force_name": "", **{k: "" if v is None else str(v) for k, v in context.items()}}
    text = string.Template(body + _FOOTER).safe_substitute(values)
    return string.Template(subject).safe_substitute(values), text
