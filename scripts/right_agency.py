"""Who deals with a report at this postcode (or map position), by the packaged rules.

    .venv/bin/python scripts/right_agency.py "NR1 1QH"
    .venv/bin/python scripts/right_agency.py "EH1 1AD" --category fraud
    .venv/bin/python scripts/right_agency.py --at 52.5786 -0.4166

Prints the decision the screening activity would make for a report there (category
``other-theft`` unless given), with the reason and, for a redirect, the contact details.
"""

from __future__ import annotations

import argparse

from domain.agency import right_agency
from domain.report import Report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("postcode", nargs="?")
    parser.add_argument("--at", nargs=2, type=float, metavar=("LAT", "LON"))
    parser.add_argument("--category", default="other-theft")
    args = parser.parse_args()
    location: dict[str, object] = {"address": "(given by the reporter)"}
    if args.postcode:
        location["postcode"] = args.postcode
    if args.at:
        location["latitude"], location["longitude"] = args.at
    report = Report.model_validate(
        {
            "submission_id": "right-agency-script",
            "channel": "phone",
            "reporter": {"name": "A Reporter", "relationship": "victim", "phone": "01223 000000"},
            "incident": {
                "category": args.category,
                "description": "Looked up by scripts/right_agency.py.",
                "occurred_from": "2026-11-27T22:00:00Z",
                "location": location,
            },
        },
        strict=False,
    )
    decision = right_agency(report)
    print(f"{decision.kind}" + (f": {decision.agency.name}" if decision.agency else ""))
    if decision.district:
        print(f"district: {decision.district}")
    print(decision.reason)
    if decision.agency:
        agency = decision.agency
        print(" | ".join(x for x in (agency.contact_url, agency.contact_phone) if x))
        print(agency.how_to_report)


if __name__ == "__main__":
    main()
