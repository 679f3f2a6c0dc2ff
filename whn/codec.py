"""Payload encryption: AES-256-GCM over every Temporal payload, with rotatable keys.

Each payload the data converter produces (inputs, results, signals, updates, memos,
activity summaries and, through ``DefaultFailureConverterWithEncodedAttributes``,
failure messages and stack traces) is serialised whole and sealed::

    metadata  encoding=binary/encrypted, encryption-key-id=<id>
    data      12-byte nonce || ciphertext || 16-byte tag   (AAD: the key id)

Keys are named; the first key of a keyring encrypts and every key decrypts, so a key
is rotated by putting a new one first and keeping the old ones until no history needs
them. Payloads that are not ``binary/encrypted`` (written before encryption was turned
on) pass through decode untouched.

Keys come from ``WHN_CODEC_KEYS`` (``k2:BASE64,k1:BASE64``) and/or the file named by
``WHN_CODEC_KEY_FILE``: JSON (``{"keys": [{"id": "k2", "key": "BASE64"}, ...]}`` or
``{"k2": "BASE64", ...}``) or lines of ``id:BASE64`` (``#`` comments allowed). Each key
is 32 random bytes, base64-encoded: ``python -m whn.codec`` prints a new one.

CodecKeyError (ValueError)   a key is malformed, or a payload names a key we lack
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecKeyError(ValueError):
    """A key is malformed or missing; the message never contains key material."""


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys: ``keys[0]`` encrypts, all of them decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise CodecKeyError("a keyring needs at least one key")
        seen: dict[str, bytes] = {}
        for key_id, key in self.keys:
            if not _KEY_ID.match(key_id):
                raise CodecKeyError(f"key id {key_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")
            if len(key) != _KEY_BYTES:
                raise CodecKeyError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
            if key_id in seen and seen[key_id] != key:
                raise CodecKeyError(f"key id {key_id!r} is given twice with different keys")
            seen[key_id] = key

    @property
    def current_id(self) -> str:
        """The id of the key that encrypts."""
        return self.keys[0][0]

    def ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]

    def __repr__(self) -> str:  # never print key material
        return f"Keyring(ids={self.ids()})"

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Keys from ``id:BASE64`` pairs separated by commas, spaces or new lines."""
        return cls(tuple(_parse_pairs(re.split(r"[,\s]+", text.strip()))))

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        """Keys from a JSON file or a file of ``id:BASE64`` lines (see the module doc)."""
        try:
            text = path.read_text()
        except OSError as err:
            raise CodecKeyError(f"cannot read key file {path}: {err.strerror}") from None
        if text.lstrip().startswith(("{", "[")):
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                raise CodecKeyError(f"key file {path} is not valid JSON") from None
            return cls(tuple(_json_keys(data, path)))
        lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        return cls(tuple(_parse_pairs(line for line in lines if line)))

    @classmethod
    def combine(cls, *rings: Keyring | None) -> Keyring | None:
        """One keyring from several, in order (the first key of the first encrypts)."""
        keys: list[tuple[str, bytes]] = []
        for ring in rings:
            if ring is not None:
                keys += [k for k in ring.keys if k not in keys]
        return cls(tuple(keys)) if keys else None


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded."""
    return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def write_key_file(path: Path, key_id: str = "dev-1") -> Keyring:
    """Write a new one-key JSON key file readable only by its owner; return its keyring."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": [{"id": key_id, "key": generate_key()}]}, indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(body)
    return Keyring.from_file(path)


def _decode_key(key_id: str, value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CodecKeyError(f"key {key_id!r} is not valid base64") from None


def _parse_pairs(items: Iterable[str]) -> Iterable[tuple[str, bytes]]:
    for item in items:
        if not item:
            continue
        key_id, sep, value = item.partition(":")
        if not sep:
            raise CodecKeyError("each key is written id:BASE64 (e.g. k1:...)")
        yield key_id.strip(), _decode_key(key_id.strip(), value)


def _json_keys(data: object, path: Path) -> Iterable[tuple[str, bytes]]:
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"]
    if isinstance(data, dict):
        for key_id, value in data.items():
            if not isinstance(value, str):
                raise CodecKeyError(f"key file {path}: key {key_id!r} is not a string")
            yield str(key_id), _decode_key(str(key_id), value)
    elif isinstance(data, list):
        for entry in data:
            if not (isinstance(entry, dict) and {"id", "key"} <= entry.keys()):
                raise CodecKeyError(f'key file {path}: each key is {{"id": ..., "key": ...}}')
            yield str(entry["id"]), _decode_key(str(entry["id"]), str(entry["key"]))
    else:
        raise CodecKeyError(f"key file {path}: expected an object or a list of keys")


class EncryptionCodec(PayloadCodec):
    """The AES-256-GCM payload codec; plaintext payloads pass through decode."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Seal each payload with the current key."""
        key_id = self.keyring.current_id
        cipher = self._ciphers[key_id]
        out = []
        for payload in payloads:
            nonce = secrets.token_bytes(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open each sealed payload with the key it names; others are returned as they are."""
        return [self._open(p) for p in payloads]

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(
                f"payload encrypted with key {key_id!r}, which is not configured"
                f" (have: {', '.join(self.keyring.ids())})"
            )
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise CodecKeyError(
                f"payload under key {key_id!r} failed authentication (wrong key or altered)"
            ) from None
        return Payload.FromString(plain)


def main() -> None:
    """``python -m whn.codec``: print a new key as ``id:BASE64``."""
    import sys

    key_id = sys.argv[1] if len(sys.argv) > 1 else "k1"
    print(f"{key_id}:{generate_key()}")


if __name__ == "__main__":
    main()
