"""argon2id computed on the calling thread: the same hashes, without libargon2's lane threads.

argon2-cffi runs libargon2 with as many threads as the hash has lanes (`p=4`), and libargon2
starts and joins a thread per lane for each of a hash's four slices per pass: 48 threads per
hash at `t=3`. The lanes are part of the hash; the threads are not. argon2.h: `lanes` is the
"number of lanes" and `threads` the "maximum number of threads", and with one thread libargon2
fills the lanes in turn (`fill_memory_blocks_st`), the same bytes. So a hash here is one job on
one hash thread, as the work gate counts it (app/kit/work_gate.py), and leaves the event loop
alone: with the lane threads, a loop sharing a core with a SCHED_IDLE hash woke late three
times as often (docs/PERFORMANCE.md, item 26).

Only `$argon2id$v=19$…` is read here (what Gatehouse writes); any other encoding is left to
argon2-cffi (`verify` answers None). Errors are argon2-cffi's: HashingError when a hash cannot
be made, VerificationError when a check cannot run (no memory), never a mismatch.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

import argon2.exceptions

# argon2-cffi's documented way to call libargon2 with a context of one's own (its `core`
# example imports `lib` from here too; the module does not list it in __all__).
from argon2.low_level import (  # type: ignore[attr-defined]
    ARGON2_VERSION,
    Type,
    core,
    error_to_str,
    ffi,
    lib,
)

# The PHC string libargon2 writes for argon2id (encoding.c): decimal numbers without leading
# zeros, base64 without padding. Bounded so that a malformed value costs a regex, never a hash;
# what libargon2's own decoder would refuse is left to it (see `_unb64`).
_NUMBER = "([1-9][0-9]{0,%d})"
_ENCODED = re.compile(
    rf"\$argon2id\$v=19\$m={_NUMBER % 6},t={_NUMBER % 3},p={_NUMBER % 2}"
    r"\$([A-Za-z0-9+/]{11,128})\$([A-Za-z0-9+/]{6,128})"
)


@dataclass(frozen=True)
class Params:
    time_cost: int
    memory_cost: int  # KiB
    parallelism: int  # lanes: part of the hash
    hash_len: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    """The bytes of unpadded base64, ValueError unless `text` is their only spelling (libargon2
    refuses stray bits in the last character)."""
    data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    if _b64(data) != text:
        raise ValueError("not canonical base64")
    return data


def raw(secret: bytes, salt: bytes, params: Params) -> bytes | int:
    """The digest, or libargon2's error code. cffi releases the GIL for the call."""
    out = ffi.new("uint8_t[]", params.hash_len)
    password, salted = ffi.new("uint8_t[]", secret), ffi.new("uint8_t[]", salt)
    context = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": params.hash_len,
            "pwd": password,
            "pwdlen": len(secret),
            "salt": salted,
            "saltlen": len(salt),
            "secret": ffi.NULL,
            "secretlen": 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": params.time_cost,
            "m_cost": params.memory_cost,
            "lanes": params.parallelism,
            "threads": 1,
            "version": ARGON2_VERSION,
            "allocate_cbk": ffi.NULL,
            "free_cbk": ffi.NULL,
            "flags": lib.ARGON2_DEFAULT_FLAGS,
        },
    )
    code = core(context, Type.ID.value)
    return bytes(ffi.buffer(out, params.hash_len)) if code == lib.ARGON2_OK else int(code)


def hash_secret(secret: bytes, salt: bytes, params: Params) -> str:
    """What argon2-cffi's `hash_secret` writes for these inputs (tests/auth/test_argon2_single)."""
    digest = raw(secret, salt, params)
    if isinstance(digest, int):
        raise argon2.exceptions.HashingError(error_to_str(digest))
    p = params
    head = f"$argon2id$v=19$m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
    return f"{head}${_b64(salt)}${_b64(digest)}"


def verify(secret: bytes, encoded: str) -> bool | None:
    """Whether `secret` matches; None for an encoding this module does not read."""
    match = _ENCODED.fullmatch(encoded)
    if match is None:
        return None
    memory, time, lanes = (int(match.group(i)) for i in (1, 2, 3))
    try:
        salt, expected = _unb64(match.group(4)), _unb64(match.group(5))
    except ValueError:
        return None
    digest = raw(secret, salt, Params(time, memory, lanes, len(expected)))
    if isinstance(digest, int):
        if digest == lib.ARGON2_MEMORY_ALLOCATION_ERROR:
            raise argon2.exceptions.VerificationError(error_to_str(digest))
        return None  # parameters libargon2 refuses: argon2-cffi says what is wrong
    return hmac.compare_digest(digest, expected)
