"""Password hashes run below the event loop's CPU priority (app/auth/passwords.py), so a burst
of sign-ins cannot take the core from /mcp and /health (bench/signin_load.py measures it)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import anyio
import httpx
import pytest
from fastapi import FastAPI
from pwdlib.exceptions import UnknownHashError

from app.auth import passwords
from app.auth.passwords import (
    HASH_THREAD_NICENESS,
    MAX_PENDING_PER_THREAD,
    RESCUE_AFTER,
    HashPool,
    HashPriority,
    hash_password,
    verify_password,
)
from app.kit.work_gate import GateBusy, default_concurrency

PASSWORD = "correct horse battery staple"
# Busy loops beside a starved hash thread, at this process's priority (`nice -n 19` or not):
# against 12 of them a SCHED_IDLE thread gets about 3 / (12 x 15 + 3) of the core at nice 19
# (weights 3 and 15), a 0.2 s hash some 12 s; at nice 0, minutes.
SPINNERS = 12
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SCHED_IDLE and per-thread nice are Linux's"
)
# A starved hash thread is pinned to one core; the loop and the rescue thread need another.
starvable = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="starving one core needs Linux and two cores",
)


@pytest.fixture
def restore_default_pool() -> Iterator[None]:
    yield
    passwords.configure(default_concurrency())


def fresh_pool(threads: int, priority: HashPriority) -> HashPool:
    """A new pool (configure keeps the one it has when asked for the same again)."""
    passwords.configure(threads, "idle" if priority == "low" else "low")
    passwords.configure(threads, priority)
    return passwords.pool()


def policies(tids: Iterable[int]) -> set[int]:
    return {os.sched_getscheduler(tid) for tid in tids}


@contextmanager
def starved(tids: list[int]) -> Iterator[None]:
    """`tids` pinned to one core that SPINNERS busy loops keep from ever idling."""
    assert tids
    core = max(os.sched_getaffinity(0))
    spinners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(SPINNERS)]
    try:
        for spinner in spinners:
            os.sched_setaffinity(spinner.pid, {core})
        for tid in tids:
            os.sched_setaffinity(tid, {core})
        yield
    finally:
        for tid in tids:
            os.sched_setaffinity(tid, os.sched_getaffinity(0))
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


async def settled(pool: HashPool) -> None:
    """Every job of `pool`, discarded ones too, ends and is no longer counted."""
    queues = [pool.first] + ([pool.rescue] if pool.rescue else [])
    deadline = time.monotonic() + 30
    while any(q.pending for q in queues):
        assert time.monotonic() < deadline, [q.pending for q in queues]
        await asyncio.sleep(0.02)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
async def test_hash_threads_are_niced_below_the_loop() -> None:
    stored = await hash_password("correct horse battery staple")
    assert (await verify_password("correct horse battery staple", stored))[0]
    hashers = [t for t in threading.enumerate() if t.name.startswith("password-hash")]
    assert hashers, [t.name for t in threading.enumerate()]
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for thread in hashers:
        assert thread.native_id is not None
        nice = os.getpriority(os.PRIO_PROCESS, thread.native_id)
        assert nice == min(19, loop_nice + HASH_THREAD_NICENESS), (thread.name, nice)
    # The loop's own thread is untouched.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice


async def test_hashes_past_the_bound_are_refused_not_queued(restore_default_pool: None) -> None:
    """Count first, then work: a caller outside the work gate (a reset, an email change) cannot
    queue hashes without end ahead of everyone's sign-in."""
    passwords.configure(1)
    wanted = MAX_PENDING_PER_THREAD + 3
    results = await asyncio.gather(
        *(hash_password(PASSWORD) for _ in range(wanted)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, GateBusy)]
    hashed = [r for r in results if isinstance(r, str)]
    assert (len(refused), len(hashed)) == (3, MAX_PENDING_PER_THREAD), results
    assert refused[0].retry_after == 2


