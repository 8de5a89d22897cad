"""A browser-based MCP client on another origin, driven in Chromium: a page served by a second
local server does discovery, registration, authorization, token and tools/call with fetch().

The live server is a loopback development server (http://127.0.0.1:<port>): the branch of the
origin rule that keeps DNS-rebinding protection, so the page's origin is named in ALLOWED_ORIGINS,
and the same page against a server that does not name it is refused. The deployed (https) branch,
which takes any origin, needs a public https name the browser trusts; it is pinned in-process by
tests/mcp/test_browser_origins.py with the same headers the browser reads here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.conftest import Backend, LiveServer, start_server
from tests.local_server import serve_asgi
from tests.oauth.flow import Authorization
from tests.oauth.test_oauth_browser import authorize_in_browser, sign_up_then_out

PAGE = "<!doctype html><title>{title}</title><p id=where>{title}</p>"


async def _page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=request.url.path.strip("/") or "app"))


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    app = Starlette(routes=[Route("/", _page), Route("/callback", _page)])
    with serve_asgi(app) as url:
        yield url


@pytest.fixture
def server(backend: Backend, tmp_path: Path, page_origin: str) -> Iterator[LiveServer]:
    live = start_server(backend, tmp_path, ALLOWED_ORIGINS=page_origin)
    yield live
    live.stop()


DISCOVER_AND_REGISTER = """
async (base) => {
  const mcpHeaders = {"Content-Type": "application/json",
                      "Accept": "application/json, text/event-stream",
                      "MCP-Protocol-Version": "2025-06-18"};
  const probe = await fetch(base + "/mcp", {method: "POST", headers: mcpHeaders,
    body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "ping", params: {}})});
  const challenge = probe.headers.get("www-authenticate");
  const prmUrl = /resource_metadata="([^"]+)"/.exec(challenge)[1];
  const prm = await (await fetch(prmUrl)).json();
  const asUrl = prm.authorization_servers[0] + "/.well-known/oauth-authorization-server";
  const meta = await (await fetch(asUrl)).json();
  const registered = await fetch(meta.registration_endpoint, {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({client_name: "Browser App", token_endpoint_auth_method: "none",
                          redirect_uris: [location.origin + "/callback"],
                          grant_types: ["authorization_code", "refresh_token"]})});
  return {probe: probe.status, challenge, resource: prm.resource, meta,
          registered: registered.status, client: await registered.json()};
}
"""

TOKEN_AND_CALL = """
async ({token_endpoint, form, base}) => {
  const tokens = await fetch(token_endpoint, {method: "POST",
    body: new URLSearchParams(form)});
  const issued = await tokens.json();
  const call = await fetch(base + "/mcp", {method: "POST",
    headers: {"Content-Type": "application/json",
              "Accept": "application/json, text/event-stream",
              "MCP-Protocol-Version": "2025-06-18",
              "Authorization": "Bearer " + issued.access_token},
    body: JSON.stringify({jsonrpc: "2.0", id: 2, method: "tools/call",
                          params: {name: "whoami", arguments: {}}})});
  return {tokens: tokens.status, scope: issued.scope, call: call.status,
          cacheControl: call.headers.get("cache-control"), reply: await call.json()};
}
"""

BLOCKED_CALL = """
async (base) => {
  try {
    const r = await fetch(base + "/mcp", {method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer x"},
      body: "{}"});
    return "answered " + r.status;
  } catch (e) { return "blocked: " + e.name; }
}
"""


async def test_a_page_on_another_origin_connects_with_fetch(
    browser: Any, server: LiveServer, page_origin: str
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    email = await sign_up_then_out(page, server)
    await page.goto(page_origin + "/")
    found: dict[str, Any] = await page.evaluate(DISCOVER_AND_REGISTER, server.url)
    assert found["probe"] == 401
    assert 'scope="mcp mcp:write"' in found["challenge"]
    assert found["registered"] == 201, found
    assert found["meta"]["token_endpoint"] == server.url + "/token"

    auth = Authorization(
        found["client"]["client_id"],
        redirect_uri=page_origin + "/callback",
        resource=found["resource"],
    )
    await authorize_in_browser(page, server, auth, email)
    await page.get_by_role("button", name="Approve").click()
    await page.wait_for_url(f"{page_origin}/callback?**")
    params = dict(
        item.split("=", 1) for item in page.url.split("?", 1)[1].split("&") if "=" in item
    )
    assert params["state"] == auth.state

    form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": auth.redirect_uri,
        "code_verifier": auth.verifier,
        "client_id": auth.client_id,
        "resource": found["resource"],
    }
    done: dict[str, Any] = await page.evaluate(
        TOKEN_AND_CALL,
        {"token_endpoint": found["meta"]["token_endpoint"], "form": form, "base": server.url},
    )
    await context.close()
    assert done["tokens"] == 200
    assert done["scope"] == "mcp mcp:write"
    assert done["call"] == 200
    assert done["cacheControl"] == "no-store"
    assert email in str(done["reply"]["result"])


async def test_the_same_page_is_refused_where_its_origin_is_not_allowed(
    browser: Any, live_server: LiveServer, page_origin: str
) -> None:
    # The session's live server is loopback with no ALLOWED_ORIGINS: DNS-rebinding protection.
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(page_origin + "/")
    outcome = await page.evaluate(BLOCKED_CALL, live_server.url)
    await context.close()
    assert outcome == "blocked: TypeError"
