"""Loading the rule tables packaged under ``domain/data/``.

The tables are the part of each rule a force changes (keywords, postcodes, agencies,
routing, weights); the code that applies them stays put. Each rule module loads its
table once through :func:`load_table` and also accepts a table as an argument, so a
test or a force can pass its own.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Table", "TableError", "load_table"]


class TableError(ValueError):
    """A packaged table is missing or does not match its model.

    Attributes:
        name: File name of the table under ``domain/data/``.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"domain/data/{name}: {message}")
        self.name = name


class Table(BaseModel):
    """Base of every table model: frozen, and unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


T = TypeVar("T", bound=BaseModel)


def load_table(name: str, model: type[T]) -> T:
    """Read ``domain/data/<name>`` and validate it as ``model``.

    Callers cache the result (``functools.cache``) so a table is read once per process.

    Args:
        name: File name under ``domain/data/``, e.g. ``"triage.json"``.
        model: The pydantic model the file must match.

    Returns:
        The validated table.

    Raises:
        TableError: The file is missing or invalid.
    """
    resource = files("domain").joinpath("data", name)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TableError(name, "not found") from exc
    try:
        return model.model_validate_json(text)
    except ValueError as exc:
        raise TableError(name, str(exc)) from exc
