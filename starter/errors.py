"""Errors the CLIs turn into exit codes.

WhnError
├── RejectedError      exit 2: invalid input, wrong stage, wrong role, unknown reference
└── UnavailableError   exit 1: Temporal, PostgreSQL or a worker could not be reached
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
