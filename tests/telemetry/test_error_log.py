"""An unhandled exception is one log line (type, method, path, error id) and a plain 500; the
traceback only at DEBUG, scrubbed (no password, hash, token or form body)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import Request

from app.telemetry import TextFormatter
from tests.conftest import Backend, client_for, make_settings, running_app

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
SECRET_MESSAGE = f"password=hunter2 hash={HASH} token=gh_rt_{'x' * 40}"


async def test_an_unhandled_exception_is_one_line_and_a_500_with_an_error_id(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(make_settings(backend, tmp_path)) as app, client_for(app) as client:

        async def broken(request: Request) -> None:
            raise RuntimeError(SECRET_MESSAGE)

        app.add_api_route("/broken-for-test", broken, methods=["POST"])
        caplog.set_level(logging.INFO)
        response = await client.post("/broken-for-test", data={"password": "hunter2"})
        again = await client.get("/health")  # the same client carries on

    assert response.status_code == 500
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("Internal server error (error id ")
    ident = response.text.removeprefix("Internal server error (error id ").removesuffix(").\n")
    assert len(ident) == 32
    assert again.status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"unhandled RuntimeError at POST /broken-for-test (error id {ident})"
    ]
    assert all(r.exc_info is None for r in caplog.records if r.levelno > logging.DEBUG)
    assert "hunter2" not in caplog.text


async def test_at_debug_the_traceback_is_logged_and_scrubbed(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(make_settings(backend, tmp_path)) as app, client_for(app) as client:

        async def broken(request: Request) -> None:
            raise RuntimeError(SECRET_MESSAGE)

        app.add_api_route("/broken-for-test", broken, methods=["POST"])
        caplog.set_level(logging.DEBUG, logger="gatehouse.errors")
        assert (await client.post("/broken-for-test")).status_code == 500

    (trace,) = [r for r in caplog.records if r.exc_info is not None]
    assert trace.levelno == logging.DEBUG
    formatted = TextFormatter().format(trace)
    assert "Traceback (most recent call last)" in formatted
    assert "RuntimeError" in formatted
    for secret in ("hunter2", HASH, "gh_rt_"):
        assert secret not in formatted
