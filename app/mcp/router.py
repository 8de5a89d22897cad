"""The /mcp endpoint: Host/Origin checks, CORS, bearer auth, then the SDK's Streamable HTTP."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from app.config import Settings, is_loopback_host
from app.mcp.context import SCOPE_KEY, CallContext
from app.mcp.deps import McpChallenge, authenticate
from app.mcp.jsonrpc_ids import has_malformed_id
from app.oauth.metadata import protected_resource_metadata

router = APIRouter(include_in_schema=False)
metadata_router = APIRouter(include_in_schema=False)

MAX_BODY_BYTES = 1024 * 1024
PROTOCOL_HEADER = "mcp-protocol-version"


def allowed_hosts(settings: Settings) -> frozenset[str]:
    public = urlsplit(settings.public_url)
    hosts = {public.netloc.lower(), *(h.lower() for h in settings.allowed_hosts)}
    if is_loopback_host(public.hostname or ""):
        port = f":{public.port}" if public.port else ""
        hosts |= {f"127.0.0.1{port}", f"localhost{port}", f"[::1]{port}"}
    return frozenset(hosts)


def allowed_origins(settings: Settings) -> frozenset[str]:
    public = urlsplit(settings.public_url)
    origins = {f"{public.scheme}://{public.netloc}".lower(), *settings.allowed_origins}
    if is_loopback_host(public.hostname or ""):
        port = f":{public.port}" if public.port else ""
        origins |= {f"http://127.0.0.1{port}", f"http://localhost{port}", f"http://[::1]{port}"}
    return frozenset(o.rstrip("/").lower() for o in origins)


def check_host_and_origin(state: Any, headers: Headers) -> None:
    """DNS-rebinding protection (MCP "Security Warning": servers MUST validate Origin)."""
    origin = headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() not in state.mcp_origins:
        raise McpOriginRefused(403, "this origin may not use the MCP endpoint")
    host = (headers.get("host") or "").lower()
    if host not in state.mcp_hosts:
        raise McpOriginRefused(421, "this host name is not served here")


async def guard_host_and_origin(request: Request) -> None:
    """The same check as a FastAPI dependency, for routes other than /mcp itself."""
    check_host_and_origin(request.app.state, request.headers)


class McpOriginRefused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def jsonrpc_error(
    status_code: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}},
        status_code=status_code,
        headers=headers,
    )


def method_not_allowed() -> JSONResponse:
    # RFC 9110 §15.5.6: a 405 MUST carry Allow.
    message = "Method Not Allowed: this endpoint takes POST"
    return jsonrpc_error(405, -32600, message, headers={"Allow": "POST"})


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # ClientDisconnect when the client went away
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


class BodyTooLarge(Exception):
    pass


def _tool_calls(message: Any) -> list[str]:
    messages = message if isinstance(message, list) else [message]
    names = []
    for item in messages:
        if isinstance(item, dict) and item.get("method") == "tools/call":
            params = item.get("params")
            if isinstance(params, dict) and isinstance(params.get("name"), str):
                names.append(params["name"])
    return names


class SdkResponse(Response):
    """Hands the request, body already read, to the SDK's Streamable HTTP session manager."""

    def __init__(self, handler: Any, body: bytes, call: CallContext) -> None:
        super().__init__()
        self._handler = handler
        self._body = body
        self._call = call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = self._call
        pending = [self._body]

        async def replay_body() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        await self._handler(scope, replay_body, send)


STREAM_META_KEYS = ("progressToken", "io.modelcontextprotocol/logLevel")


def _answers_as_stream(headers: Headers, message: Any) -> bool:
    """Whether to hand the request to the SSE session manager or the plain-JSON one.

    Streamable HTTP lets the server answer a request with one JSON object or an SSE stream, and
    the client MUST support both. A stream only carries more when the request can receive
    notifications (a progress token, a log level) or is subscriptions/listen, so only those go
    to the SSE manager; everything else skips its task machinery (docs/PERFORMANCE.md). A
    client that does not accept JSON still gets SSE.
    """
    accept = headers.get("accept", "")
    if not ("text/event-stream" in accept or "*/*" in accept or "text/*" in accept):
        return False
    if not ("application/json" in accept or "*/*" in accept):
        return True
    for item in message if isinstance(message, list) else [message]:
        if not isinstance(item, dict) or item.get("method") == "subscriptions/listen":
            return True
        params = item.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        if isinstance(meta, dict) and any(key in meta for key in STREAM_META_KEYS):
            return True
    return False


class McpEndpoint:
    """/mcp as a plain ASGI endpoint: the same checks as before, without FastAPI's per-request
    dependency solving and validation (measured in docs/PERFORMANCE.md).

    Order: Host/Origin, then `authenticate` (the function behind `McpAuth`) whatever the method,
    then the body and the per-tool scopes, then the SDK. McpOriginRefused and McpChallenge
    propagate to the app's exception handlers exactly as they did from the dependencies.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        state = request.app.state
        headers = request.headers
        check_host_and_origin(state, headers)
        # Every method is authenticated first, so any probe gets the challenge that starts
        # discovery (RFC 9728 §5.1).
        auth = await authenticate(state, headers.get("authorization"))
        if request.method != "POST":
            # Streamable HTTP, on a GET: "The server MUST either return Content-Type:
            # text/event-stream ... or else return HTTP 405 Method Not Allowed". Stateless, we
            # have nothing to send on a standalone stream, which would stay open past its
            # token's revocation; DELETE ends a session that was never made.
            await method_not_allowed()(scope, receive, send)
            return
        try:
            body = await _read_body(request)
        except BodyTooLarge:
            await jsonrpc_error(413, -32600, "request body too large")(scope, receive, send)
            return
        except ClientDisconnect:
            return  # nobody is listening for an answer
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON or UTF-8; or nested too deep
            await jsonrpc_error(400, -32700, "Parse error")(scope, receive, send)
            return
        if has_malformed_id(message):
            invalid = "Invalid Request: the id must be a string or an integer"
            await jsonrpc_error(400, -32600, invalid)(scope, receive, send)
            return
        for name in _tool_calls(message):
            missing = state.mcp.tool_scopes.get(name, frozenset()) - auth.scopes
            if missing:
                raise McpChallenge(
                    403,
                    error="insufficient_scope",
                    description=f"the tool {name} needs the scope {' '.join(sorted(missing))}",
                )
        call = CallContext(
            auth=auth,
            settings=state.settings,
            sessionmaker=state.sessionmaker,
            protocol_version=headers.get(PROTOCOL_HEADER),
            app_state=state,
        )
        manager = (
            state.mcp_sse_manager
            if _answers_as_stream(headers, message)
            else state.mcp_json_manager
        )
        await SdkResponse(manager.handle_request, body, call)(scope, receive, send)


# GET and DELETE are routed here (not refused by the router) so they are authenticated first.
MCP_METHODS = ["GET", "POST", "DELETE"]
mcp_endpoint = McpEndpoint()
router.routes.append(Route("/mcp", mcp_endpoint, methods=MCP_METHODS))
router.routes.append(Route("/mcp/", mcp_endpoint, methods=MCP_METHODS))


@metadata_router.get("/.well-known/oauth-protected-resource")
@metadata_router.get("/.well-known/oauth-protected-resource/mcp")
async def resource_metadata(request: Request) -> JSONResponse:
    """RFC 9728 §3: the protected resource metadata of /mcp."""
    return JSONResponse(
        protected_resource_metadata(request.app.state.settings),
        headers={"Cache-Control": "public, max-age=300"},
    )
