"""Traces and metrics of a full OAuth + MCP journey reach a real OTLP receiver, scrubbed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Backend, LiveServer, start_server
from tests.helpers import PASSWORD, sign_in, sign_up, unique_email
from tests.oauth.flow import Authorization, authorize_code, exchange, refresh, register
from tests.telemetry.otlp_receiver import Receiver, Span, start_receiver

BOGUS_TOOL = "no-such-tool-" + "x" * 64
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


@dataclass
class Journey:
    receiver: Receiver
    server: LiveServer
    user_id: str
    client_id: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def receiver(backend: Backend) -> Iterator[Receiver]:
    """One receiver per database run, so each run's assertions see only its own journey."""
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def traced_server(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[LiveServer]:
    server = start_server(
        backend,
        tmp_path_factory.mktemp("otel"),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="gatehouse-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="300",
        LOG_FORMAT="json",
    )
    yield server
    server.stop()


async def _mcp_call(web: httpx.AsyncClient, token: str, name: str, request_id: int) -> Any:
    response = await web.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": {}},
        },
        headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = next(
            json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")
        )
    else:
        data = response.json()
    return data["result"]


@pytest.fixture(scope="module")
async def journey(traced_server: LiveServer, receiver: Receiver) -> Journey:
    async with httpx.AsyncClient(base_url=traced_server.url) as web:
        email = unique_email("otel")
        await sign_up(web, email)
        web.cookies.clear()
        signed_in = await sign_in(web, email)
        assert signed_in.status_code == 303
        session_cookie = web.cookies.get("gh_session")
        assert session_cookie
        reg = await register(web)
        auth = Authorization(client_id=reg["client_id"])
        code = await authorize_code(web, auth)
        tokens = (await exchange(web, auth, code)).json()
        refreshed = (await refresh(web, auth.client_id, tokens["refresh_token"])).json()
        result = await _mcp_call(web, refreshed["access_token"], "whoami", 7)
        user_id = result["structuredContent"]["user_id"]
        await _mcp_call(web, refreshed["access_token"], "notes_list", 8)
        # A made-up tool name must not become a metric attribute (unbounded series in memory).
        bogus = await web.post(
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": BOGUS_TOOL, "arguments": {}},
            },
            headers={**MCP_HEADERS, "Authorization": f"Bearer {refreshed['access_token']}"},
        )
        assert bogus.status_code in (200, 400)
        # A sign-in failure too, with a known wrong password.
        web.cookies.clear()
        failed = await sign_in(web, email, "wrong-password-known-value")
        assert failed.status_code == 401
    secrets = {
        "password": PASSWORD,
        "wrong password": "wrong-password-known-value",
        "session cookie": session_cookie,
        "authorization code": code,
        "state": auth.state,
        "code verifier": auth.verifier,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "rotated refresh token": refreshed["refresh_token"],
        "refreshed access token": refreshed["access_token"],
    }
    # Wait (bounded) for the batch processor and the metric reader to deliver. The failed
    # sign-in is the journey's last step, so its span is what to wait for: the first sign-in's
    # span alone may arrive in an earlier batch.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = {s.name for s in receiver.all_spans()}
        failed_sign_in = [
            s
            for s in receiver.named("auth.sign_in")
            if s.attributes.get("gatehouse.reason") == "bad_credentials"
        ]
        if (
            failed_sign_in
            and {"oauth.token", "tools/call whoami"} <= names
            and {"gatehouse.oauth.tokens_issued", "gatehouse.auth.signin_failures"}
            <= receiver.metric_names
        ):
            break
        await asyncio.sleep(0.2)
    return Journey(receiver, traced_server, user_id, auth.client_id, secrets)


def _one(spans: list[Span], **attributes: Any) -> Span:
    matching = [s for s in spans if all(s.attributes.get(k) == v for k, v in attributes.items())]
    assert matching, f"no span with {attributes} among {[s.attributes for s in spans]}"
    return matching[0]


def _parent(journey: Journey, span: Span) -> Span:
    spans = {s.span_id: s for s in journey.receiver.all_spans()}
    assert span.parent_span_id in spans, f"{span.name} has no exported parent"
    return spans[span.parent_span_id]


async def test_token_exchange_span_is_a_child_of_the_http_server_span(journey: Journey) -> None:
    token = _one(
        journey.receiver.named("oauth.token"),
        **{"oauth.grant_type": "authorization_code", "gatehouse.outcome": "issued"},
    )
    assert token.attributes["oauth.client_id"] == journey.client_id
    parent = _parent(journey, token)
    assert parent.trace_id == token.trace_id
    assert parent.attributes.get("http.route") == "/token"
    assert parent.kind == 2  # SERVER
    assert token.resource["service.name"] == "gatehouse-test"
    assert token.resource["gatehouse.role"] == "all"
    assert token.resource["deployment.environment"] == "development"


