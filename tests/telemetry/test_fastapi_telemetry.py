"""With Gatehouse's telemetry off (no OTLP endpoint), FastAPI's own telemetry is off too: a
request does not make FastAPI ask OpenTelemetry for its global providers (which would only be
the no-op ones) on its way in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.telemetry import _asgi as fastapi_telemetry
from opentelemetry import trace

from app.telemetry import otlp_configured
from tests.conftest import Backend, client_for, make_settings, running_app


class CountingTrace:
    """opentelemetry.trace, counting the lookups of the global tracer provider."""

    def __init__(self) -> None:
        self.lookups = 0

    def get_tracer_provider(self) -> Any:
        self.lookups += 1
        return trace.get_tracer_provider()

    def __getattr__(self, name: str) -> Any:
        return getattr(trace, name)


async def test_a_request_does_not_look_up_the_otel_providers(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not otlp_configured()
    counting = CountingTrace()
    monkeypatch.setattr(fastapi_telemetry, "trace", counting)
    async with running_app(make_settings(backend, tmp_path)) as app, client_for(app) as client:
        response = await client.get("/health")
        mcp = await client.post("/mcp", json={})
    assert response.status_code == 200
    assert mcp.status_code == 401
    assert counting.lookups == 0
