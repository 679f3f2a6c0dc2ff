"""Reading docker-compose.yml the way Docker Compose does, without Docker.

Compose parses the YAML (anchors and ``<<`` merges resolved), merges the override files
given with ``-f`` onto it (``!reset`` removes a value, ``!override`` replaces one whole),
then interpolates ``${VAR}``-style references in values from the environment and the
``.env`` file. This module does the same with ``.env.example`` standing in for ``.env``,
so ``deploy/lint.py`` and ``tests/deploy`` check the files an operator would run.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, SequenceNode

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# $$ | ${NAME} | ${NAME<op>ARG} (op one of :- - :? ? :+ +) | $NAME
_REFERENCE = re.compile(
    r"\$(?:(?P<escape>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    """A required variable (``${NAME:?message}``) is unset, or a reference is malformed."""


class Tagged:
    """A value marked ``!reset`` or ``!override`` in an override file."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


def _tagged(tag: str) -> Any:
    def construct(constructor: Any, node: Any) -> Tagged:
        if isinstance(node, MappingNode):
            value: Any = constructor.construct_mapping(node, deep=True)
        elif isinstance(node, SequenceNode):
            value = constructor.construct_sequence(node, deep=True)
        else:
            value = constructor.construct_scalar(node)
        return Tagged(tag, value)

    return construct


def load_yaml(text: str) -> Any:
    """Parse YAML safely (Compose's own parser also resolves anchors and merge keys)."""
    return copy.deepcopy(_parse(text))  # callers may change what they get


@lru_cache(maxsize=64)
def _parse(text: str) -> Any:
    yaml = YAML(typ="safe", pure=True)
    yaml.constructor.add_constructor("!reset", _tagged("!reset"))
    yaml.constructor.add_constructor("!override", _tagged("!override"))
    return yaml.load(StringIO(text))


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose document as written, before interpolation."""
    document = load_yaml(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path.name} is not a mapping")
    return document


# Sequences an override replaces rather than extends (Compose's merge rules).
_REPLACED = frozenset({"command", "entrypoint", "test", "dns", "dns_search", "tmpfs"})


def merge(base: Any, override: Any, key: str = "") -> Any:
    """``override`` merged onto ``base`` as ``docker compose -f base -f override`` does."""
    if isinstance(override, Tagged):
        return None if override.tag == "!reset" else _plain(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            if isinstance(value, Tagged) and value.tag == "!reset":
                merged.pop(name, None)
            elif name in merged:
                merged[name] = merge(merged[name], value, name)
            else:
                merged[name] = _plain(value)
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        return base + [item for item in _plain(override) if item not in base]
    return _plain(override)


def _plain(node: Any) -> Any:
    if isinstance(node, Tagged):
        return _plain(node.value)
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if not _is_reset(v)}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node


def _is_reset(node: Any) -> bool:
    return isinstance(node, Tagged) and node.tag == "!reset"


def load_stack(*paths: Path) -> dict[str, Any]:
    """The first file with every following one merged onto it, before interpolation."""
    document: dict[str, Any] = load_compose(paths[0])
    for path in paths[1:]:
        document = merge(document, load_compose(path))
    return document


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``NAME=value`` lines of a Compose ``.env`` file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
            raise ValueError(f"{path.name}:{number}: not NAME=value: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def variables(node: Any) -> Iterator[tuple[str, str | None]]:
    """Every ``(name, operator)`` referenced in the values of ``node`` (operator None if bare)."""
    for text in _strings(node):
        for match in _REFERENCE.finditer(text):
            if match.group("escape"):
                continue
            if match.group("arg") and "${" in match.group("arg"):
                raise InterpolationError(f"nested interpolation is not checked here: {text!r}")
            yield (match.group("braced") or match.group("bare")), match.group("op")


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """``node`` with every reference replaced as Compose would, given ``env``."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, str):
        return _REFERENCE.sub(lambda m: _substitute(m, env), node)
    return node


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group("escape"):
        return "$"
    name = match.group("braced") or match.group("bare")
    op, arg = match.group("op"), match.group("arg") or ""
    value = env.get(name)
    is_set, is_nonempty = value is not None, bool(value)
    if op is None:
        return value or ""
    if op == ":-":
        return value if is_nonempty else arg  # type: ignore[return-value]
    if op == "-":
        return value if is_set else arg  # type: ignore[return-value]
    if op in (":?", "?"):
        if (op == ":?" and not is_nonempty) or (op == "?" and not is_set):
            raise InterpolationError(f"required variable {name} is missing: {arg}")
        return value  # type: ignore[return-value]
    if op == ":+":
        return arg if is_nonempty else ""
    return arg if is_set else ""  # op == "+"


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, Tagged):
        yield from _strings(node.value)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def compose_spec_schema() -> dict[str, Any]:
    """The Compose Specification JSON schema that check-jsonschema vendors (offline)."""
    schema_file = importlib.resources.files("check_jsonschema") / (
        "builtin_schemas/vendor/compose-spec.json"
    )
    schema: dict[str, Any] = json.loads(schema_file.read_text())
    return schema


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {name: value for name, _, value in pairs}
    return {name: "" if value is None else str(value) for name, value in env.items()}


def active(services: Mapping[str, Any], profiles: frozenset[str]) -> dict[str, Any]:
    """The services ``docker compose --profile ... up`` starts."""
    return {
        name: svc
        for name, svc in services.items()
        if not svc.get("profiles") or set(svc["profiles"]) & profiles
    }


def long_running(services: Mapping[str, Any]) -> dict[str, Any]:
    """Services that stay up: not one-shots (``restart: "no"``), not CLI profiles."""
    return {
        name: svc
        for name, svc in services.items()
        if svc.get("restart") != "no" and not svc.get("profiles")
    }
