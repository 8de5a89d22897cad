"""Measures a benchmarked server's event-loop lag, and whether the loop ran or waited meanwhile.

Put this folder on the server's PYTHONPATH and name an output file in LOOP_LAG_FILE. A task in
the server's loop sleeps 1 ms again and again; each wake-up later than asked is a lag, written
with the loop thread's own CPU time over the same interval. A lag whose CPU time is about as long
is the loop busy running something (a long callback); a lag with little CPU time is the loop
thread not running at all (descheduled by the OS, or waiting for the GIL). Written out at exit.
"""

import atexit
import json
import os

_OUT = os.environ.get("LOOP_LAG_FILE")
if _OUT:
    import asyncio
    import time

    import uvicorn.server

    _lags: list[tuple[float, float, float]] = []  # (wall clock, lag seconds, thread CPU seconds)
    _original_startup = uvicorn.server.Server.startup
    _tasks: list[asyncio.Task[None]] = []

    async def _watch() -> None:
        interval = 0.001
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(interval)
            lag = time.perf_counter() - wall - interval
            if lag > 0.001:
                _lags.append((time.time(), lag, time.thread_time() - cpu))

    async def _startup(self, sockets=None):  # type: ignore[no-untyped-def]
        await _original_startup(self, sockets=sockets)
        _tasks.append(asyncio.get_running_loop().create_task(_watch()))

    uvicorn.server.Server.startup = _startup  # type: ignore[method-assign]

    def _write() -> None:
        if not _tasks:  # not a server (a migration, the load generator): nothing measured
            return
        with open(_OUT, "w") as out:
            json.dump(_lags, out)

    atexit.register(_write)
