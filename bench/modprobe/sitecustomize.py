"""Writes the names of the modules a benchmarked server has loaded, at its exit.

`bench/rss.py` puts this folder on the server's PYTHONPATH, so Python imports it at start-up,
and names the output file in MODULES_FILE. Nothing is recorded while the server runs.
"""

import atexit
import json
import os
import sys

_OUT = os.environ.get("MODULES_FILE")
if _OUT:

    def _write() -> None:
        with open(_OUT, "w") as out:
            json.dump(sorted(sys.modules), out)

    atexit.register(_write)