async def test_a_busy_hasher_is_a_503_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def busy_page() -> None:
        raise GateBusy("password hash", retry_after=2)

    app.add_api_route("/test-hasher-busy", busy_page)
    response = await client.get("/test-hasher-busy")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert "busy" in response.text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
async def test_idle_priority_puts_hash_threads_under_sched_idle(
    restore_default_pool: None,
) -> None:
    """PASSWORD_HASH_PRIORITY=idle: a waking event loop preempts a hash at once (sched(7))."""
    pool = fresh_pool(1, "idle")
    stored = await hash_password(PASSWORD)
    assert (await verify_password(PASSWORD, stored))[0]
    assert policies(pool.first.native_ids) == {os.SCHED_IDLE}
    assert pool.rescue is None
    # At `low`: a new pool whose threads are niced, not idle.
    pool = fresh_pool(1, "low")
    await hash_password(PASSWORD)
    assert policies(pool.first.native_ids) == {os.SCHED_OTHER}
    # The loop's own thread keeps the normal policy throughout.
    assert os.sched_getscheduler(threading.get_native_id()) == os.SCHED_OTHER


@starvable
async def test_auto_hashes_under_sched_idle_and_rescues_at_nice_plus_10(
    restore_default_pool: None,
) -> None:
    """PASSWORD_HASH_PRIORITY=auto: hashes at SCHED_IDLE, a late one also on a `low` thread."""
    pool = fresh_pool(1, "auto")
    stored = await hash_password(PASSWORD)
    assert pool.rescue is not None
    assert pool.rescue.native_ids == []  # started on the first rescue
    with starved(pool.first.native_ids):
        assert (await verify_password(PASSWORD, stored))[0]
    assert policies(pool.first.native_ids) == {os.SCHED_IDLE}
    (rescuer,) = pool.rescue.native_ids
    assert os.sched_getscheduler(rescuer) == os.SCHED_OTHER
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.getpriority(os.PRIO_PROCESS, rescuer) == min(19, loop_nice + HASH_THREAD_NICENESS)
    await settled(pool)


@starvable
async def test_a_starved_hash_is_rescued_with_the_right_answer(
    restore_default_pool: None,
) -> None:
    """The SCHED_IDLE thread's core never idles (pinned beside busy loops at this process's
    priority): sign-in still answers, a rescue delay and a few hashes later."""
    pool = fresh_pool(1, "auto")
    stored = await hash_password(PASSWORD)
    started = time.perf_counter()
    await verify_password(PASSWORD, stored)
    one = time.perf_counter() - started  # unstarved; starved, about 60 times that at nice 19
    with starved(pool.first.native_ids):
        started = time.perf_counter()
        matches, _ = await verify_password(PASSWORD, stored)
        verified_in = time.perf_counter() - started
        started = time.perf_counter()
        rehashed = await hash_password(PASSWORD)
        hashed_in = time.perf_counter() - started
        # The starved verify still runs, still counted; the hash queued behind it was
        # cancelled when its rescue answered, so it never ran.
        held = pool.first.pending
    assert matches
    # Unrescued, the starved verify takes minutes at the test's own priority (about 12 s even
    # at nice 19). Rescued: the delay and a few hashes, with ample room for a shared machine
    # slowing the rescue thread's nice +10.
    assert max(verified_in, hashed_in) < RESCUE_AFTER + 8 * one + 10, (verified_in, hashed_in)
    assert pool.rescued == 2
    # The starved verify may have ended meanwhile, but the hash queued behind it never ran.
    assert held <= 1
    assert (await verify_password(PASSWORD, rehashed))[0]
    assert not (await verify_password("wrong-" + PASSWORD, rehashed))[0]
    await settled(pool)


