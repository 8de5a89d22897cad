"""Envelope encryption: AAD binding, tamper detection, key rotation, VAULT_KEYS, masked secrets."""

from __future__ import annotations

import base64
import copy
import json
import os
import pickle
from dataclasses import fields, replace
from typing import Any

import pytest
from pydantic import BaseModel

from app.kit.envelope import (
    FORMAT_VERSION,
    DecryptionError,
    Envelope,
    KeyProvider,
    LocalKeyProvider,
    Sealed,
    SecretValue,
    VaultKeyError,
)

CONTEXT = {"purpose": "vault", "user_id": "user-1", "connector": "github"}
TOKEN = "ghp_s3cretT0kenValue1234567890abcdef"  # noqa: S105


def key_b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def provider(*kids: str) -> tuple[LocalKeyProvider, dict[str, bytes]]:
    keys = {kid: os.urandom(32) for kid in kids}
    value = ",".join(f"{kid}:{key_b64(key)}" for kid, key in keys.items())
    return LocalKeyProvider.from_env_value(value), keys


@pytest.fixture
def keys() -> dict[str, bytes]:
    return {"k1": os.urandom(32), "k2": os.urandom(32)}


@pytest.fixture
def envelope(keys: dict[str, bytes]) -> Envelope:
    return Envelope(LocalKeyProvider(keys.items()))


def with_field(sealed: Sealed, name: str, value: bytes) -> Sealed:
    changes: dict[str, Any] = {name: value}
    return replace(sealed, **changes)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def assert_no_secrets(message: str, *secrets: bytes | str) -> None:
    for secret in secrets:
        raw = secret.encode() if isinstance(secret, str) else secret
        for form in (raw, raw.hex(), key_b64(raw), repr(raw)):
            text = form if isinstance(form, str) else form.decode("latin-1")
            assert text not in message


# --- round trip and freshness -------------------------------------------------------------


async def test_seal_then_open_round_trips_bytes_and_secret(envelope: Envelope) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    assert await envelope.open(sealed, context=CONTEXT) == TOKEN.encode()

    sealed = await envelope.seal(SecretValue(TOKEN), context=CONTEXT)
    opened = await envelope.open_secret(sealed, context=CONTEXT)
    assert isinstance(opened, SecretValue)
    assert opened.reveal() == TOKEN


async def test_sealed_fields_have_the_documented_shape(envelope: Envelope) -> None:
    sealed = await envelope.seal(b"x", context=CONTEXT)
    assert sealed.kid == "k1"
    assert sealed.version == FORMAT_VERSION
    assert len(sealed.nonce) == 12
    assert len(sealed.ciphertext) == 1 + 16  # plaintext + GCM tag
    assert len(sealed.wrapped_key) == 12 + 32 + 16  # nonce || wrapped 256-bit key || tag
    assert TOKEN.encode() not in repr(await envelope.seal(TOKEN.encode(), context=CONTEXT)).encode()


async def test_empty_plaintext_round_trips(envelope: Envelope) -> None:
    sealed = await envelope.seal(b"", context=CONTEXT)
    assert await envelope.open(sealed, context=CONTEXT) == b""


async def test_each_seal_uses_a_fresh_data_key_and_nonce(envelope: Envelope) -> None:
    first = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    second = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    assert first.kid == second.kid
    assert first.nonce != second.nonce
    assert first.wrapped_key != second.wrapped_key
    assert first.ciphertext != second.ciphertext
    # The wrapped keys' own nonces differ too, and each unwraps to a different data key.
    assert first.wrapped_key[:12] != second.wrapped_key[:12]
    p = envelope.provider
    k1 = await p.unwrap(first.kid, first.wrapped_key, context=CONTEXT)
    k2 = await p.unwrap(second.kid, second.wrapped_key, context=CONTEXT)
    assert len(k1) == len(k2) == 32
    assert k1 != k2


