"""POST /token is answered in front of the router (app/kit/front.py InFront): exactly that path
and method, with what the router's layers gave it (the app's exception handlers, CORS, no-store),
and every other request still reaches the router as before."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import WebSocketException
from starlette.middleware.exceptions import ExceptionMiddleware

from app.kit.front import InFront
from tests.oauth.flow import refresh
from tests.oauth.support import assert_oauth_error, full_flow

ORIGIN = "https://example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def refresh_form(client_id: str, token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/token/", 307),  # the router's slash redirect, to /token: not answered here
        ("//token", 404),
        ("/Token", 404),
        ("/tokens", 404),
        ("/token/x", 404),
        ("/mcp/token", 404),
    ],
)
async def test_only_the_exact_path_is_taken_in_front(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any], path: str, status: int
) -> None:
    """A near miss goes to the router, and a refresh sent there rotates nothing."""
    _, tokens = await full_flow(client, public_client["client_id"])
    form = refresh_form(public_client["client_id"], tokens["refresh_token"])
    # Absolute, so that httpx takes "//token" for a path, not for a host.
    missed = await client.post(str(client.base_url).rstrip("/") + path, data=form)
    assert missed.request.url.path == path
    assert missed.status_code == status, missed.text
    assert "refresh_token" not in missed.text
    if status == 307:
        assert missed.headers["location"].endswith("/token")
    # The token was never used: it refreshes once, and only once, at /token.
    first = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert first.status_code == 200, first.text
    assert first.json()["refresh_token"] != tokens["refresh_token"]


async def test_a_query_string_neither_misses_nor_adds_parameters(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """/token?… is /token; parameters are read from the body only (RFC 6749 §3.2 POST), so a
    query cannot name another grant type, client or scope."""
    _, tokens = await full_flow(client, public_client["client_id"])
    form = refresh_form(public_client["client_id"], tokens["refresh_token"])
    response = await client.post(
        "/token?grant_type=authorization_code&client_id=other&scope=admin", data=form
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "mcp mcp:write"


async def test_a_percent_encoded_path_is_the_same_endpoint(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """The ASGI path is decoded, as the router's is: /%74oken is /token, answered the same."""
    _, tokens = await full_flow(client, public_client["client_id"])
    form = refresh_form(public_client["client_id"], tokens["refresh_token"])
    response = await client.post(httpx.URL("/%74oken"), data=form)
    assert response.request.url.raw_path == b"/%74oken"
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405_allowing_post(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any], method: str
) -> None:
    """Only POST is taken in front; the router answers the rest with 405 and `Allow: POST`
    (RFC 9110 §15.5.6), and the token in the body is not touched."""
    _, tokens = await full_flow(client, public_client["client_id"])
    body = httpx.QueryParams(refresh_form(public_client["client_id"], tokens["refresh_token"]))
    response = await client.request(method, "/token", content=str(body).encode(), headers=FORM)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert (await refresh(client, public_client["client_id"], tokens["refresh_token"])).is_success


async def test_a_preflight_is_answered_by_cors_not_by_the_endpoint(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/token",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_every_answer_carries_cors_and_no_store(
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
    basic_client: dict[str, Any],
) -> None:
    """200, an OAuth 400 and a 401 invalid_client (with its Basic challenge, exposed to
    scripts): each through the app's own handlers and the pages' CORS."""
    _, tokens = await full_flow(client, public_client["client_id"])
    cors = {"Origin": ORIGIN}
    form = refresh_form(public_client["client_id"], tokens["refresh_token"])
    ok = await client.post("/token", data=form, headers=cors)
    assert ok.status_code == 200
    assert (ok.headers["cache-control"], ok.headers["pragma"]) == ("no-store", "no-cache")
    bad = await client.post(
        "/token", data=refresh_form(public_client["client_id"], "gh_rt_made_up"), headers=cors
    )
    assert_oauth_error(bad, 400, "invalid_grant")
    basic = base64.b64encode(f"{basic_client['client_id']}:wrong".encode()).decode()
    refused = await client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "gh_rt_x"},
        headers={**cors, "Authorization": f"Basic {basic}"},
    )
    assert_oauth_error(refused, 401, "invalid_client")
    assert refused.headers["www-authenticate"].startswith("Basic ")
    for response in (ok, bad, refused):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()


async def test_a_nul_in_a_parameter_is_invalid_request_never_a_500(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    """Unstorable text is refused before any query (app/kit/text.py), by the OAuth handler."""
    response = await client.post(
        "/token", data=refresh_form(public_client["client_id"], "gh_rt_\x00x")
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_the_front_answers_with_the_handlers_of_the_finished_app(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Every exception handler the app ends with (but 500/Exception, ServerErrorMiddleware's)
    is in the table /token answers with: `handled` copies the table when put_before_router
    runs, so a handler installed after it would be missing at /token only."""
    assert (await client.get("/health")).status_code == 200  # the stack is built on first use
    stack = app.middleware_stack
    fronts: list[InFront] = []
    while stack is not None:
        if type(stack) is InFront:
            fronts.append(stack)
        stack = getattr(stack, "app", None)
    [front] = [f for f in fronts if f.paths == frozenset({"/token"})]
    assert front.methods == frozenset({"POST"})
    assert isinstance(front.endpoint, ExceptionMiddleware)
    expected = {k for k in app.exception_handlers if k not in (500, Exception)}
    expected |= {WebSocketException}  # ExceptionMiddleware's own
    table = set(front.endpoint._exception_handlers) | set(front.endpoint._status_handlers)
    assert table == expected
