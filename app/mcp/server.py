"""The MCP server: the SDK's MCPServer, each tool's required scopes and client capabilities,
the protocol errors, completions and the sealed requestState (tools: app.mcp.tools)."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, Required, TypedDict, TypeVar, Unpack

from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer, RequestStateSecurity
from mcp.server.mcpserver import server as sdk_server
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import EmptyResult, InputRequiredResult, SetLevelRequestParams, ToolAnnotations

from app import __version__
from app.config import Settings
from app.mcp.asking import InputRequired
from app.mcp.call import SCOPE_KEY, CallContext
from app.mcp.completions import Completer, Completions
from app.mcp.faults import ProtocolErrors, internal_error
from app.mcp.observability import CallerAttributes

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")
REQUEST_STATE_TTL = 600  # seconds a client has to answer an input_required result
_SDK_CONFIGURE_LOGGING = "configure_logging"  # the name MCPServer's module calls it by


def _principal(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """requestState is bound to the signed-in user and the client acting for them."""
    request = ctx.request
    call = request.scope.get(SCOPE_KEY) if request is not None else None
    if not isinstance(call, CallContext):
        return None
    return f"{call.auth.user.id}|{call.auth.client.id}"


def request_state_security(settings: Settings | None) -> RequestStateSecurity:
    """Shared across replicas: the key is derived from SECRET_KEY (one purpose, one key)."""
    if settings is None:
        return RequestStateSecurity.ephemeral(ttl=REQUEST_STATE_TTL)
    key = hmac.new(settings.secret_key_bytes, b"mcp-request-state", hashlib.sha256).digest()
    return RequestStateSecurity(
        keys=[key],
        ttl=REQUEST_STATE_TTL,
        bind_principal=_principal,
        audience=settings.mcp_resource,
    )


def _answers_input_required(
    fn: Callable[P, Awaitable[R]], *, where: str
) -> Callable[P, Awaitable[R | InputRequiredResult]]:
    """Wrap a handler: an `InputRequired` raised by
    `call.ask`/`sample`/`roots` becomes the result; a crash becomes -32603 with a trace id."""

    @functools.wraps(fn)
    async def handler(*args: P.args, **kwargs: P.kwargs) -> R | InputRequiredResult:
        try:
            return await fn(*args, **kwargs)
        except InputRequired as asked:
            return asked.result
        except (MCPError, ToolError, ResourceError):
            raise
        except Exception as exc:
            raise internal_error(exc, where=where) from None

    return handler


# MCP 2026-07-28 (SEP-2549) cacheScope: "private" results are reused only within the authorization
# context that produced them. Resources are the person's own notes; the tool and prompt lists are
# the same for everyone today, but are said private too so that a later per-user list cannot leak
# through a shared cache. ttlMs 0: stale at once, so a revoked grant is never answered from cache.
PRIVATE_LISTS: dict[CacheableMethod, CacheHint] = {
    method: CacheHint(ttl_ms=0, scope="private")
    for method in (
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
    )
}


@contextmanager
def _logging_left_to_gatehouse() -> Iterator[None]:
    """MCPServer's constructor calls the SDK's `configure_logging`: `logging.basicConfig` with
    a rich console handler on the root logger. Gatehouse's own configuration owns the root
    logger (app/telemetry.py, through its scrubbing formatters): where it is in place the call
    does nothing but import rich's console for it (~1.5 MiB resident, 42 modules); where it is
    not yet (an app made in process, `uvicorn app.asgi:app`), every library's INFO lines (httpx
    logs each request's URL) would print through rich, unscrubbed. So it is skipped."""
    configure = getattr(sdk_server, _SDK_CONFIGURE_LOGGING)
    setattr(sdk_server, _SDK_CONFIGURE_LOGGING, _leave_logging_alone)
    try:
        yield
    finally:
        setattr(sdk_server, _SDK_CONFIGURE_LOGGING, configure)


def _leave_logging_alone(*_args: object, **_kwargs: object) -> None:
    return None