def test_local_key_provider_satisfies_the_protocol(envelope: Envelope) -> None:
    assert isinstance(envelope.provider, KeyProvider)


# --- AAD binding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        {**CONTEXT, "user_id": "user-2"},
        {**CONTEXT, "connector": "gitlab"},
        {**CONTEXT, "purpose": "signing-key"},
        {"purpose": "vault", "user_id": "user-1"},
        {**CONTEXT, "extra": ""},
    ],
    ids=["user", "connector", "purpose", "missing-key", "extra-key"],
)
async def test_opening_with_another_context_fails(
    envelope: Envelope, other: dict[str, str]
) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    with pytest.raises(DecryptionError):
        await envelope.open(sealed, context=other)
    with pytest.raises(DecryptionError):
        await envelope.rewrap(replace(sealed, kid="k2"), context=other)


async def test_context_key_order_does_not_matter(envelope: Envelope) -> None:
    sealed = await envelope.seal(b"x", context=CONTEXT)
    reordered = dict(reversed(list(CONTEXT.items())))
    assert await envelope.open(sealed, context=reordered) == b"x"


@pytest.mark.parametrize(
    ("sealed_with", "opened_with"),
    [
        ({"a": "b|c"}, {"a|b": "c"}),
        ({"a": "b", "c": "d"}, {"a": 'b","c":"d'}),
        ({"a": "b=c"}, {"a=b": "c"}),
        ({"a": "b\x00c"}, {"a\x00b": "c"}),
        ({"user_id": "1", "connector": "2"}, {"user_id": "12", "connector": ""}),
    ],
)
async def test_canonical_context_encoding_is_unambiguous(
    envelope: Envelope, sealed_with: dict[str, str], opened_with: dict[str, str]
) -> None:
    sealed = await envelope.seal(b"x", context=sealed_with)
    with pytest.raises(DecryptionError):
        await envelope.open(sealed, context=opened_with)


async def test_context_must_be_a_non_empty_str_mapping(envelope: Envelope) -> None:
    with pytest.raises(ValueError, match="empty"):
        await envelope.seal(b"x", context={})
    with pytest.raises(TypeError):
        await envelope.seal(b"x", context={"user_id": 1})  # type: ignore[dict-item]


async def test_seal_refuses_str_plaintext(envelope: Envelope) -> None:
    with pytest.raises(TypeError):
        await envelope.seal(TOKEN, context=CONTEXT)  # type: ignore[arg-type]


# --- tamper detection ---------------------------------------------------------------------


async def test_flipping_any_byte_of_any_field_fails(envelope: Envelope) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    for name in ("ciphertext", "nonce", "wrapped_key"):
        data: bytes = getattr(sealed, name)
        for index in range(len(data)):
            tampered = with_field(sealed, name, flip(data, index))
            with pytest.raises(DecryptionError):
                await envelope.open(tampered, context=CONTEXT)


@pytest.mark.parametrize("name", ["ciphertext", "nonce", "wrapped_key"])
async def test_truncated_or_extended_fields_fail(envelope: Envelope, name: str) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    data: bytes = getattr(sealed, name)
    for altered in (data[:-1], data + b"\x00", b""):
        with pytest.raises(DecryptionError):
            await envelope.open(with_field(sealed, name, altered), context=CONTEXT)


async def test_swapping_ciphertexts_between_rows_fails(envelope: Envelope) -> None:
    a = await envelope.seal(b"alice's token", context=CONTEXT)
    b = await envelope.seal(b"bob's token", context=CONTEXT)
    with pytest.raises(DecryptionError):
        await envelope.open(replace(a, ciphertext=b.ciphertext, nonce=b.nonce), context=CONTEXT)
    with pytest.raises(DecryptionError):
        await envelope.open(replace(a, wrapped_key=b.wrapped_key), context=CONTEXT)


# --- keys and versions --------------------------------------------------------------------


