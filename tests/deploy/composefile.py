"""The compose reader the tests share with ``deploy/lint.py`` (it lives in deploy/)."""

from deploy.composefile import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    InterpolationError,
    active,
    compose_spec_schema,
    environment,
    interpolate,
    load_compose,
    load_stack,
    load_yaml,
    long_running,
    merge,
    read_env_file,
    variables,
)

__all__ = [
    "COMPOSE_FILE",
    "ENV_EXAMPLE",
    "ROOT",
    "InterpolationError",
    "active",
    "compose_spec_schema",
    "environment",
    "interpolate",
    "load_compose",
    "load_stack",
    "load_yaml",
    "long_running",
    "merge",
    "read_env_file",
    "variables",
]
