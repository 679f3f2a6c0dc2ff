"""Errors the CLIs turn into exit codes.

WhnError
├── RejectedError      exit 2: invalid input, wrong stage, wrong role, unknown reference
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


class UnavailableError(WhnError):
    """A system the request needs could not be reached; nothing was changed."""

    exit_code = 1


class PayloadKeyError(UnavailableError):
    """Payload encryption keys are missing or wrong, or a payload could not be decoded."""
