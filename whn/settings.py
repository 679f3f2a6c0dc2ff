"""Typed settings, read once at the edge (worker, starter, admin, web, dev stack).

Every entry point takes its settings from ``get_settings()``: the environment is read
once per process, and a malformed value is a ``SettingsError`` naming the variable
(one line, no traceback, from every command).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.case import TimingFields, Timings


class Settings(BaseSettings, TimingFields):
    """Configuration from ``WHN_*`` environment variables (see the README)."""

    # An empty WHN_X is as good as unset: a compose file can pass "${WHN_X-}" through.
    model_config = SettingsConfigDict(env_prefix="WHN_", extra="ignore", env_ignore_empty=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    # A Temporal cluster or Temporal Cloud: mTLS files and/or an API key (TLS on with either).
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_api_key: SecretStr | None = None
    task_queue: str = "whn-cases"
    database_url: str = "postgresql://postgres@127.0.0.1:55432/whn"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "whathappensnext@cambs.police.example"
    data_dir: Path = Path(".whn")
    ui_url: str = "http://localhost:8233"

    force_code: str = "35"
    force_name: str = "Cambridgeshire Constabulary"
    control_room_email: str = "control-room@cambs.police.example"
    supervisor_email: str = "duty-supervisor@cambs.police.example"
    victim_support_email: str = "referrals@victimsupport.example"
    team_email_template: str = "{team}@cambs.police.example"

    # The waits and deadlines (WHN_REVIEW_DEADLINE, ...) are TimingFields', declared there.

    staff_id: str | None = Field(default=None)
    # whn-web, the HTTP edge (web/): where it listens, and what it tells a client to wait
    # before trying again when Temporal or PostgreSQL is down (503 Retry-After, seconds).
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    web_retry_after: int = 5
    # The longest a request waits on Temporal (a hung server, a first connection) before
    # its 503: a client retrying the same submission_id never starts a second case.
    web_request_timeout: float = 10.0
    team_webhooks: dict[str, str] = Field(default_factory=dict)
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    max_cached_workflows: int = 2_000
    # Run workflow code inside the SDK's sandbox (re-imports workflow modules per case and
    # checks every call for non-determinism). Off in production: measured in bench/, it
    # costs about a third of the worker's CPU. The test suite and the replay tests run
    # every workflow inside it, so a non-deterministic call still fails CI.
    workflow_sandbox: bool = False
    db_pool_size: int = 20
    # The event loop of the worker and whn-web: the standard library's, or uvloop's (libuv,
    # the loop's own machinery in C). Measured in docs/deployment.md ("The event loop").
    event_loop: Literal["uvloop", "asyncio"] = "asyncio"

    # Payload encryption (whn.codec). Keys: "k2:BASE64,k1:BASE64" (the first encrypts)
    # and/or a key file; with neither, the dev stack's key under data_dir if there is one
    # (see payload_key_file). With no key at all every client refuses to send anything
    # (fails closed) unless codec_required is set false explicitly, when payloads are
    # plaintext and a warning is logged.
    codec_keys: SecretStr | None = None
    codec_key_file: Path | None = None
    codec_required: bool = True
    # The codec server for the Temporal UI (whn-codec-server; whn-dev runs one).
    codec_host: str = "127.0.0.1"
    codec_port: int = 8081
    codec_token: SecretStr | None = None
    codec_origins: str | None = None  # comma-separated; default: the origin of ui_url
    # The UI's OIDC login (docs/deployment.md): access tokens signed by the issuer's keys
    # (JWKS), for this audience, whose claim (a dotted path, e.g. realm_access.roles) holds
    # one of the comma-separated roles or groups. Unset: only codec_token is accepted.
    codec_oidc_issuer: str | None = None
    codec_oidc_audience: str | None = None
    codec_oidc_jwks_url: str | None = None  # default: the issuer's discovery document
    codec_oidc_claim: str = "groups"
    codec_oidc_roles: str | None = None
    # The case store's password when it is kept out of database_url (a secret file).
    database_password: SecretStr | None = None
    # The reporter's page (/track, web/track.py): the public address the letters link to,
    # how long a link and a signed-in session last, the sign-in lockout (failures per
    # receipt code and per client within track_lockout, then locked for as long; each
    # failure answered after a delay growing from track_failure_delay), and the secret of
    # its tokens (unset: derived from the payload keys, so the worker and whn-web agree).
    public_url: str = "http://localhost:8000"
    track_link_ttl: timedelta = timedelta(days=30)
    track_session_ttl: timedelta = timedelta(minutes=30)
    track_code_failures: int = 5
    track_client_failures: int = 20
    track_lockout: timedelta = timedelta(minutes=15)
    track_failure_delay: timedelta = timedelta(milliseconds=250)
    track_secret: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """``WHN_<NAME>_FILE`` names a file holding a secret (Docker or Kubernetes secrets)."""
        if isinstance(data, dict):
            for name in _FILE_SECRETS:
                variable = f"WHN_{name.upper()}_FILE"
                path = os.environ.get(variable)
                if path and not data.get(name):
                    data[name] = _read_secret(variable, Path(path))
        return data

    @model_validator(mode="after")
    def _password_into_dsn(self) -> Settings:
        if self.database_password is not None:
            self.database_url = _with_password(
                self.database_url, self.database_password.get_secret_value()
            )
        return self

    def dev_key_file(self) -> Path:
        """Where ``whn-dev`` keeps its development payload key."""
        return self.data_dir / "codec-keys.json"

    def payload_key_file(self) -> Path | None:
        """The key file to read: ``codec_key_file``, else the dev stack's when no key is set.

        So a second shell in the repository where ``whn-dev`` runs finds its key with no
        ``WHN_*`` variable set.
        """
        if self.codec_key_file is not None:
            return self.codec_key_file
        configured = self.codec_keys is not None and self.codec_keys.get_secret_value().strip()
        if not configured and self.dev_key_file().is_file():
            return self.dev_key_file()
        return None

    def timings(self) -> Timings:
        """The case timings these settings give (every ``TimingFields`` field)."""
        return Timings(**{name: getattr(self, name) for name in TimingFields.model_fields})


# Every secret setting (typed SecretStr) also reads WHN_<NAME>_FILE: a new one needs nothing more.
_FILE_SECRETS = tuple(
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in (getattr(field.annotation, "__args__", None) or (field.annotation,))
)


def _read_secret(variable: str, path: Path) -> str:
    try:
        value = path.read_text().strip()
    except OSError as err:
        raise ValueError(f"{variable}: cannot read {path}: {err.strerror}") from None
    if not value:
        raise ValueError(f"{variable}: {path} is empty")
    return value


def _with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is not None:
        raise ValueError("WHN_DATABASE_PASSWORD is set but WHN_DATABASE_URL has a password too")
    user, _, host = parts.netloc.rpartition("@")
    if not user:
        raise ValueError("WHN_DATABASE_PASSWORD needs a user name in WHN_DATABASE_URL")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


class SettingsError(ValueError):
    """A ``WHN_*`` variable could not be read; the message names it (never its value)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    try:
        return Settings()
    except ValidationError as err:
        first = err.errors()[0]
        name = f"WHN_{str(first['loc'][0]).upper()}: " if first["loc"] else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise SettingsError(f"{name}{message}{more}") from None


def settings_or_exit(prog: str) -> Settings:
    """``get_settings()`` for an entry point: a malformed setting is one line and exit 1."""
    try:
        return get_settings()
    except SettingsError as err:
        print(f"{prog}: configuration: {err}", file=sys.stderr)
        raise SystemExit(1) from None
