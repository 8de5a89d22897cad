"""The /mcp endpoint: Host/Origin checks (app/mcp/origins.py), bearer auth, then the SDK's
Streamable HTTP.

`install(app, settings, server)` mounts it with its exception handlers and CORS; the lifespan
enters `McpEndpoint.running()` so the SDK's session managers have their task groups.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.kit.body_limit import BodyTooLarge, read_body
from app.mcp import api, modern
from app.mcp.auth import McpChallenge, authenticate, challenge_response
from app.mcp.call import SCOPE_KEY, CallContext
from app.mcp.front import McpFirst
from app.mcp.jsonrpc_ids import has_malformed_id
from app.mcp.lean import LeanKernel
from app.mcp.origins import (
    McpOriginRefused,
    allowed_hosts,
    allowed_origins,
    check_host_and_origin,
)
from app.mcp.replies import jsonrpc_error, method_not_allowed, private_send
from app.mcp.revocation import RevocationUnknown
from app.mcp.server import GatehouseMCP
from app.mcp.session_cap import (
    MAX_SESSIONS,
    MAX_SESSIONS_PER_CLIENT,
    MAX_SESSIONS_PER_USER,
    SESSION_IDLE_TIMEOUT,
    TooManySessions,
    cap_sessions_per_user,
)
from app.oauth.metadata import protected_resource_metadata
from app.state import services_of

metadata_router = APIRouter(include_in_schema=False)

MAX_BODY_BYTES = 1024 * 1024
PROTOCOL_HEADER = "mcp-protocol-version"


def _tool_calls(message: object) -> list[str]:
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

    def __init__(
        self, handler: ASGIApp, body: bytes, call: CallContext, *, session: bool = False
    ) -> None:
        super().__init__()
        self._handler = handler
        self._body = body
        self._call = call
        self._session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = self._call
        if self._session:
            scope["user"] = session_owner(self._call)
        pending = [self._body]

        async def replay_body() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        await self._handler(scope, replay_body, private_send(send))


def session_owner(call: CallContext) -> AuthenticatedUser:
    """The principal a handshake-generation session is bound to: the SDK answers 404 to a
    request for that session from any other (client, issuer, subject)."""
    auth = call.auth
    return AuthenticatedUser(
        AccessToken(
            token="",  # never kept: the principal is the (client, issuer, subject) below
            client_id=auth.client.id,
            scopes=sorted(auth.scopes),
            expires_at=auth.expires_at,
            subject=str(auth.user.id),
            claims={"iss": call.settings.issuer},
        )
    )


STREAM_META_KEYS = ("progressToken", "io.modelcontextprotocol/logLevel")
SESSION_HEADER = "mcp-session-id"
# What a handshake-generation client declares when it can answer the server's own requests.
BACK_CHANNEL_CAPABILITIES = ("elicitation", "sampling", "roots")


def _wants_session(headers: Headers, message: object) -> bool:
    """Whether this request belongs to the stateful session manager.

    Gatehouse serves the handshake generation statelessly (any replica answers any request),
    but a server-to-client request (elicitation, sampling, roots) needs a session for the
    client's answer to land on: Streamable HTTP, "Session Management". So an `initialize` that
    declares one of those capabilities opens a session, and requests carrying its
    Mcp-Session-Id go back to it; everything else stays stateless.
    """
    if headers.get(SESSION_HEADER) is not None:
        return True
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return False
    params = message.get("params")
    capabilities = params.get("capabilities") if isinstance(params, dict) else None
    return isinstance(capabilities, dict) and any(
        capabilities.get(name) is not None for name in BACK_CHANNEL_CAPABILITIES
    )


def _answers_as_stream(
    headers: Headers, message: object, streaming: Collection[str] = frozenset()
) -> bool:
    """Whether to hand the request to the SSE session manager or the plain-JSON one.

    Streamable HTTP lets the server answer a request with one JSON object or an SSE stream, and
    the client MUST support both. A stream only carries more when the request can receive
    notifications (a progress token, a log level), is subscriptions/listen, or calls a tool
    registered with `streaming=True` (a slow tool: the SSE path sends keep-alive pings and
    cancels the tool when the client goes away), so only those go to the SSE manager;
    everything else skips its task machinery (docs/PERFORMANCE.md). A client that does not
    accept JSON still gets SSE.
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
        if item.get("method") == "tools/call" and isinstance(params, dict):
            if params.get("name") in streaming:
                return True
        meta = params.get("_meta") if isinstance(params, dict) else None
        if isinstance(meta, dict) and any(key in meta for key in STREAM_META_KEYS):
            return True
    return False


