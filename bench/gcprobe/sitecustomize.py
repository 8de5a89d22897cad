"""Records every garbage collection of a benchmarked server: when, which generation, how long.

`bench/run.py --gc-pauses` puts this folder on the server's PYTHONPATH, so Python imports it at
start-up, and names the output file in GC_PAUSES_FILE. A collection stops every request the
process is serving, so its duration is a pause seen by all of them. Written out at exit.
"""

import atexit
import gc
import json
import os
import time

_OUT = os.environ.get("GC_PAUSES_FILE")
if _OUT:
    _events: list[tuple[float, int, float]] = []  # (wall clock at the end, generation, seconds)
    _started: dict[int, float] = {}

    def _record(phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        generation = info["generation"]
        if phase == "start":
            _started[generation] = now
        else:
            _events.append((time.time(), generation, now - _started.pop(generation, now)))

    def _write() -> None:
        with open(_OUT, "w") as out:
            json.dump(_events, out)

    gc.callbacks.append(_record)
    atexit.register(_write)
