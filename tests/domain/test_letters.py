"""The letter table: strict placeholders, wording made from facts, older facts still read."""

from __future__ import annotations

import pytest

from domain.letters import LETTERS, LetterError, render, team_name

FACTS = {
    "force_name": "Cambridgeshire Constabulary",
    "receipt_code": "WHN-AAAA-BBBB-CC",
    "crime_reference": "35/00001/26",
    "offence": "burglary",
    "outcome": None,
    "victim_support_referred": True,
}


def test_a_missing_fact_raises_instead_of_rendering_nothing():
    facts = {k: v for k, v in FACTS.items() if k != "crime_reference"}
    with pytest.raises(LetterError, match="crime_reference"):
        render("crime_recorded", facts)


def test_a_fact_that_is_none_raises():
    with pytest.raises(LetterError, match=r"\$crime_reference"):
        render("crime_recorded", {**FACTS, "crime_reference": None})


def test_wording_is_made_from_the_facts():
    subject, body = render("crime_recorded", FACTS)
    assert subject == "Your crime reference number: 35/00001/26"
    assert "Investigations Management Unit" in body
    assert "referred you to Victim Support" in body
    _, closing = render(
        "crime_recorded", {**FACTS, "outcome": 18, "victim_support_referred": False}
    )
    assert "No further investigation: outcome 18." in closing
    assert "Victim Support" not in closing


def test_facts_worded_by_an_older_workflow_still_render():
    # A letter ordered before the wording moved here, retried after a deployment.
    older = {k: v for k, v in FACTS.items() if k not in ("outcome", "victim_support_referred")}
    older |= {"next_steps": "As before.", "support_line": ""}
    _, body = render("crime_recorded", older)
    assert "What happens next: As before." in body


def test_every_letter_names_its_audience():
    assert {letter.audience for letter in LETTERS.values()} == {
        "reporter",
        "control_room",
        "supervisor",
        "victim_support",
        "agency",
        "team",
    }


@pytest.mark.parametrize(
    ("team", "name"),
    [
        ("lpt-south-cambs", "the South Cambs local policing team"),
        ("cid", "CID"),
        ("rit", "the Rape Investigation Team"),
    ],
)
def test_team_names(team, name):
    assert team_name(team) == name