class McpEndpoint:
    """/mcp as a plain ASGI endpoint: the same checks as before, without FastAPI's per-request
    dependency solving and validation (measured in docs/PERFORMANCE.md).

    Order: Host/Origin, then `authenticate` (the function behind `McpAuth`) whatever the method,
    then the body and the per-tool scopes, then the SDK. McpOriginRefused and McpChallenge
    propagate to the app's exception handlers.
    """

    def __init__(self, settings: Settings, server: GatehouseMCP) -> None:
        self.server = server
        self.hosts = allowed_hosts(settings)
        self.origins = allowed_origins(settings)
        # Host and Origin are checked above, before authentication.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self.sse_manager = _session_manager(server, security, json_response=False)
        self.json_manager = _session_manager(server, security, json_response=True)
        self.session_manager = _session_manager(
            server, security, json_response=False, stateful=True
        )
        cap_sessions_per_user(
            self.session_manager, per_user=MAX_SESSIONS_PER_USER, per_client=MAX_SESSIONS_PER_CLIENT
        )
        self.lean = LeanKernel(server.server)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's session managers' task groups, for the app's lifespan to enter."""
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.sse_manager.run())
            await stack.enter_async_context(self.json_manager.run())
            await stack.enter_async_context(self.session_manager.run())
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        services = services_of(request.app)
        headers = request.headers
        check_host_and_origin(headers, hosts=self.hosts, origins=self.origins)
        # Every method is authenticated first, so any probe gets the challenge that starts
        # discovery (RFC 9728 §5.1).
        auth = await authenticate(services.resource(), headers.get("authorization"))
        if request.method == "DELETE" and headers.get(SESSION_HEADER) is not None:
            # Ending a handshake-generation session (its owner is checked by the SDK).
            call = CallContext(auth=auth, services=services, protocol_version=None)
            ending = SdkResponse(self.session_manager.handle_request, b"", call, session=True)
            await ending(scope, receive, send)
            return
        if request.method != "POST":
            # Streamable HTTP, on a GET: "The server MUST either return Content-Type:
            # text/event-stream ... or else return HTTP 405 Method Not Allowed". Stateless, we
            # have nothing to send on a standalone stream, which would stay open past its
            # token's revocation; DELETE ends a session that was never made.
            await method_not_allowed()(scope, receive, send)
            return
        read = await _read_message(request)
        if not isinstance(read, tuple):
            if read is not None:
                await read(scope, receive, send)
            return
        body, message = read
        if has_malformed_id(message):
            invalid = "Invalid Request: the id must be a string or an integer"
            await jsonrpc_error(400, -32600, invalid)(scope, receive, send)
            return
        self._demand_tool_scopes(message, auth.scopes)
        call = CallContext(
            auth=auth, services=services, protocol_version=headers.get(PROTOCOL_HEADER)
        )
        session = _wants_session(headers, message)
        if session:
            manager = self.session_manager
        elif _answers_as_stream(headers, message, self.server.streaming_tools):
            manager = self.sse_manager
        else:
            manager = self.json_manager
            if modern.is_modern(call.protocol_version):
                scope[SCOPE_KEY] = call
                request._body = body  # noqa: SLF001 - a tool may read it, as on the SDK's path
                lifespan = manager._lifespan_state  # noqa: SLF001 - entered by manager.run()
                sdk = self.server.server._lowlevel_server  # noqa: SLF001
                reply = private_send(send)
                if await modern.answer(sdk, lifespan, request, message, reply, lean=self.lean):
                    return
        await SdkResponse(manager.handle_request, body, call, session=session)(scope, receive, send)

    def put_in_front(self, app: FastAPI) -> None:
        """Add `McpFirst` (app/mcp/front.py) as the app's outermost middleware so far: /mcp
        requests reach this endpoint, with its CORS and the app's exception handlers, before the
        pages' middleware and the router."""
        app.add_middleware(
            McpFirst,
            endpoint=self,
            paths=MCP_PATHS,
            handlers=app.exception_handlers,
            origins=self.origins,
        )

    def _demand_tool_scopes(self, message: object, granted: frozenset[str]) -> None:
        for name in _tool_calls(message):
            missing = self.server.tool_scopes.get(name, frozenset()) - granted
            if missing:
                raise McpChallenge(
                    403,
                    error="insufficient_scope",
                    description=f"the tool {name} needs the scope {' '.join(sorted(missing))}",
                )


