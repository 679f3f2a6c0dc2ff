"""Errors the CLIs turn into exit codes.

WhnError
├── RejectedError      exit 2: invalid input, wrong stage, wrong role, unknown reference
│   ├── NotFoundError    no case has that reference (HTTP 404)
│   └── ConflictError    the case's state refuses it: a submission_id used for another
│                        report, no open details request, a closed case (HTTP 409)
└── UnavailableError   exit 1: Temporal, PostgreSQL or a worker could not be reached
    └── PayloadKeyError  exit 1: no payload key, a wrong key, or a payload that cannot
                         be decoded (nothing is sent unencrypted)
"""

from __future__ import annotations


class WhnError(Exception):
    """Base of the errors a CLI reports as one line."""

    exit_code = 1


class RejectedError(WhnError):
    """The request was refused; nothing was changed."""

    exit_code = 2


class NotFoundError(RejectedError):
    """No case has the reference given."""


class ConflictError(RejectedError):
    """The request contradicts the case as it stands; nothing was changed."""


class UnavailableError(WhnError):
    """A system the request needs could not be reached; nothing was changed."""

    exit_code = 1


class PayloadKeyError(UnavailableError):
    """Payload encryption keys are missing or wrong, or a payload could not be decoded."""
