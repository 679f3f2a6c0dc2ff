"""Fixtures for the pure domain rules: a report builder, no servers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from domain.report import Report

DROP = "__drop__"
"""Use as a value in ``make_report`` changes to remove the key."""

BASE: dict[str, Any] = {
    "submission_id": "0b7e2a3c-6c1e-4b5e-9c55-3f1f2f6f9a10",
    "channel": "online",
    "reporter": {
        "name": "Karen Smith",
        "email": "karen@example.org",
        "relationship": "victim",
        "under_18": False,
        "vulnerable": False,
        "consents_to_victim_support": True,
    },
    "incident": {
        "category": "burglary",
        "description": "Shed broken into overnight; two bicycles taken.",
        "occurred_from": "2026-11-27T22:00:00Z",
        "occurred_to": "2026-11-28T07:00:00Z",
        "in_progress": False,
        "location": {
            "address": "12 Mill Road, Cambridge",
            "postcode": "CB1 2AD",
            "latitude": 52.1999,
            "longitude": 0.1381,
            "on_railway": False,
        },
        "injuries": False,
        "weapons_seen": False,
        "threat_to_life": False,
        "witnesses": 0,
    },
}

MakeReport = Callable[..., Report]


def build_report(changes: dict[str, Any] | None = None) -> Report:
    """The base report with ``changes`` applied; keys are dotted paths."""
    data = copy.deepcopy(BASE)
    for path, value in (changes or {}).items():
        *parents, leaf = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value == DROP:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return Report.model_validate_json(json.dumps(data))


@pytest.fixture
def make_report() -> MakeReport:
    """Build a report from the base one: ``make_report({"incident.category": "fraud"})``."""
    return build_report