def _session_manager(
    server: GatehouseMCP,
    security: TransportSecuritySettings,
    *,
    json_response: bool,
    stateful: bool = False,
) -> StreamableHTTPSessionManager:
    server.server.streamable_http_app(
        stateless_http=not stateful,
        json_response=json_response,
        transport_security=security,
        max_sessions=MAX_SESSIONS,
        session_idle_timeout=SESSION_IDLE_TIMEOUT,
    )
    return server.server.session_manager


async def _read_message(request: Request) -> tuple[bytes, object] | Response | None:
    """The body and its JSON, or the JSON-RPC error to answer instead (None when the client
    went away: nobody is listening for an answer)."""
    try:
        body = await read_body(request, max_bytes=MAX_BODY_BYTES)
    except BodyTooLarge:
        return jsonrpc_error(413, -32600, "request body too large")
    except ClientDisconnect:
        return None
    try:
        return body, json.loads(body)
    except (ValueError, RecursionError):  # bad JSON or UTF-8; or nested too deep
        return jsonrpc_error(400, -32700, "Parse error")


# Every method is routed here (none refused by the router, whose 405 would carry neither the
# challenge nor the cache headers), so each is authenticated first.
MCP_METHODS = None
MCP_PATHS = frozenset({"/mcp", "/mcp/"})


@metadata_router.get("/.well-known/oauth-protected-resource")
@metadata_router.get("/.well-known/oauth-protected-resource/mcp")
async def resource_metadata(request: Request) -> JSONResponse:
    """RFC 9728 §3: the protected resource metadata of /mcp."""
    return JSONResponse(
        protected_resource_metadata(services_of(request.app).settings),
        headers={"Cache-Control": "public, max-age=300"},
    )


def install(app: FastAPI, settings: Settings, server: GatehouseMCP) -> McpEndpoint:
    """Mount /mcp, its metadata, /api/me and their error handlers; `put_in_front` then puts
    /mcp (with its CORS) ahead of the rest of the app."""
    endpoint = McpEndpoint(settings, server)
    _install_handlers(app, settings)
    app.include_router(metadata_router)
    for path in MCP_PATHS:
        app.router.routes.append(Route(path, endpoint, methods=MCP_METHODS))
    app.include_router(api.router)
    return endpoint


def _install_handlers(app: FastAPI, settings: Settings) -> None:
    async def on_challenge(_request: Request, exc: Exception) -> Response:
        if not isinstance(exc, McpChallenge):  # pragma: no cover
            raise exc
        return challenge_response(settings, exc)

    async def on_origin(_request: Request, exc: Exception) -> Response:
        if not isinstance(exc, McpOriginRefused):  # pragma: no cover
            raise exc
        # Streamable HTTP: "The HTTP response body MAY comprise a JSON-RPC error response that
        # has no id."
        return jsonrpc_error(exc.status_code, -32600, exc.message)

    async def on_revocation_unknown(_request: Request, _exc: Exception) -> Response:
        # The token may be fine; the issuer that would say so is not answering. RFC 9110
        # §15.6.4: 503 with Retry-After, and a JSON-RPC error the client can show.
        return jsonrpc_error(
            503,
            -32603,
            "the authorization server cannot confirm this token right now; retry shortly",
            headers={"Retry-After": "5"},
        )

    async def on_too_many_sessions(_request: Request, exc: Exception) -> Response:
        # Not the server's fault (its 503 says retry): 429, the person's own sessions.
        return jsonrpc_error(429, -32600, str(exc), headers={"Retry-After": "60"})

    app.add_exception_handler(TooManySessions, on_too_many_sessions)
    app.add_exception_handler(McpChallenge, on_challenge)
    app.add_exception_handler(RevocationUnknown, on_revocation_unknown)
    app.add_exception_handler(McpOriginRefused, on_origin)