@linux_only
async def test_a_hash_on_time_is_not_rescued(restore_default_pool: None) -> None:
    pool = fresh_pool(1, "auto")
    started = time.perf_counter()
    stored = await hash_password(PASSWORD)
    assert (await verify_password(PASSWORD, stored))[0]
    took = time.perf_counter() - started
    if took >= RESCUE_AFTER:
        pytest.skip(f"this host kept two SCHED_IDLE hashes from a core for {took:.2f} s")
    assert pool.rescue is not None
    assert (pool.rescued, pool.rescue.native_ids, pool.rescue.pending) == (0, [], 0)
    assert pool.first.pending == 0


@starvable
async def test_rescues_are_bounded_and_hashes_past_the_bound_refused(
    restore_default_pool: None,
) -> None:
    """Count first, then work, with rescues: the first threads take at most
    MAX_PENDING_PER_THREAD each (3 more are refused at once), the rescue thread at most
    MAX_PENDING_PER_THREAD; the callers it cannot take go on waiting."""
    pool = fresh_pool(2, "auto")
    await asyncio.gather(hash_password(PASSWORD), hash_password(PASSWORD))
    assert len(pool.first.native_ids) == 2
    rescue = pool.rescue
    assert rescue is not None
    bound = 2 * MAX_PENDING_PER_THREAD
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rescue.pending)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    with starved(pool.first.native_ids):
        hashes = asyncio.gather(
            *(hash_password(PASSWORD) for _ in range(bound + 3)), return_exceptions=True
        )
        deadline = time.monotonic() + RESCUE_AFTER + 10
        while rescue.pending < MAX_PENDING_PER_THREAD and not hashes.done():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        # All `bound` callers are past RESCUE_AFTER; the rescue thread took only its bound.
        taken, first_pending = pool.rescued, pool.first.pending
    results = await hashes  # the first threads have their core back: the rest finish there
    watcher.cancel()
    refused = [r for r in results if isinstance(r, GateBusy)]
    hashed = [r for r in results if isinstance(r, str)]
    assert (len(refused), len(hashed)) == (3, bound), results
    assert (taken, first_pending) == (MAX_PENDING_PER_THREAD, bound)
    assert peak == MAX_PENDING_PER_THREAD
    assert (await verify_password(PASSWORD, hashed[-1]))[0]
    await settled(pool)


async def test_a_hash_is_counted_until_it_ends_even_if_it_raises_or_is_cancelled(
    restore_default_pool: None,
) -> None:
    """No leak of `pending`: a job is uncounted when it ends, whatever ends it; and a cancelled
    request still waits for its hash (a gate slot is not freed while its work still runs)."""
    pool = fresh_pool(1, "auto")
    with pytest.raises(UnknownHashError):
        await verify_password(PASSWORD, "not-a-hash")
    assert pool.first.pending == 0
    stored = None
    with anyio.move_on_after(0.001) as scope:
        stored = await hash_password(PASSWORD)
    assert scope.cancel_called
    assert stored is not None  # the hash was waited for, cancelled or not
    assert pool.first.pending == 0
    assert (await verify_password(PASSWORD, stored))[0]


@linux_only
async def test_auto_is_low_where_sched_idle_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, restore_default_pool: None
) -> None:
    """A sandbox that forbids sched_setscheduler: niced threads, no rescue, one warning."""

    def refuse(*_: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    pool = fresh_pool(2, "auto")
    with caplog.at_level(logging.WARNING, logger="gatehouse.auth"):
        await asyncio.gather(hash_password(PASSWORD), hash_password(PASSWORD))
    assert len(pool.first.native_ids) == 2
    assert policies(pool.first.native_ids) == {os.SCHED_OTHER}
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for tid in pool.first.native_ids:
        assert os.getpriority(os.PRIO_PROCESS, tid) == min(19, loop_nice + HASH_THREAD_NICENESS)
    assert not pool.rescues()
    warned = [r.getMessage() for r in caplog.records if r.name == "gatehouse.auth"]
    assert warned == ["password-hash threads are niced, not SCHED_IDLE: Operation not permitted"]