async def test_database_spans_hang_off_the_token_request(journey: Journey) -> None:
    token = _one(journey.receiver.named("oauth.token"), **{"gatehouse.outcome": "issued"})
    in_trace = [s for s in journey.receiver.all_spans() if s.trace_id == token.trace_id]
    assert any("db.system" in s.attributes or "db.system.name" in s.attributes for s in in_trace)


async def test_refresh_span_records_rotation(journey: Journey) -> None:
    _one(
        journey.receiver.named("oauth.token"),
        **{"oauth.grant_type": "refresh_token", "gatehouse.outcome": "rotated"},
    )


async def test_authorize_and_consent_spans_record_what_happened(journey: Journey) -> None:
    authorize = journey.receiver.named("oauth.authorize")
    _one(authorize, **{"gatehouse.outcome": "consent_shown", "gatehouse.signed_in": True})
    _one(journey.receiver.named("oauth.consent"), **{"gatehouse.outcome": "approved"})
    _one(journey.receiver.named("oauth.register"), **{"gatehouse.outcome": "registered"})


async def test_sign_in_spans_record_success_and_the_failure_reason(journey: Journey) -> None:
    spans = journey.receiver.named("auth.sign_in")
    _one(spans, **{"gatehouse.outcome": "success", "enduser.id": journey.user_id})
    _one(spans, **{"gatehouse.outcome": "failure", "gatehouse.reason": "bad_credentials"})


async def test_mcp_tool_span_follows_the_semantic_conventions_with_the_caller(
    journey: Journey,
) -> None:
    span = _one(journey.receiver.named("tools/call whoami"), **{"jsonrpc.request.id": "7"})
    assert span.attributes["mcp.method.name"] == "tools/call"
    assert span.attributes["gen_ai.tool.name"] == "whoami"
    assert span.attributes["mcp.protocol.version"] == "2025-06-18"
    assert span.attributes["enduser.id"] == journey.user_id
    assert span.attributes["oauth.client_id"] == journey.client_id
    # It belongs to the trace of the POST /mcp request.
    http_spans = [
        s
        for s in journey.receiver.all_spans()
        if s.trace_id == span.trace_id and s.attributes.get("http.route") == "/mcp"
    ]
    assert http_spans


async def test_metrics_are_exported(journey: Journey) -> None:
    assert {
        "gatehouse.oauth.tokens_issued",
        "gatehouse.oauth.refreshes",
        "gatehouse.auth.signin_failures",
        "mcp.server.operation.duration",
        "gatehouse.mcp.tool.duration",
    } <= journey.receiver.metric_names


async def test_no_secret_reaches_spans_metrics_or_logs(journey: Journey) -> None:
    journey.server.stop()  # flushes; the log is complete afterwards
    exported = b"".join(journey.receiver.raw)
    log = Path(journey.server.log).read_bytes()
    assert exported, "nothing was exported"
    for label, value in journey.secrets.items():
        assert value.encode() not in exported, f"{label} leaked into telemetry"
        assert value.encode() not in log, f"{label} leaked into the log"


async def test_logs_are_json_lines_with_trace_ids(journey: Journey) -> None:
    lines = [
        json.loads(line)
        for line in Path(journey.server.log).read_text().splitlines()
        if line.startswith("{")
    ]
    assert lines
    with_trace = [line for line in lines if "trace_id" in line]
    assert with_trace, "no log line carried a trace id"
    assert all(len(line["trace_id"]) == 32 for line in with_trace)


async def test_without_an_endpoint_nothing_is_exported_and_nothing_fails(
    live_server: LiveServer, receiver: Receiver
) -> None:
    before = len(receiver.raw)
    async with httpx.AsyncClient(base_url=live_server.url) as web:
        await sign_up(web)
        reg = await register(web)
        auth = Authorization(client_id=reg["client_id"])
        code = await authorize_code(web, auth)
        assert (await exchange(web, auth, code)).status_code == 200
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in live_server.env
    assert len(receiver.raw) == before


async def test_metric_attributes_never_carry_client_chosen_names(journey: Journey) -> None:
    # Wait (bounded) for a metric export after the bogus call was recorded.
    deadline = time.monotonic() + 10
    seen = len(journey.receiver.metric_raw)
    while len(journey.receiver.metric_raw) < seen + 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    metrics = b"".join(journey.receiver.metric_raw)
    assert b"gatehouse.mcp.tool.duration" in metrics
    assert b"whoami" in metrics
    assert BOGUS_TOOL.encode() not in metrics
    assert b"_unknown" in metrics
