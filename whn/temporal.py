"""The one Temporal client configuration: data converter, search attributes, connect_client."""

from __future__ import annotations

import dataclasses
import logging
from functools import lru_cache
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, TLSConfig

from whn.attributes import SEARCH_ATTRIBUTES
from whn.codec import CodecKeyError, EncryptionCodec, Keyring
from whn.settings import Settings, get_settings

log = logging.getLogger(__name__)

_CLI_TYPE = {
    "KEYWORD": "Keyword",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "INT": "Int",
    "TEXT": "Text",
    "FLOAT": "Double",
}


def search_attribute_cli_args() -> list[str]:
    """``--search-attribute Name=Type`` pairs for ``temporal server start-dev``."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")
        args += ["--search-attribute", f"{key.name}={_CLI_TYPE[kind]}"]
    return args


NO_KEY = (
    "no payload encryption key: set WHN_CODEC_KEYS or WHN_CODEC_KEY_FILE (or run whn-dev"
    " here, which keeps one in {dev_key}); nothing is sent to Temporal unencrypted"
    " unless WHN_CODEC_REQUIRED=false"
)


def keyring(settings: Settings) -> Keyring | None:
    """The payload keys ``settings`` configure: ``codec_keys`` first, then the key file
    (``codec_key_file``, or the dev stack's under ``data_dir`` when neither is set)."""
    keys = settings.codec_keys.get_secret_value() if settings.codec_keys else None
    return _keyring(keys, settings.payload_key_file())


def _keyring(keys: str | None, key_file: Path | None) -> Keyring | None:
    return Keyring.combine(
        Keyring.parse(keys) if keys and keys.strip() else None,
        Keyring.from_file(key_file) if key_file else None,
    )


def data_converter(settings: Settings | None = None) -> DataConverter:
    """The project's data converter, used by worker, starter, admin, replayer and tests.

    Pydantic JSON payloads, encrypted by ``whn.codec`` (failure messages and stack
    traces too). Without a key this raises CodecKeyError (fails closed), unless
    ``codec_required`` is false: then payloads stay plaintext and a warning is logged once.
    """
    s = settings or get_settings()
    keys = s.codec_keys.get_secret_value() if s.codec_keys else None
    return _converter(keys, s.payload_key_file(), s.codec_required, s.dev_key_file())


@lru_cache(maxsize=8)
def _converter(
    keys: str | None, key_file: Path | None, required: bool, dev_key: Path
) -> DataConverter:
    ring = _keyring(keys, key_file)
    if ring is None:
        if required:
            raise CodecKeyError(NO_KEY.format(dev_key=dev_key))
        log.warning(
            "no payload encryption key configured (WHN_CODEC_KEYS / WHN_CODEC_KEY_FILE):"
            " workflow payloads, including reporters' personal data, are stored in plaintext"
        )
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def ensure_encrypted(converter: DataConverter, *, required: bool) -> None:
    """Refuse (CodecKeyError) a converter that would write plaintext, unless not ``required``.

    Library functions that take an injected client call this before sending anything, so
    a client built with the SDK's own converter cannot leak a report either.
    """
    if required and not isinstance(converter.payload_codec, EncryptionCodec):
        raise CodecKeyError(
            "this Temporal client does not encrypt payloads: connect it with"
            " whn.temporal.connect_client (keys from WHN_CODEC_KEYS or WHN_CODEC_KEY_FILE);"
            " nothing is sent unencrypted unless WHN_CODEC_REQUIRED=false"
        )


async def connect_client(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    lazy: bool = False,
    retry: RetryConfig | None = None,
) -> Client:
    """Connect to Temporal with the project's data converter and trace propagation.

    ``lazy`` connects on first use (a server that starts before Temporal); the payload
    keys are checked at once either way. ``retry`` bounds how long a call retries while
    Temporal is unreachable (the SDK's default: about 10 s).
    """
    from whn.telemetry import tracing_interceptor

    return await Client.connect(
        settings.temporal_address,
        lazy=lazy,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=[tracing_interceptor()],
        runtime=runtime,
        retry_config=retry,
        tls=tls_config(settings),
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS from the configured files; plain TLS for an API key alone; else no TLS."""
    files = (settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca)
    if not any(files):
        return settings.temporal_api_key is not None
    if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
        raise ValueError("WHN_TEMPORAL_TLS_CERT and WHN_TEMPORAL_TLS_KEY go together")
    return TLSConfig(
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=(
            settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None
        ),
        server_root_ca_cert=(
            settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None
        ),
    )


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    """Names of the project's search attributes not registered on ``namespace``."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    have = set(response.custom_attributes)
    return [key.name for key in SEARCH_ATTRIBUTES if key.name not in have]


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the project's search attributes that ``namespace`` lacks; return their names."""
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    try:
        missing = set(await missing_search_attributes(client, namespace))
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server
            raise
        # It cannot list them: add one at a time, and one already there is no error.
        added = []
        for key in SEARCH_ATTRIBUTES:
            try:
                await client.operator_service.add_search_attributes(
                    AddSearchAttributesRequest(
                        namespace=namespace,
                        search_attributes={key.name: key.indexed_value_type},  # type: ignore[dict-item]
                    )
                )
                added.append(key.name)
            except RPCError as exists:
                if exists.status != RPCStatusCode.ALREADY_EXISTS:
                    raise
        return sorted(added)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    key.name: key.indexed_value_type  # type: ignore[misc]
                    for key in SEARCH_ATTRIBUTES
                    if key.name in missing
                },
            )
        )
    return sorted(missing)
