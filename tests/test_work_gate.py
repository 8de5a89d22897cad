"""app/kit/work_gate.py: `concurrency` run, a bounded few wait briefly, the rest are refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from app.kit.work_gate import GateBusy, WorkGate


async def test_at_most_concurrency_run_and_the_others_wait_their_turn() -> None:
    gate = WorkGate("test", concurrency=2, wait=30)
    running, peak = 0, 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1

    tasks = [asyncio.create_task(work()) for _ in range(5)]
    while gate.in_flight < 2:
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 2
    assert gate.refused == 0


async def test_a_full_queue_is_refused_at_once_with_retry_after() -> None:
    gate = WorkGate("test", concurrency=1, wait=30, max_waiting=1, retry_after=3)
    hold = asyncio.Event()

    async def holder() -> None:
        async with gate.slot():
            await hold.wait()

    first = asyncio.create_task(holder())
    second = asyncio.create_task(holder())  # waits in the queue
    while gate.in_flight < 1 or gate._waiting < 1:
        await asyncio.sleep(0)
    with pytest.raises(GateBusy) as refused:
        async with gate.slot():
            pytest.fail("a third caller must not run")
    assert refused.value.retry_after == 3
    hold.set()
    await asyncio.gather(first, second)


async def test_a_caller_that_waited_too_long_is_refused_and_frees_its_place() -> None:
    gate = WorkGate("test", concurrency=1, wait=0)
    async with gate.slot():  # with a free slot, even a zero wait runs at once
        assert gate.in_flight == 1
    hold = asyncio.Event()

    async def holder() -> None:
        async with gate.slot():
            await hold.wait()

    task = asyncio.create_task(holder())
    while gate.in_flight < 1:
        await asyncio.sleep(0)
    with pytest.raises(GateBusy):
        async with gate.slot():
            pass
    assert gate._waiting == 0
    hold.set()
    await task
    async with gate.slot():  # free again
        assert gate.in_flight == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
@pytest.mark.parametrize("cores", [1, 2])
def test_the_default_concurrency_leaves_one_core_to_the_event_loop(cores: int) -> None:
    """PASSWORD_HASH_CONCURRENCY's default counts the cores this process may use (a container's
    or taskset's), not the machine's, and leaves one of them to the loop (never fewer than 1)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < cores:
        pytest.skip(f"needs {cores} cores")
    allowed = set(available[:cores])
    script = (
        f"import os; os.sched_setaffinity(0, {allowed!r}); "
        "from app.kit.work_gate import default_concurrency; print(default_concurrency())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout) == max(1, cores - 1)