async def test_wrong_master_key_fails(envelope: Envelope) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    other, _ = provider("k1")  # same kid, different key material
    with pytest.raises(DecryptionError):
        await Envelope(other).open(sealed, context=CONTEXT)


async def test_wrong_kid_fails(envelope: Envelope) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    with pytest.raises(DecryptionError):
        await envelope.open(replace(sealed, kid="k2"), context=CONTEXT)


async def test_unknown_kid_fails(envelope: Envelope) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    for kid in ("nope", "", "k1 ", "x" * 1000):
        with pytest.raises(DecryptionError):
            await envelope.open(replace(sealed, kid=kid), context=CONTEXT)


@pytest.mark.parametrize("version", [0, 2, -1, True])
async def test_version_mismatch_fails(envelope: Envelope, version: int) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    with pytest.raises(DecryptionError):
        await envelope.open(replace(sealed, version=version), context=CONTEXT)


async def test_rewrap_moves_to_the_new_active_key_and_the_old_key_can_go() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    before = Envelope(LocalKeyProvider([("old", old_key)]))
    sealed = await before.seal(SecretValue(TOKEN), context=CONTEXT)
    assert sealed.kid == "old"

    during = Envelope(LocalKeyProvider([("new", new_key), ("old", old_key)]))
    assert (await during.open_secret(sealed, context=CONTEXT)).reveal() == TOKEN
    rewrapped = await during.rewrap(sealed, context=CONTEXT)
    assert rewrapped.kid == "new"
    assert rewrapped.ciphertext == sealed.ciphertext
    assert rewrapped.nonce == sealed.nonce
    assert rewrapped.version == sealed.version
    assert rewrapped.wrapped_key != sealed.wrapped_key
    assert await during.rewrap(rewrapped, context=CONTEXT) is rewrapped

    after = Envelope(LocalKeyProvider([("new", new_key)]))
    assert (await after.open_secret(rewrapped, context=CONTEXT)).reveal() == TOKEN
    with pytest.raises(DecryptionError):
        await after.open(sealed, context=CONTEXT)


async def test_rewrap_with_a_wrong_version_fails(keys: dict[str, bytes]) -> None:
    sealed = await Envelope(LocalKeyProvider([("k2", keys["k2"])])).seal(b"x", context=CONTEXT)
    with pytest.raises(DecryptionError):
        await Envelope(LocalKeyProvider(keys.items())).rewrap(
            replace(sealed, version=2), context=CONTEXT
        )


async def test_rewrapped_row_is_still_bound_to_its_context(keys: dict[str, bytes]) -> None:
    sealed = await Envelope(LocalKeyProvider([("k2", keys["k2"])])).seal(b"x", context=CONTEXT)
    envelope = Envelope(LocalKeyProvider(keys.items()))
    rewrapped = await envelope.rewrap(sealed, context=CONTEXT)
    with pytest.raises(DecryptionError):
        await envelope.open(rewrapped, context={**CONTEXT, "user_id": "user-2"})


async def test_open_secret_of_non_utf8_plaintext_is_a_clean_error(envelope: Envelope) -> None:
    sealed = await envelope.seal(b"\xff\xfe", context=CONTEXT)
    with pytest.raises(DecryptionError) as caught:
        await envelope.open_secret(sealed, context=CONTEXT)
    assert "\\xff" not in str(caught.value)
    assert caught.value.__suppress_context__


async def test_decryption_errors_reveal_no_plaintext_or_key_bytes(
    envelope: Envelope, keys: dict[str, bytes]
) -> None:
    sealed = await envelope.seal(TOKEN.encode(), context=CONTEXT)
    data_key = await envelope.provider.unwrap(sealed.kid, sealed.wrapped_key, context=CONTEXT)
    attempts = [
        replace(sealed, ciphertext=flip(sealed.ciphertext, 0)),
        replace(sealed, wrapped_key=flip(sealed.wrapped_key, 20)),
        replace(sealed, kid="unknown"),
        replace(sealed, version=9),
    ]
    for attempt in attempts:
        for ctx in (CONTEXT, {**CONTEXT, "user_id": "user-2"}):
            with pytest.raises(DecryptionError) as caught:
                await envelope.open(attempt, context=ctx)
            message = str(caught.value) + repr(caught.value)
            assert_no_secrets(message, TOKEN, data_key, *keys.values())
            # The GCM failure is not chained into tracebacks.
            assert caught.value.__suppress_context__
            assert caught.value.__cause__ is None


