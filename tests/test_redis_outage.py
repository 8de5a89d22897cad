"""Redis away (REDIS_URL set, nothing answering): the rate-limited endpoints answer 503 with
Retry-After (a page at /sign-in, temporarily_unavailable JSON at /register), not a 500."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import Backend, client_for, free_port, make_settings, running_app
from tests.helpers import PASSWORD, form_post


async def test_sign_in_and_registration_are_503_while_redis_is_away(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # a port nothing listens on
    settings = make_settings(backend, tmp_path, redis_url=nobody)
    async with running_app(settings) as app, client_for(app) as client:
        page = await form_post(
            client, "/sign-in", "/sign-in", {"email": "a@example.com", "password": PASSWORD}
        )
        assert page.status_code == 503, page.text
        assert page.headers["retry-after"] == "5"
        assert "Temporarily unavailable" in page.text
        registered = await client.post(
            "/register", json={"redirect_uris": ["https://a.example/cb"]}
        )
        assert registered.status_code == 503, registered.text
        assert registered.json()["error"] == "temporarily_unavailable"
        assert registered.headers["retry-after"] == "5"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
