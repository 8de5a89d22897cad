"""Password hashes run below the event loop's CPU priority (app/auth/passwords.py), so a burst
of sign-ins cannot take the core from /mcp and /health (bench/signin_load.py measures it)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from app.auth.passwords import HASH_THREAD_NICENESS, hash_password, verify_password


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
