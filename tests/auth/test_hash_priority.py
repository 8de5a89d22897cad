"""Password hashes run below the event loop's CPU priority (app/auth/passwords.py), so a burst
of sign-ins cannot take the core from /mcp and /health (bench/signin_load.py measures it)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import httpx
import pytest
from fastapi import FastAPI

from app.auth import passwords
from app.auth.passwords import (
    HASH_THREAD_NICENESS,
    MAX_PENDING_PER_THREAD,
    hash_password,
    verify_password,
)
from app.kit.work_gate import GateBusy, default_concurrency


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


async def test_hashes_past_the_bound_are_refused_not_queued() -> None:
    """Count first, then work: a caller outside the work gate (a reset, an email change) cannot
    queue hashes without end ahead of everyone's sign-in."""
    passwords.configure(1)
    try:
        wanted = MAX_PENDING_PER_THREAD + 3
        results = await asyncio.gather(
            *(hash_password("correct horse battery staple") for _ in range(wanted)),
            return_exceptions=True,
        )
    finally:
        passwords.configure(default_concurrency())
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
async def test_idle_priority_puts_hash_threads_under_sched_idle() -> None:
    """PASSWORD_HASH_PRIORITY=idle: a waking event loop preempts a hash at once (sched(7))."""
    passwords.configure(1, "idle")
    try:
        stored = await hash_password("correct horse battery staple")
        assert (await verify_password("correct horse battery staple", stored))[0]
        hashers = [t for t in threading.enumerate() if t.name.startswith("password-hash")]
        policies = {os.sched_getscheduler(t.native_id) for t in hashers if t.native_id}
        assert os.SCHED_IDLE in policies, policies
    finally:
        passwords.configure(default_concurrency())
    # Back at the default: a new pool whose threads are niced, not idle.
    stored = await hash_password("correct horse battery staple")
    hashers = [t for t in threading.enumerate() if t.name.startswith("password-hash")]
    live = [t for t in hashers if t.native_id and t.is_alive()]
    assert any(os.sched_getscheduler(t.native_id) == os.SCHED_OTHER for t in live if t.native_id)
    # The loop's own thread keeps the normal policy throughout.
    assert os.sched_getscheduler(threading.get_native_id()) == os.SCHED_OTHER
