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
from typing import Any

import pytest
from fastapi import FastAPI

from app.kit.warm import warm_routes, warm_templates
from app.kit.web import templates
from tests.conftest import (
    ROOT,
    TEST_SECRET_KEY,
    TEST_VAULT_KEYS,
    Backend,
    client_for,
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
    from app.kit.web import templates

    ref = garbage()
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        after = gc.get_freeze_count()
        pages = len(templates.env.list_templates(extensions=["html"]))
        print(json.dumps({
            "before": before, "after": after, "garbage_alive": ref() is not None,
            "pages": pages, "compiled": len(templates.env.cache),
        }))


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
    # Its page templates were compiled at start-up (app/kit/warm.py), not by the first requests.
    assert report["compiled"] >= report["pages"] > 20


async def test_an_app_made_by_create_app_does_not_freeze(backend: Backend, tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    async with running_app(make_settings(backend, tmp_path)):
        assert gc.get_freeze_count() == 0


# -- what the first requests would otherwise build on the loop (app/kit/warm.py) ------------------

FIRST_PAGES = (
    "/sign-in",
    "/sign-up",
    "/forgot-password",
    "/.well-known/oauth-authorization-server",
)


def _route_contexts() -> Any:
    """FastAPI's class of an included route's context, which a router's first request builds
    (FastAPI 0.16x); the test is skipped where FastAPI builds nothing lazily."""
    from fastapi import routing

    contexts = getattr(routing, "_EffectiveRouteContext", None)
    if contexts is None:
        pytest.skip("this FastAPI builds no route contexts on first use")
    return contexts


async def _first_requests_build(application: FastAPI, monkeypatch: pytest.MonkeyPatch) -> int:
    contexts = _route_contexts()
    built = [0]
    original = contexts.from_api_route.__func__

    def counting(cls: type, *args: object, **kwargs: object) -> object:
        built[0] += 1
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(contexts, "from_api_route", classmethod(counting))
    async with client_for(application) as client:
        for path in FIRST_PAGES:
            assert (await client.get(path)).status_code == 200, path
    monkeypatch.undo()
    return built[0]


async def test_warmed_routes_leave_nothing_for_the_first_requests_to_build(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_app(make_settings(backend, tmp_path)) as cold:
        # Without the warm-up the first requests build their routers' contexts on the loop...
        assert await _first_requests_build(cold, monkeypatch) > 0
    async with running_app(make_settings(backend, tmp_path)) as warmed:
        warm_routes(warmed.router.routes)
        # ...and after it they find every one built.
        assert await _first_requests_build(warmed, monkeypatch) == 0


def test_warm_templates_compiles_every_page_template() -> None:
    names = templates.env.list_templates(extensions=["html"])
    assert len(names) > 20  # the pages of every feature, not one folder's
    assert warm_templates() == len(names)
    compiled = {name for (_, name) in templates.env.cache}
    assert compiled >= set(names)
