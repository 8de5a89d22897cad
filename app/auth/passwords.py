"""argon2id password hashing through pwdlib, always off the event loop.

Hashes run in their own thread pool, one thread per PASSWORD_HASH_CONCURRENCY slot
(`configure`), whose threads run at a lower CPU priority than the event loop (Linux: a thread is
a task with its own nice value). argon2 releases the GIL, so a hash competes with the loop only
for a core, and by default (app/kit/work_gate.py) one core is left without a hash. Where a hash
shares the loop's core, PASSWORD_HASH_PRIORITY says how it yields:

- `low` (the default): nice +10. The loop gets about nine tenths of a contended core, but a
  hash keeps the slice it was given, so the loop's wake-ups are late by up to a slice under a
  burst of sign-ins (bench/signin_load.py measures the loop's lost time). When every core is
  busy a hash still gets a tenth of one: sign-in slows down rather than stops.
- `idle`: SCHED_IDLE as well. The loop preempts a hash the moment it wakes, so a burst of
  sign-ins costs /mcp and /health nearly nothing; but a core that never idles leaves a hash
  almost no time (a weight of 3 against the loop's 1024), so sign-ins wait on a saturated host
  (the work gate still refuses the queue beyond its bound with 503 + Retry-After).

Every hash is counted before it is queued (count first, then work): routes that take the work
gate (sign-in, sign-up, password change; app/kit/work_gate.py) are bounded by it, and any other
caller (a password reset, an email change, ...) by `MAX_PENDING_PER_THREAD` here, past which the
hash is refused with GateBusy (503 + Retry-After, app/failures.py) instead of queueing without
end ahead of everyone's sign-in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

from anyio import CancelScope
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.kit.work_gate import GateBusy, default_concurrency

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
HASH_THREAD_NICENESS = 10  # added to the process's own nice value (capped at 19)
MAX_PENDING_PER_THREAD = 8

T = TypeVar("T")
HashPriority = Literal["low", "idle"]  # PASSWORD_HASH_PRIORITY
logger = logging.getLogger("gatehouse.auth")

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the email is unknown, so a miss costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash("gatehouse-timing-equaliser")


def _lower_priority(priority: HashPriority) -> None:
    if not sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS means the whole process
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + HASH_THREAD_NICENESS))
        if priority == "idle":
            # sched(7): SCHED_IDLE is "for running very low priority background jobs"; a
            # waking normal thread (the loop) preempts it at once, where a niced one keeps
            # its slice (bench/signin_load.py: a third of the loop's lost time against nearly
            # none). The price: on a core that never idles, a hash barely progresses.
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except OSError as exc:  # a sandbox that forbids it: hash at the loop's priority
        logger.warning("password-hash threads keep the loop's priority: %s", exc.strerror)


class _HashPool:
    def __init__(self, threads: int, priority: HashPriority) -> None:
        self.threads = threads
        self.priority = priority
        self.pending = 0
        self.executor = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="password-hash",
            initializer=_lower_priority,
            initargs=(priority,),
        )


_pool = _HashPool(default_concurrency(), "low")


def configure(concurrency: int, priority: HashPriority = "low") -> None:
    """One hash thread per slot of the work gate, at `priority` (at start-up, before any hash)."""
    global _pool  # noqa: PLW0603 - one pool per process, sized once from the settings
    if (concurrency, priority) != (_pool.threads, _pool.priority):
        old, _pool = _pool, _HashPool(concurrency, priority)
        old.executor.shutdown(wait=False)


async def _off_loop(work: Callable[..., T], *args: str) -> T:
    """Run `work` in a hash thread and wait for it even if the request is cancelled (as anyio's
    to_thread does), so a slot stays taken while its hash still runs."""
    pool = _pool
    if pool.pending >= pool.threads * MAX_PENDING_PER_THREAD:
        raise GateBusy("password hash", retry_after=2)
    pool.pending += 1
    try:
        future = asyncio.get_running_loop().run_in_executor(pool.executor, work, *args)
        with CancelScope(shield=True):
            result = await future
    finally:
        pool.pending -= 1
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