class GatehouseMCP:
    """An MCPServer plus the scope each tool requires (checked before the SDK sees the call)."""

    def __init__(self, settings: Settings | None = None, *, tracing: bool = True) -> None:
        self.tool_scopes: dict[str, frozenset[str]] = {}
        self.prompt_arguments: dict[str, frozenset[str]] = {}
        self.tool_requires: dict[str, tuple[str, ...]] = {}
        self.streaming_tools: set[str] = set()
        self.completions = Completions()
        with _logging_left_to_gatehouse():
            self.server = MCPServer(
                name="gatehouse",
                title="Gatehouse",
                version=__version__,
                instructions=(
                    "Tools act for the signed-in Gatehouse user. "
                    "Write tools need the mcp:write scope."
                ),
                warn_on_duplicate_tools=True,
                # No subscriptions: nothing here publishes change notifications, and a long-lived
                # listen stream would outlive the token and revocation checks made when it opened.
                subscriptions=False,
                request_state_security=request_state_security(settings),
                # Every registered tool has an entry in tool_scopes (a live view, filled below).
                middleware=[
                    CallerAttributes(self.tool_scopes.keys()),
                    ProtocolErrors(
                        self.tool_scopes.keys(), lambda: self.prompt_arguments, self.tool_requires
                    ),
                ],
                cache_hints=PRIVATE_LISTS,
            )
        if not tracing:
            # The SDK's own span per message "is a no-op until an OTel exporter is installed.
            # Drop it from this list to opt out" (mcp.server.lowlevel.server): with no exporter
            # configured it would only cost time on every request.
            # CallerAttributes feeds only that span and the metrics, which without a provider
            # are no-ops too: the same reasoning, the same saving (docs/PERFORMANCE.md).
            lowlevel = self.server._lowlevel_server  # noqa: SLF001
            lowlevel.middleware = [
                m
                for m in lowlevel.middleware
                if not isinstance(m, OpenTelemetryMiddleware | CallerAttributes)
            ]
        self.server.completion()(self.completions.complete)  # type: ignore[no-untyped-call]
        # logging/setLevel (handshake generation; 2026-07-28 sends the level per request in
        # _meta). Stateless, there is no session to remember it in: the level is accepted and
        # tools log what they choose to; MCPServer has no public hook for this method.
        self.server._lowlevel_server.add_request_handler(  # noqa: SLF001
            "logging/setLevel", SetLevelRequestParams, _set_level
        )

    def tool(
        self,
        *,
        name: str,
        title: str,
        description: str,
        scopes: tuple[str, ...] = (),
        requires: tuple[str, ...] = (),
        streaming: bool = False,
        input_schema: dict[str, Any] | None = None,
        read_only: bool,
        destructive: bool = False,
        idempotent: bool = False,
    ) -> Callable[[F], F]:
        """Register a tool; `scopes` beyond `mcp` are demanded with a 403 step-up challenge;
        `requires` names client capabilities ("sampling", "elicitation", "roots") without which
        the call answers -32021 before the tool runs; `streaming` (a slow tool) always answers
        on an SSE stream, with keep-alives and cancellation when the client disconnects;
        `input_schema` replaces the advertised JSON Schema (arguments are still validated against
        the function's parameters, so keep the two in agreement)."""
        annotations = ToolAnnotations(
            title=title,
            readOnlyHint=read_only,
            destructiveHint=destructive if not read_only else False,
            idempotentHint=idempotent,
            openWorldHint=False,
        )

        def register(fn: F) -> F:
            self.tool_scopes[name] = frozenset(scopes)
            if requires:
                self.tool_requires[name] = requires
            if streaming:
                self.streaming_tools.add(name)
            wrapped = _answers_input_required(fn, where=f"tools/call {name}")
            self.server.tool(
                name=name, title=title, description=description, annotations=annotations
            )(wrapped)
            if input_schema is not None:
                # MCPServer.tool() has no public override for the derived schema.
                registered = self.server._tool_manager.get_tool(name)  # noqa: SLF001
                if registered is not None:
                    registered.parameters = input_schema
            return fn

        return register

    def prompt(
        self,
        *,
        name: str,
        title: str,
        description: str,
        complete: Mapping[str, Completer] | None = None,
    ) -> Callable[[F], F]:
        """Register a prompt; `complete` maps argument names to their completers."""

        def register(fn: F) -> F:
            wrapped = _answers_input_required(fn, where=f"prompts/get {name}")
            prompt = self.server.prompt(name=name, title=title, description=description)(wrapped)
            del prompt
            listed = self.server._prompt_manager.get_prompt(name)  # noqa: SLF001
            required = {a.name for a in (listed.arguments or []) if a.required} if listed else ()
            self.prompt_arguments[name] = frozenset(required)
            self.completions.add("ref/prompt", name, complete or {})
            return fn

        return register

    def resource(
        self,
        uri: str,
        *,
        name: str,
        title: str,
        description: str,
        mime_type: str | None = None,
        complete: Mapping[str, Completer] | None = None,
    ) -> Callable[[F], F]:
        """Register a resource or (with `{params}` in `uri`) a resource template."""

        def register(fn: F) -> F:
            wrapped = _answers_input_required(fn, where=f"resources/read {name}")
            self.server.resource(
                uri, name=name, title=title, description=description, mime_type=mime_type
            )(wrapped)
            if "{" in uri:
                self.completions.add("ref/resource", uri, complete or {})
            return fn

        return register


class ToolOptions(TypedDict, total=False):
    """What `ToolSet.tool` passes on to `GatehouseMCP.tool`, all but the name."""

    title: Required[str]
    description: Required[str]
    read_only: Required[bool]
    scopes: tuple[str, ...]
    requires: tuple[str, ...]
    streaming: bool
    input_schema: dict[str, Any] | None
    destructive: bool
    idempotent: bool


class ToolSet:
    """Tools declared where they are written and added to a server later by `register`, as an
    APIRouter holds routes until an app includes it. A tool's name is its function's name."""

    def __init__(self) -> None:
        self._tools: list[tuple[Callable[..., Any], ToolOptions]] = []

    def tool(self, **options: Unpack[ToolOptions]) -> Callable[[F], F]:
        """Declare a tool, with `GatehouseMCP.tool`'s options."""

        def declare(fn: F) -> F:
            self._tools.append((fn, options))
            return fn

        return declare

    def register(self, server: GatehouseMCP) -> None:
        """Add every declared tool to `server`, in the order they were declared."""
        for fn, options in self._tools:
            server.tool(name=fn.__name__, **options)(fn)


async def _set_level(
    _ctx: ServerRequestContext[Any, Any], _params: SetLevelRequestParams
) -> EmptyResult:
    return EmptyResult()
