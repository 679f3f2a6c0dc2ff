"""Every message and state model is complete when its module is imported.

A model that names a model defined after it stays incomplete until something rebuilds
it; Temporal's converter reads payloads through ``TypeAdapter``, which rebuilds such a
model's schema on every use instead (3 ms per case start and per replay, measured).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from pydantic import BaseModel, TypeAdapter

import domain
from domain.case import CaseInput


def _models() -> list[type[BaseModel]]:
    found = []
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
            ):
                found.append(obj)
    return found


def test_the_domain_has_models() -> None:
    assert CaseInput in _models()


@pytest.mark.parametrize("model", _models(), ids=lambda m: f"{m.__module__}.{m.__name__}")
def test_model_is_complete_on_import(model: type[BaseModel]) -> None:
    assert model.__pydantic_complete__, f"{model.__name__}: call model_rebuild() after its module"
    adapter = TypeAdapter(model)
    assert adapter.core_schema is not None
