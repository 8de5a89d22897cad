"""argon2id password hashing through pwdlib, always off the event loop.

Hashes run in their own thread pool whose threads run at the lowest CPU priority (Linux: a
thread is a task with its own nice value). argon2 releases the GIL, so a hash competes with the
event loop only for a core; at nice 19 against the loop's 0 the scheduler gives the loop about
98% of a contended core and preempts a hash as soon as a request arrives, so a burst of sign-ins
(bounded by PASSWORD_HASH_CONCURRENCY, app/kit/work_gate.py) cannot stall /mcp and /health
(bench/signin_load.py measures it). A free core still hashes at full speed; only when every core
is busy do sign-ins slow down, and then the work gate answers 503 + Retry-After to those that
wait too long for a slot.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from anyio import CancelScope
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
HASH_THREAD_NICENESS = 19  # added to the process's own nice value (capped at 19)

T = TypeVar("T")

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the email is unknown, so a miss costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash("gatehouse-timing-equaliser")


def _lower_priority() -> None:
    if sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS would mean the whole process
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + HASH_THREAD_NICENESS))


_pool = ThreadPoolExecutor(thread_name_prefix="password-hash", initializer=_lower_priority)


async def _off_loop(work: Callable[..., T], *args: str) -> T:
    """Run `work` in a hash thread and wait for it even if the request is cancelled (as anyio's
    to_thread does): the work gate's slot stays taken while the hash still runs."""
    future = asyncio.get_running_loop().run_in_executor(_pool, work, *args)
    with CancelScope(shield=True):
        result = await future
    return result


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters for the password."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters for the password."
    return None


async def hash_password(password: str) -> str:
    return await _off_loop(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one uses outdated parameters)."""
    if password_hash is None:
        await _off_loop(_hasher.verify, password, _DUMMY_HASH)
        return False, None
    return await _off_loop(_hasher.verify_and_update, password, password_hash)
