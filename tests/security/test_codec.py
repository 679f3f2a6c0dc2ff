"""The payload codec: sealing, key ids, rotation, plaintext pass-through, key sources."""

from __future__ import annotations

import base64
import json
import logging
import os

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from domain.case import RequestDetails
from whn import temporal
from whn.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecKeyError,
    EncryptionCodec,
    Keyring,
    generate_key,
    write_key_file,
)
from whn.settings import Settings

SECRET = "Karen Smith, 12 Mill Road"


def _payload(text: str = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def _ring(*ids: str) -> Keyring:
    return Keyring.parse(",".join(f"{i}:{generate_key()}" for i in ids))


async def test_a_sealed_payload_names_its_key_and_hides_its_content():
    codec = EncryptionCodec(_ring("k2", "k1"))
    [sealed] = await codec.encode([_payload()])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k2"
    assert set(sealed.metadata) == {"encoding", KEY_ID_METADATA}  # the inner encoding too
    assert b"Karen" not in sealed.SerializeToString()
    [opened] = await codec.decode([sealed])
    assert opened == _payload()


async def test_the_same_payload_seals_differently_each_time():
    codec = EncryptionCodec(_ring("k1"))
    first, second = await codec.encode([_payload(), _payload()])
    assert first.data != second.data  # a fresh nonce per payload


async def test_rotation_old_keys_still_decrypt_new_key_encrypts():
    old = _ring("k1")
    [written_before] = await EncryptionCodec(old).encode([_payload("before")])
    rotated = Keyring(_ring("k2").keys + old.keys)
    codec = EncryptionCodec(rotated)
    [written_after] = await codec.encode([_payload("after")])
    assert written_after.metadata[KEY_ID_METADATA] == b"k2"
    opened = await codec.decode([written_before, written_after])
    assert [json.loads(p.data) for p in opened] == ["before", "after"]


async def test_a_payload_under_a_missing_key_is_refused_naming_the_key_only():
    [sealed] = await EncryptionCodec(_ring("gone")).encode([_payload()])
    with pytest.raises(CodecKeyError, match="'gone'") as caught:
        await EncryptionCodec(_ring("k1")).decode([sealed])
    assert "Karen" not in str(caught.value)


async def test_an_altered_payload_fails_authentication():
    ring = _ring("k1")
    [sealed] = await EncryptionCodec(ring).encode([_payload()])
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(CodecKeyError, match="authentication"):
        await EncryptionCodec(ring).decode([tampered])
    # The key id is bound to the ciphertext: relabelling it under another key fails too.
    other = Keyring(((ring.keys[0][0] + "x", ring.keys[0][1]), *ring.keys))
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"k1x"
    with pytest.raises(CodecKeyError, match="authentication"):
        await EncryptionCodec(other).decode([relabelled])


async def test_plaintext_payloads_written_before_encryption_pass_through():
    codec = EncryptionCodec(_ring("k1"))
    plain = _payload("written before encryption was on")
    assert await codec.decode([plain]) == [plain]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("k1", "id:BASE64"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "32"),
        (f"bad/id:{generate_key()}", "key id"),
        (f"k1:{generate_key()},k1:{generate_key()}", "twice"),
    ],
)
def test_malformed_keys_are_refused_without_echoing_key_material(text, complaint):
    with pytest.raises(CodecKeyError, match=complaint) as caught:
        Keyring.parse(text)
    secret = text.partition(":")[2]
    if len(secret) > 8:
        assert secret not in str(caught.value)


def test_key_files_json_object_json_list_and_lines(tmp_path):
    k2, k1 = generate_key(), generate_key()
    forms = {
        "object.json": json.dumps({"k2": k2, "k1": k1}),
        "list.json": json.dumps({"keys": [{"id": "k2", "key": k2}, {"id": "k1", "key": k1}]}),
        "lines.txt": f"# current first\nk2:{k2}\n\nk1:{k1}  # retired 2026-11\n",
    }
    for name, body in forms.items():
        (tmp_path / name).write_text(body)
        ring = Keyring.from_file(tmp_path / name)
        assert ring.ids() == ["k2", "k1"], name
        assert ring.keys[0][1] == base64.b64decode(k2)


def test_a_generated_key_file_is_private_and_never_overwritten(tmp_path):
    path = tmp_path / "keys.json"
    ring = write_key_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert ring.ids() == ["dev-1"]
    with pytest.raises(FileExistsError):
        write_key_file(path)
    assert base64.b64encode(ring.keys[0][1]).decode() not in repr(ring) + str(ring)


def test_settings_keys_come_first_then_the_key_file(tmp_path):
    write_key_file(tmp_path / "k.json", key_id="from-file")
    settings = Settings(
        _env_prefix="WHN_NOT_SET_",
        codec_keys=f"from-env:{generate_key()}",
        codec_key_file=tmp_path / "k.json",
    )
    ring = temporal.keyring(settings)
    assert ring is not None and ring.ids() == ["from-env", "from-file"]


async def test_the_project_converter_encrypts_messages_and_failures():
    converter = temporal.data_converter()  # the test suite's keys (tests/conftest.py)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    action = RequestDetails(actor="handler-1", question=f"Is {SECRET} right?")
    [sealed] = await converter.encode([action])
    assert sealed.metadata["encoding"] == ENCODING and b"Karen" not in sealed.data
    assert await converter.decode([sealed], [RequestDetails]) == [action]

    failure = Failure()
    try:
        raise ApplicationError(f"could not reach {SECRET}", type="Example")
    except ApplicationError as err:
        await converter.encode_failure(err, failure)
    raw = failure.SerializeToString()
    assert b"Karen" not in raw, "failure message or stack trace left in plaintext"
    assert failure.message == "Encoded failure"
    decoded = await converter.decode_failure(failure)
    assert SECRET in str(decoded)


def test_no_key_is_a_refusal_unless_plaintext_is_asked_for_then_one_warning(caplog, tmp_path):
    temporal._converter.cache_clear()
    unset = Settings(_env_prefix="WHN_NOT_SET_", data_dir=tmp_path)
    with pytest.raises(CodecKeyError, match="WHN_CODEC_KEYS or WHN_CODEC_KEY_FILE"):
        temporal.data_converter(unset)
    allowed = unset.model_copy(update={"codec_required": False})
    with caplog.at_level(logging.WARNING, logger="whn.temporal"):
        first = temporal.data_converter(allowed)
        temporal.data_converter(allowed)
    assert first.payload_codec is None
    warnings = [r for r in caplog.records if "plaintext" in r.getMessage()]
    assert len(warnings) == 1


def test_the_dev_stack_key_under_data_dir_is_used_when_nothing_is_set(tmp_path):
    temporal._converter.cache_clear()
    unset = Settings(_env_prefix="WHN_NOT_SET_", data_dir=tmp_path)
    ring = write_key_file(tmp_path / "codec-keys.json")
    assert unset.payload_key_file() == tmp_path / "codec-keys.json"
    assert temporal.keyring(unset) == ring
    # A key given explicitly wins: the dev key is not mixed in.
    explicit = unset.model_copy(update={"codec_keys": SecretStr(f"k9:{generate_key()}")})
    assert explicit.payload_key_file() is None
    assert temporal.keyring(explicit).ids() == ["k9"]
