"""argon2id on one thread (app/auth/argon2_single.py): argon2-cffi's bytes, without lane threads.

Every hash Gatehouse has stored was written by argon2-cffi, and every hash it writes now must
read back there (a rollback, an export): both directions are checked against the library.
"""

from __future__ import annotations

import os
import threading
import time

import argon2
import pytest
from argon2.low_level import Type, hash_secret

from app.auth import argon2_single, passwords
from app.auth.argon2_single import Params

SALT = bytes(range(16))
CASES = [
    (b"correct horse battery staple", Params(3, 65536, 4, 32)),  # Gatehouse's own parameters
    ("pässwörd with ünïcode ✓".encode(), Params(2, 8192, 2, 32)),
    (b"x" * 1024, Params(1, 4096, 1, 16)),
    (b"\x00binary\xff", Params(1, 4096, 3, 64)),
]


@pytest.mark.parametrize(("secret", "params"), CASES)
def test_a_hash_is_byte_for_byte_what_argon2_cffi_writes(secret: bytes, params: Params) -> None:
    theirs = hash_secret(
        secret,
        SALT,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        type=Type.ID,
    ).decode()
    assert argon2_single.hash_secret(secret, SALT, params) == theirs


@pytest.mark.parametrize(("secret", "params"), CASES)
def test_each_reads_the_others_hashes(secret: bytes, params: Params) -> None:
    library = argon2.PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
    )
    stored = library.hash(secret)
    assert argon2_single.verify(secret, stored) is True
    assert argon2_single.verify(secret + b"!", stored) is False
    ours = argon2_single.hash_secret(secret, os.urandom(16), params)
    assert library.verify(ours, secret) is True
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        library.verify(ours, secret[:-1])


def test_a_changed_digest_or_salt_does_not_match() -> None:
    stored = argon2_single.hash_secret(b"secret-password", SALT, Params(1, 4096, 4, 32))
    head, salt, digest = stored.rsplit("$", 2)
    flipped = ("B" if digest[0] == "A" else "A") + digest[1:]
    assert argon2_single.verify(b"secret-password", f"{head}${salt}${flipped}") is False
    other_salt = ("B" if salt[0] == "A" else "A") + salt[1:]
    assert argon2_single.verify(b"secret-password", f"{head}${other_salt}${digest}") is False


@pytest.mark.parametrize(
    "encoded",
    [
        argon2.PasswordHasher(type=Type.I, memory_cost=4096).hash("password-1"),  # argon2i
        "$argon2id$v=16$m=4096,t=1,p=1$AAECAwQFBgcICQoLDA0ODw$c29tZWRpZ2VzdA",  # old version
        "$argon2id$m=4096,t=1,p=1$AAECAwQFBgcICQoLDA0ODw$c29tZWRpZ2VzdA",  # no version
        "$argon2id$v=19$m=4096,t=1,p=1$AAECAwQFBgcICQoLDA0OD$c29tZWRpZ2VzdA",  # bad base64
        "$argon2id$v=19$m=99999999,t=1,p=1$AAECAwQFBgcICQoLDA0ODw$c29tZWRpZ2VzdA",  # > 7 digits
        "$argon2id$v=19$m=1,t=1,p=1$AAECAwQFBgcICQoLDA0ODw$c29tZWRpZ2VzdA",  # libargon2 refuses
        "$argon2id$v=19$m=04096,t=1,p=1$AAECAwQFBgcICQoLDA0ODw$c29tZWRpZ2VzdA",  # leading zero
        "$argon2id$v=19$m=\u0664\u0660\u0669\u0666,t=1,p=1$AAECAwQFBgcICQoLDA0ODw$c29tZWRpZ2VzdA",
        "$argon2id$v=19$m=4096,t=1,p=1$AAECAwQFBgcICQoLDA0ODx$c29tZWRpZ2VzdA",  # stray bits
        "$pbkdf2-sha256$29000$salt$digest",
        "",
    ],
)
def test_other_encodings_are_left_to_argon2_cffi(encoded: str) -> None:
    assert argon2_single.verify(b"password-1", encoded) is None


def test_gatehouse_still_reads_an_argon2i_hash_through_argon2_cffi() -> None:
    stored = argon2.PasswordHasher(type=Type.I, memory_cost=4096).hash("password-1")
    hasher = passwords._Argon2()
    assert hasher.verify("password-1", stored) is True
    assert hasher.verify("password-2", stored) is False


def test_gatehouse_writes_the_same_format_as_before() -> None:
    stored = passwords._Argon2().hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert argon2.PasswordHasher().verify(stored, "correct horse battery staple")
    assert not argon2.PasswordHasher().check_needs_rehash(stored)


def _most_threads_while(work: object) -> int:
    """The most threads this process had while `work` ran on a thread of its own."""
    done = threading.Event()

    def run() -> None:
        try:
            work()  # type: ignore[operator]
        finally:
            done.set()

    before = len(os.listdir("/proc/self/task"))
    worker = threading.Thread(target=run)
    worker.start()
    most = before
    while not done.is_set():
        most = max(most, len(os.listdir("/proc/self/task")))
        time.sleep(0.0002)
    worker.join()
    return most - before


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_a_hash_and_a_check_start_no_thread_of_their_own() -> None:
    hasher = passwords._Argon2()
    stored = hasher.hash("correct horse battery staple")
    assert _most_threads_while(lambda: hasher.verify("correct horse battery staple", stored)) == 1
    assert _most_threads_while(lambda: hasher.hash("correct horse battery staple")) == 1
    # What the test can see: argon2-cffi's own check starts its lanes' threads.
    library = argon2.PasswordHasher()
    assert _most_threads_while(lambda: library.verify(stored, "correct horse battery staple")) > 1
