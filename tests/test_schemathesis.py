"""Schemathesis over the JSON and OAuth endpoints of a live server: no input is a 5xx.

The app publishes no OpenAPI document (openapi_url=None) and its OAuth endpoints read raw forms,
so the document is written here: the endpoints' parameters as their RFCs define them, loosely
typed so that schemathesis also sends what the RFCs do not allow. Bounded: MAX_EXAMPLES per
operation (well under a minute in all on a loaded machine). Runs on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import Backend, LiveServer, start_server

MAX_EXAMPLES = 60
TEXT = {"type": "string"}


def form(*required: str, **properties: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": schema}},
    }


def get(*parameters: str) -> dict[str, Any]:
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": TEXT} for name in parameters
        ],
        "responses": {"default": {"description": "any"}},
    }


def post(body: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": body, "responses": {"default": {"description": "any"}}}


BASIC = {"name": "Authorization", "in": "header", "required": False, "schema": TEXT}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Gatehouse (as the tests see it)", "version": "1"},
    "paths": {
        "/.well-known/oauth-authorization-server": {"get": get()},
        "/.well-known/openid-configuration": {"get": get()},
        "/.well-known/oauth-protected-resource": {"get": get()},
        "/.well-known/oauth-protected-resource/mcp": {"get": get()},
        "/jwks.json": {"get": get()},
        "/authorize": {
            "get": get(
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "code_challenge",
                "code_challenge_method",
                "resource",
            )
        },
        "/token": {
            "post": {
                **post(
                    form(
                        "grant_type",
                        grant_type={
                            "type": "string",
                            "enum": ["authorization_code", "refresh_token", "x"],
                        },
                        code=TEXT,
                        redirect_uri=TEXT,
                        code_verifier=TEXT,
                        refresh_token=TEXT,
                        client_id=TEXT,
                        client_secret=TEXT,
                        resource=TEXT,
                        scope=TEXT,
                    )
                ),
                "parameters": [BASIC],
            }
        },
        "/revoke": {
            "post": {
                **post(form("token", token=TEXT, token_type_hint=TEXT, client_id=TEXT)),
                "parameters": [BASIC],
            }
        },
        "/introspect": {
            "post": {
                **post(form("token", token=TEXT, token_type_hint=TEXT, client_id=TEXT)),
                "parameters": [BASIC],
            }
        },
        "/register": {
            "post": post(
                {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "redirect_uris": {"type": "array", "items": TEXT},
                                    "client_name": TEXT,
                                    "token_endpoint_auth_method": TEXT,
                                    "grant_types": {"type": "array", "items": TEXT},
                                    "response_types": {"type": "array", "items": TEXT},
                                    "scope": TEXT,
                                    "client_uri": TEXT,
                                    "logo_uri": TEXT,
                                },
                            }
                        }
                    },
                }
            )
        },
        "/mcp": {
            "post": post(
                {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "jsonrpc": {"type": "string", "enum": ["2.0"]},
                                    "id": {},
                                    "method": TEXT,
                                    "params": {"type": "object"},
                                },
                                "required": ["jsonrpc", "method"],
                            }
                        }
                    },
                }
            )
        },
    },
}
schema = schemathesis.openapi.from_dict(DOCUMENT)
# Valid and invalid inputs both (negative mode breaks the types and formats above).
schema.config.generation.update(modes=list(schemathesis.GenerationMode))

# Operations inside app/oauth that still answer 5xx for some input, to be fixed once the oauth
# split merges (issue 19, finding named in each reason). Empty: none found so far.
KNOWN_OAUTH_5XX: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(backend, tmp_path_factory.mktemp("schemathesis"))
    yield live
    live.stop()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_is_a_server_error(case: Any, server: LiveServer) -> None:
    label = f"{case.method} {case.path}"
    if label in KNOWN_OAUTH_5XX:
        pytest.xfail(KNOWN_OAUTH_5XX[label])
    headers = {
        "MCP-Protocol-Version": "2025-06-18",
        "Accept": "application/json, text/event-stream",
    }
    response = case.call(base_url=server.url, headers=headers, timeout=30)
    assert response.status_code < 500, (
        f"{label} -> {response.status_code}\n{case.as_curl_command()}\n{response.text[:500]}"
    )


def test_the_server_logged_no_unhandled_error(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
    log = Path(server.log).read_text()
    assert "unhandled" not in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
