"""argon2id password hashing through pwdlib, always off the event loop.

Hashes run in their own thread pool, one thread per PASSWORD_HASH_CONCURRENCY slot
(`configure`), whose threads run at a lower CPU priority than the event loop (Linux: a thread is
a task with its own nice value). Each hash runs on its one thread, lanes in turn
(app/auth/argon2_single.py: libargon2's own lane threads woke the loop late), and releases the
GIL, so a hash competes with the loop only for a core, and by default (app/kit/work_gate.py)
one core is left without a hash. Where a hash
shares the loop's core, PASSWORD_HASH_PRIORITY says how it yields:

- `low`: nice +10. The loop gets about nine tenths of a contended core, but a hash keeps the
  slice it was given, so the loop's wake-ups are late by up to a slice under a burst of
  sign-ins (bench/signin_load.py measures the loop's lost time). When every core is busy a hash
  still gets a tenth of one: sign-in slows down rather than stops.
- `idle`: SCHED_IDLE as well. The loop preempts a hash the moment it wakes, so a burst of
  sign-ins costs /mcp and /health nearly nothing; but a core that never idles leaves a hash
  almost no time (a weight of 3 against the loop's 1024), so sign-ins wait on a saturated host
  (the work gate still refuses the queue beyond its bound with 503 + Retry-After).
- `auto` (the default): `idle`, rescued. Every hash goes to the SCHED_IDLE threads first; one
  whose result is not there after `RESCUE_AFTER` seconds is also queued on one rescue thread at
  nice +10 (a `low` thread), and the caller takes whichever finishes first. The loser is
  cancelled if it has not started, else left to finish unheard (a hash or a verify is a pure
  function of its inputs; a hash with another salt is as good). An unprivileged thread cannot
  leave SCHED_IDLE again (EPERM under RLIMIT_NICE 0), hence a second thread rather than raising
  the starved one. Where SCHED_IDLE is refused (not Linux, a sandbox) the threads are only
  niced and nothing is rescued: `auto` is `low`.

Every hash is counted before it is queued (count first, then work): routes that take the work
gate (sign-in, sign-up, password change; app/kit/work_gate.py) are bounded by it, and any other
caller (a password reset, an email change, ...) by `MAX_PENDING_PER_THREAD` here, past which the
hash is refused with GateBusy (503 + Retry-After, app/failures.py) instead of queueing without
end ahead of everyone's sign-in. A job is counted from before it is queued until it ends (ran,
raised or was cancelled), not until its caller is answered: a discarded job still running still
counts. The rescue thread takes at most `MAX_PENDING_PER_THREAD` jobs too; a caller that finds
it full waits on its first job and asks again every `RESCUE_AFTER`. The delay counts from
queueing, so a job waiting behind others (callers outside the work gate can queue several per
thread) may be rescued without being starved: the rescue thread then only adds a thread.

Memory: argon2 takes 64 MiB only while it runs, and a queued job holds only its arguments, so
at most threads + 1 hashes (the rescue thread's) are in memory at once: (threads + 1) x 64 MiB,
one more than under `low` or `idle`. Queued: at most threads x MAX_PENDING_PER_THREAD first
jobs and MAX_PENDING_PER_THREAD rescues.

A burst on a saturated host (every core busy at normal priority): the work gate lets its
threads' worth of sign-ins in and queues the rest for PASSWORD_HASH_WAIT. Their SCHED_IDLE jobs
barely start; after `RESCUE_AFTER` each is queued on the rescue thread (in order while at most
MAX_PENDING_PER_THREAD wait), which runs them one at a time at nice +10, so sign-in goes on at
one `low` thread's pace (not threads x that, as under `low`), and what waits longer at the
gate gets 503 + Retry-After. A
rescued caller's first job, if it had started, keeps its SCHED_IDLE thread (and its 64 MiB)
until it ends; while every first thread is held so, each new hash waits the whole
`RESCUE_AFTER` before its rescue. Its queued first jobs are cancelled as their rescues answer.
Once the cores free again, the held jobs end within a hash's time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Literal, TypeVar

import argon2.exceptions
from anyio import CancelScope
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.auth import argon2_single
from app.kit.work_gate import GateBusy, default_concurrency

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
HASH_THREAD_NICENESS = 10  # added to the process's own nice value (capped at 19)
MAX_PENDING_PER_THREAD = 8
# Seconds from queueing a hash to queueing its rescue. argon2 takes 50-200 ms of one core, so a
# SCHED_IDLE hash not done after 1 s has had at most a fifth to a tenth of a core: about what
# the rescue thread gets from a core shared with one busy normal task (nice +10 weighs 110
# against 1024), so from there on the rescue does no worse. Shorter would duplicate hashes on
# a host that is merely busy (the loop at 80%), bringing back the niced thread's slices that
# SCHED_IDLE avoids; longer makes a saturated host's sign-ins slower still. 1 s is well inside
# PASSWORD_HASH_WAIT (5 s) and a person's patience.
RESCUE_AFTER = 1.0

T = TypeVar("T")
HashPriority = Literal["low", "idle", "auto"]  # PASSWORD_HASH_PRIORITY
logger = logging.getLogger("gatehouse.auth")


def _utf8(password: str | bytes) -> bytes:
    return password.encode() if isinstance(password, str) else password  # as argon2-cffi does


class _Argon2(Argon2Hasher):
    """pwdlib's argon2id hasher, on one thread, and only a mismatch is a wrong password.

    Hashes and checks run on the hash thread alone (app/auth/argon2_single.py: the same bytes
    without libargon2's lane threads); an encoding that module does not read goes to
    argon2-cffi. pwdlib reads every argon2 VerificationError as False, and argon2-cffi raises
    one for a check that could not run ("Memory allocation error": 64 MiB refused under an
    address-space limit or strict overcommit): the right password then read as a wrong one,
    and sign-in counted a failure against the account. Such an error now propagates
    (`verify_password` answers it as a busy server).
    """

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        secret = _utf8(password)
        options = self._hasher
        params = argon2_single.Params(
            options.time_cost, options.memory_cost, options.parallelism, options.hash_len
        )
        return argon2_single.hash_secret(secret, salt or os.urandom(options.salt_len), params)

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:  # noqa: A002 - pwdlib's name
        encoded = hash.decode() if isinstance(hash, bytes) else hash
        matches = argon2_single.verify(_utf8(password), encoded)
        if matches is not None:
            return matches
        try:
            return bool(self._hasher.verify(hash, password))
        except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
            return False


_hasher = PasswordHash((_Argon2(),))
# Verified against when the email is unknown, so a miss costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash("gatehouse-timing-equaliser")


def _lower_priority(idle: bool) -> str | None:
    """Lower the calling thread below the loop; None when done, else why not (the error)."""
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + HASH_THREAD_NICENESS))
    except OSError as exc:  # a sandbox that forbids it: hash at the loop's priority
        return f"password-hash threads keep the loop's priority: {exc.strerror}"
    if idle:
        try:
            # sched(7): SCHED_IDLE is "for running very low priority background jobs"; a
            # waking normal thread (the loop) preempts it at once, where a niced one keeps
            # its slice (bench/signin_load.py: a third of the loop's lost time against nearly
            # none). The price: on a core that never idles, a hash barely progresses.
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except OSError as exc:
            return f"password-hash threads are niced, not SCHED_IDLE: {exc.strerror}"
    return None


class _Threads:
    """An executor whose jobs are counted from before they are queued until they end."""

    def __init__(self, name: str, threads: int, *, idle: bool, bound: int) -> None:
        self.threads = threads
        self.bound = bound
        self.pending = 0  # queued or running; written from hash threads too, under _lock
        self.linux = sys.platform.startswith("linux")  # elsewhere PRIO_PROCESS is the process
        self.idle = idle and self.linux  # SCHED_IDLE asked for, and not refused (so far)
        self.native_ids: list[int] = []  # of the threads started so far (tests, metrics)
        self._lock = threading.Lock()
        self._warned = False
        self.executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix=name, initializer=self._started
        )

    def _started(self) -> None:
        problem = _lower_priority(self.idle) if self.linux else None
        with self._lock:
            self.native_ids.append(threading.get_native_id())
            if problem is None:
                return
            self.idle = False  # the next threads are niced only: one policy for the pool
            warn, self._warned = not self._warned, True
        if warn:
            logger.warning("%s", problem)

    def submit(self, job: Callable[[], T]) -> Future[T] | None:
        """Queue `job`, or None if `bound` jobs are already pending (count first, then work)."""
        with self._lock:
            if self.pending >= self.bound:
                return None
            self.pending += 1
        try:
            future = self.executor.submit(job)
        except BaseException:
            self._ended()
            raise
        future.add_done_callback(self._ended)  # at once if it is already over
        return future

    def _ended(self, _: object = None) -> None:  # run, raised or cancelled: once per job
        with self._lock:
            self.pending -= 1


class HashPool:
    """The hash threads at PASSWORD_HASH_PRIORITY and, under `auto`, the rescue thread."""

    def __init__(self, threads: int, priority: HashPriority) -> None:
        self.threads = threads
        self.priority = priority
        bound = threads * MAX_PENDING_PER_THREAD
        self.first = _Threads("password-hash", threads, idle=priority != "low", bound=bound)
        self.rescue: _Threads | None = None
        if priority == "auto":
            self.rescue = _Threads(
                "password-hash-rescue", 1, idle=False, bound=MAX_PENDING_PER_THREAD
            )
        self.rescued = 0  # jobs handed to the rescue thread since start-up (tests, metrics)
        self._closed = False

    def rescues(self) -> bool:
        """Whether a late hash is rescued: under `auto`, unless SCHED_IDLE was refused (the
        first threads are then `low` ones already) or the pool was replaced."""
        return self.rescue is not None and self.first.idle and not self._closed

    def rescue_now(self, job: Callable[[], T]) -> Future[T] | None:
        """The same job on the rescue thread, or None where there is none or it is full."""
        if self.rescue is None or not self.rescues():
            return None
        future = self.rescue.submit(job)
        if future is not None:
            self.rescued += 1
        return future

    def close(self) -> None:
        self._closed = True
        for threads in (self.first, self.rescue):
            if threads is not None:
                threads.executor.shutdown(wait=False)  # queued jobs still run and are awaited


_pool = HashPool(default_concurrency(), "auto")


def configure(concurrency: int, priority: HashPriority = "auto") -> None:
    """One hash thread per slot of the work gate, at `priority` (at start-up, before any hash)."""
    global _pool  # noqa: PLW0603 - one pool per process, sized once from the settings
    if (concurrency, priority) != (_pool.threads, _pool.priority):
        old, _pool = _pool, HashPool(concurrency, priority)
        old.close()


def pool() -> HashPool:
    """The process's hash pool (its counters are for tests and metrics)."""
    return _pool


async def _off_loop(work: Callable[..., T], *args: str) -> T:
    """Run `work` in a hash thread and wait for it even if the request is cancelled (as anyio's
    to_thread does), so a slot stays taken while its hash still runs."""
    current = _pool
    job = partial(work, *args)
    first = current.first.submit(job)
    if first is None:
        raise GateBusy("password hash", retry_after=2)
    with CancelScope(shield=True):
        result = await _first_result(current, first, job)
    return result


def _heard(waiter: asyncio.Future[T]) -> None:
    """A loser's exception is not an unretrieved one (asyncio would log it at exit)."""
    if not waiter.cancelled():
        waiter.exception()


async def _first_result(current: HashPool, first: Future[T], job: Callable[[], T]) -> T:
    """`first`'s result or, once it is `RESCUE_AFTER` late, its rescue's, whichever is first."""
    jobs = [first]
    waiters = {asyncio.wrap_future(first)}
    try:
        while True:
            rescuing = len(jobs) == 1 and current.rescues()
            done, _ = await asyncio.wait(
                waiters,
                timeout=RESCUE_AFTER if rescuing else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if done:
                return done.pop().result()
            if first.done():  # finished as the wait timed out: its answer is on its way
                continue
            rescue = current.rescue_now(job)
            if rescue is not None:  # else: none, or full; asked again in RESCUE_AFTER
                jobs.append(rescue)
                waiters.add(asyncio.wrap_future(rescue))
    finally:
        for each in jobs:
            each.cancel()  # not started yet: it never runs; running or over: no effect
        for waiter in waiters:
            waiter.add_done_callback(_heard)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters for the password."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters for the password."
    return None


async def hash_password(password: str) -> str:
    try:
        return await _off_loop(_hasher.hash, password)
    except argon2.exceptions.HashingError as exc:  # no memory for it: our fault, not the caller's
        raise GateBusy("password hash", retry_after=2) from exc


async def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one uses outdated parameters). No stored hash (None, or
    the empty one of an account made through an identity provider) is checked against the dummy
    hash and never matches. A check that could not run (argon2 got no memory) is GateBusy, a 503
    with Retry-After: never a wrong password."""
    try:
        if not password_hash:
            await _off_loop(_hasher.verify, password, _DUMMY_HASH)
            return False, None
        return await _off_loop(_hasher.verify_and_update, password, password_hash)
    except (argon2.exceptions.VerificationError, argon2.exceptions.HashingError) as exc:
        raise GateBusy("password hash", retry_after=2) from exc