# --- VAULT_KEYS ---------------------------------------------------------------------------


def test_vault_keys_multi_key_first_is_active() -> None:
    k1, k2, k3 = os.urandom(32), os.urandom(32), os.urandom(32)
    value = (
        f"2025-01:{key_b64(k1)}, old_key.2:{base64.urlsafe_b64encode(k2).decode()},"
        f"a:{base64.urlsafe_b64encode(k3).decode().rstrip('=')}"
    )
    p = LocalKeyProvider.from_env_value(value)
    assert p.active_kid == "2025-01"
    assert p.kids() == ("2025-01", "old_key.2", "a")
    assert key_b64(k1) not in repr(p)


async def test_vault_keys_decode_to_the_same_key_in_every_base64_form() -> None:
    key = b"\xfb\xff" * 16  # encodes with '+' / '/' in standard and '-' / '_' in urlsafe
    standard, urlsafe = key_b64(key), base64.urlsafe_b64encode(key).decode()
    assert standard != urlsafe
    sealed = await Envelope(LocalKeyProvider.from_env_value(f"k:{standard}")).seal(
        b"x", context=CONTEXT
    )
    for form in (urlsafe, urlsafe.rstrip("="), standard.rstrip("=")):
        opened = await Envelope(LocalKeyProvider.from_env_value(f"k:{form}")).open(
            sealed, context=CONTEXT
        )
        assert opened == b"x"


def test_the_test_suite_vault_key_parses() -> None:
    from tests.conftest import TEST_VAULT_KEYS

    assert LocalKeyProvider.from_env_value(TEST_VAULT_KEYS).active_kid == "test1"


GOOD = key_b64(b"\x01" * 32)
SHORT = key_b64(b"\x02" * 31)
LONG = key_b64(b"\x03" * 33)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (f"k1:{SHORT}", "entry 1"),
        (f"k1:{LONG}", "entry 1"),
        (f"k1:{GOOD},k2:{SHORT}", "entry 2"),
        (f"k1:{GOOD[:-2]}!!", "entry 1"),
        (f"k1:{GOOD[:10]} {GOOD[10:]}", "entry 1"),
        (f"k1:{GOOD[:-1]}+_", "entry 1"),  # mixed alphabets
        (f"k1:{GOOD}=", "entry 1"),  # too much padding
        (f"k1:{GOOD[:-2]}=", "entry 1"),  # padding that does not fit the length
        (f"k1:{GOOD[:-3]}", "entry 1"),  # 41 characters: no base64 has that length
        ("k1:", "entry 1"),
        (GOOD, "entry 1"),  # missing colon: the whole entry is the key
        (f"k1:{GOOD},{GOOD}", "entry 2"),
        (f"k1:{GOOD},k1:{GOOD}", "entry 2"),
        (f"k1:{GOOD},", "entry 2"),
        (f",k1:{GOOD}", "entry 1"),
        (f":{GOOD}", "entry 1"),
        (f"{'k' * 33}:{GOOD}", "entry 1"),
        (f"bad kid:{GOOD}", "entry 1"),
        (f"k/1:{GOOD}", "entry 1"),
        (f"{GOOD}:{GOOD}", "entry 1"),
    ],
    ids=[
        "empty",
        "blank",
        "short",
        "long",
        "short-second",
        "bad-base64",
        "inner-space",
        "mixed-alphabet",
        "over-padded",
        "wrong-padding",
        "bad-length",
        "no-key",
        "missing-colon",
        "missing-colon-second",
        "duplicate-kid",
        "trailing-comma",
        "leading-comma",
        "empty-kid",
        "long-kid",
        "space-in-kid",
        "slash-in-kid",
        "key-as-kid",
    ],
)
def test_bad_vault_keys_name_the_variable_but_not_the_key(value: str, needle: str) -> None:
    with pytest.raises(VaultKeyError) as caught:
        LocalKeyProvider.from_env_value(value)
    message = str(caught.value)
    assert "VAULT_KEYS" in message
    assert needle in message
    for fragment in (GOOD, SHORT, LONG, GOOD[:20], GOOD[-20:], SHORT[:20], LONG[:20]):
        assert fragment not in message
    assert caught.value.__cause__ is None


