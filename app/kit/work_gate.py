"""Bound expensive work in flight per process: a few run, a few wait briefly, the rest are refused.

An unauthenticated caller can ask for work that costs far more than the request: an argon2 hash
(64 MiB and ~100 ms of one core), a client registration, a credential check, an outbound fetch
of a client metadata document. Rate limits bound how often one caller may ask; a gate bounds how
much of it runs at once in this process, so a burst costs bounded memory and CPU and a real
person's request, queued behind at most a few others, stays fast.

Use:

    gate = WorkGate("password hash", concurrency=4)        # once per process (app start-up)

    async with gate.slot():                                # in the request, around the work
        await hash_password(...)

`slot()` waits at most `wait` seconds for a free slot, and refuses at once when `max_waiting`
callers are already queued; either way it raises `GateBusy`, whose `retry_after` (seconds) the
caller turns into its own answer: 503 + Retry-After for a page or JSON endpoint (the server is
busy, not the client wrong; RFC 9110 §15.6.4), or 429 where the work is already per caller.
Count the attempt against the caller's rate limit *before* entering the gate (hit, then work),
so a refused or queued attempt is already counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

logger = logging.getLogger("gatehouse.work_gate")


class GateBusy(Exception):
    """No slot became free in time; try again after `retry_after` seconds."""

    def __init__(self, name: str, retry_after: int) -> None:
        super().__init__(f"{name}: too much work in flight")
        self.name = name
        self.retry_after = retry_after


def default_concurrency() -> int:
    """One hash per core this process may use, but one: that core stays free for the event loop.

    A hash running beside the loop on its core delays the loop's wake-ups by the scheduler's
    slice, whatever its nice value, and hands the GIL back and forth with it: a burst of sign-ins
    then shows in every /mcp and /health request's tail (bench/signin_load.py measures it). More
    hashes than that only queue inside the thread pool and multiply memory. On one core: one.
    """
    try:
        cores = len(os.sched_getaffinity(0))  # the cores a container or taskset leaves us
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class WorkGate:
    def __init__(
        self,
        name: str,
        *,
        concurrency: int,
        wait: float = 5.0,
        max_waiting: int | None = None,
        retry_after: int = 2,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a work gate needs at least one slot")
        self.name = name
        self.concurrency = concurrency
        self.wait = wait
        self.max_waiting = max_waiting if max_waiting is not None else 8 * concurrency
        self.retry_after = retry_after
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self.in_flight = 0
        self.refused = 0  # since start-up; for tests and metrics

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if not self._slots.locked():
            await self._slots.acquire()  # a slot is free: taken without waiting
        else:
            await self._queue()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()

    async def _queue(self) -> None:
        if self._waiting >= self.max_waiting:
            self._refuse()
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.wait)
        except TimeoutError:
            self._refuse()
        finally:
            self._waiting -= 1

    def _refuse(self) -> None:
        self.refused += 1
        logger.warning("%s: busy, request refused (retry in %ss)", self.name, self.retry_after)
        raise GateBusy(self.name, self.retry_after)
