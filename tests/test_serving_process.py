"""The app uvicorn serves (`app.asgi`) moves its start-up objects out of the collector's way.

A full garbage collection walks every tracked object. The objects start-up leaves behind
(modules, routes, models, mappers) never become garbage, yet each full collection walked them
all while every request waited (docs/PERFORMANCE.md). The serving process collects once and
freezes what is left when its start-up is done; apps made by `create_app()` elsewhere (tests,
tools) are left alone.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import (
    ROOT,
    TEST_SECRET_KEY,
    TEST_VAULT_KEYS,
    Backend,
    make_settings,
    running_app,
)

PROBE = """
import asyncio, gc, json, weakref

gc.disable()  # from here on, only an explicit collection can free the cycle below


class Cycle:
    pass


def garbage():
    cycle = Cycle()
    cycle.itself = cycle
    return weakref.ref(cycle)


async def main():
    from app.asgi import app

    ref = garbage()
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        after = gc.get_freeze_count()
        print(json.dumps({"before": before, "after": after, "garbage_alive": ref() is not None}))


asyncio.run(main())
"""


def test_the_served_app_freezes_its_start_up_objects_after_collecting_garbage(
    backend: Backend, tmp_path: Path
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": backend.url,
        "PUBLIC_URL": "http://127.0.0.1:8000",
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_KEYS": TEST_VAULT_KEYS,
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"] == 0
    # The whole application is frozen: tens of thousands of objects, not a handful.
    assert report["after"] > 10_000
    # Garbage present at start-up was collected first, not frozen (frozen objects are never freed).
    assert report["garbage_alive"] is False


async def test_an_app_made_by_create_app_does_not_freeze(backend: Backend, tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    async with running_app(make_settings(backend, tmp_path)):
        assert gc.get_freeze_count() == 0