def test_duplicate_kid_message_points_at_both_entries() -> None:
    with pytest.raises(VaultKeyError, match="entry 3 repeats the key id of entry 1"):
        LocalKeyProvider.from_env_value(f"a:{GOOD},b:{GOOD},a:{GOOD}")


def test_provider_constructor_checks_keys() -> None:
    with pytest.raises(VaultKeyError):
        LocalKeyProvider([])
    with pytest.raises(VaultKeyError):
        LocalKeyProvider([("k", b"short")])
    with pytest.raises(VaultKeyError):
        LocalKeyProvider([("k", b"\x00" * 32), ("k", b"\x01" * 32)])


# --- SecretValue --------------------------------------------------------------------------


def test_secret_value_never_renders_its_value() -> None:
    secret = SecretValue(TOKEN)
    renderings = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret!s}",
        f"{secret:>80}",
        format(secret, ""),
        "%s %r" % (secret, secret),  # noqa: UP031
        "{} {!r}".format(secret, secret),  # noqa: UP032
        repr([secret]),
        repr({"token": secret}),
        json.dumps({"token": secret}, default=str),
    ]
    for text in renderings:
        assert TOKEN not in text
    assert repr(secret) == str(secret) == "***"
    assert not hasattr(secret, "__dict__")


def test_secret_value_is_not_json_serialisable() -> None:
    with pytest.raises(TypeError):
        json.dumps(SecretValue(TOKEN))
    with pytest.raises(TypeError):
        json.dumps({"token": SecretValue(TOKEN)})


def test_secret_value_cannot_be_pickled() -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(SecretValue(TOKEN), protocol=protocol)


def test_secret_value_copies_are_itself() -> None:
    secret = SecretValue(TOKEN)
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"s": secret})["s"] is secret


def test_secret_value_equality_and_immutability() -> None:
    assert SecretValue(TOKEN) == SecretValue(TOKEN)
    assert SecretValue(TOKEN) != SecretValue(TOKEN + "x")
    assert SecretValue(TOKEN) != TOKEN
    with pytest.raises(TypeError):
        hash(SecretValue(TOKEN))
    secret = SecretValue(TOKEN)
    with pytest.raises(AttributeError):
        secret._value = "other"
    with pytest.raises(TypeError):
        SecretValue(TOKEN.encode())  # type: ignore[arg-type]


class Credential(BaseModel):
    connector: str
    token: SecretValue


def test_pydantic_model_holding_a_secret_does_not_leak() -> None:
    model = Credential(connector="github", token=SecretValue(TOKEN))
    assert model.token.reveal() == TOKEN
    for text in (repr(model), str(model), f"{model}", model.model_dump_json()):
        assert TOKEN not in text
    assert json.loads(model.model_dump_json())["token"] == "***"
    with pytest.raises(TypeError):
        json.dumps(model.model_dump())
    with pytest.raises(ValueError, match="SecretValue"):
        Credential(connector="github", token=TOKEN)


def test_sealed_is_immutable_and_has_the_stored_fields() -> None:
    assert [f.name for f in fields(Sealed)] == [
        "kid",
        "wrapped_key",
        "nonce",
        "ciphertext",
        "version",
    ]
