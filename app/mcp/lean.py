"""`tools/call` and `tools/list` at 2026-07-28 without `serve_one`'s generic steps.

`serve_one` (mcp.server.runner) builds a kernel per request, validates the params against the
version's surface, runs the middleware chain and the handler, sieves the result through the
version's surface again, stamps `serverInfo` and unwinds the connection's exit stack under a
shielded scope. For the two commonest requests most of that is the same work every time, so
`LeanKernel.serve` gives what `serve_one` gives (the same dict, or the same exception), without:

- the params validation, for a plain request: `name`, `arguments` and `_meta` only for
  `tools/call`, `_meta` only for `tools/list`. The surface models have no cross-field
  validators, so such params pass exactly when their `_meta` envelope does, and an envelope
  the SDK's own check passed once is remembered (by its repr; a client sends the same one on
  every call; `MAX_ENVELOPES` of them, least recently used first);
- the result sieve, for a plain `CallToolResult` (text content, `isError`, `structuredContent`,
  nothing else): the sieve only puts its keys in the surface's order (`plain_call_result`);
  anything else goes through the SDK's own `_serialize`;
- the shielded teardown, when nothing was pushed on the connection's exit stack;
- for `tools/list`, all of it: the list is the SDK's own answer (its first `serve_one`), kept
  per version while the same Tool objects are registered and the cache hint is unchanged. The
  SDK's handler reads nothing of the request (no per-user listing), and the two middleware
  pass `tools/list` through untouched.

A `tools/call` still runs everything a deployer's tool runs through: the SDK's request
context (`ServerSession`, `ServerRequestContext`), the middleware chain (the request-state
boundary, `ProtocolErrors`), the registered handler (`MCPServer._handle_call_tool`: `Context`,
`Tool.run` with its argument validation and result conversion, Gatehouse's
`_answers_input_required` around the function).

It serves only a server configured as Gatehouse configures it (`configured`): the SDK's own
handlers, exactly the request-state boundary and ProtocolErrors as middleware (so not with
OpenTelemetry tracing on, whose middleware would see a different chain), no cache hint on
`tools/call`. Everything else is `serve_one`'s. tests/mcp/test_lean_equivalence.py,
test_lean_path.py and test_modern_equivalence.py hold the bytes to the SDK's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from mcp.server import runner as sdk_runner
from mcp.server.caching import CacheHint
from mcp.server.connection import Connection
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.request_state import RequestStateBoundary
from mcp.server.runner import ServerRunner, aclose_shielded, serve_one
from mcp.shared.dispatcher import DispatchContext
from mcp.shared.exceptions import MCPError
from mcp.shared.transport_context import TransportContext
from mcp_types import METHOD_NOT_FOUND, SERVER_INFO_META_KEY, ErrorData
from mcp_types.methods import SPEC_CLIENT_METHODS, validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from app.kit.cache import BoundedCache
from app.mcp.faults import ProtocolErrors

CALL = "tools/call"
LIST = "tools/list"
PLAIN_PARAMS = {CALL: frozenset({"name", "arguments", "_meta"}), LIST: frozenset({"_meta"})}
# The chain Gatehouse installs when tracing is off (app/mcp/server.py), outermost first.
KNOWN_MIDDLEWARE = (RequestStateBoundary, ProtocolErrors)
# What json.dumps(value, separators=(",", ":"), allow_nan=False) builds on every call: the
# bytes modern.answer writes.
WIRE_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
MAX_ENVELOPES = 256
MAX_ENVELOPE_CHARS = 4096
# A CallToolResult the 2026-07-28 sieve only reorders: its keys in the surface model's order
# (`_meta` is added last by the stamp), and a text block's.
PLAIN_RESULT_KEYS = ("content", "isError", "resultType", "structuredContent")
PLAIN_TEXT_KEYS = frozenset({"type", "text"})


def plain_call_result(dumped: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 2026-07-28 surface dump of a dumped CallToolResult, or None when it is not plain.

    Plain: text blocks without annotations or `_meta`, a bool `isError`, `resultType`
    "complete", any `structuredContent` (the surface types it `Any`, which dumps JSON values as
    they are) and nothing else. tests/mcp/test_lean_sieve.py holds this to
    `mcp_types.methods.serialize_server_result`.
    """
    if dumped.get("resultType") != "complete" or not dumped.keys() <= set(PLAIN_RESULT_KEYS):
        return None
    content = dumped.get("content")
    if not isinstance(content, list) or not isinstance(dumped.get("isError", False), bool):
        return None
    blocks = []
    for block in content:
        if not (isinstance(block, dict) and block.keys() == PLAIN_TEXT_KEYS):
            return None
        if block["type"] != "text" or not isinstance(block["text"], str):
            return None
        blocks.append({"text": block["text"], "type": "text"})
    shaped: dict[str, Any] = {"content": blocks}
    for key in PLAIN_RESULT_KEYS[1:]:
        if key in dumped:
            shaped[key] = dumped[key]
    return shaped


@dataclass(frozen=True)
class Listing:
    """A `tools/list` result as JSON text, and what it was computed from."""

    tools: tuple[Tool, ...]
    hint: CacheHint | None
    text: str


class LeanKernel:
    """`serve_one` for plain `tools/call` and `tools/list` requests (see the module docstring)."""

    def __init__(self, mcp: MCPServer[Any]) -> None:
        self._mcp = mcp
        self._server = mcp._lowlevel_server  # noqa: SLF001 - the server serve_one is given
        self._envelopes: BoundedCache[tuple[str, str, str], bool] = BoundedCache(
            max_entries=MAX_ENVELOPES
        )
        self._listings: dict[str, Listing] = {}
        # The SDK computes its stamp once per server (identity is fixed at construction) and
        # hands out a deep copy each time; a flat one is copied as deeply by dict().
        self._stamp = self._server.server_info_stamp
        self._flat_stamp = all(not isinstance(v, dict | list) for v in self._stamp.values())

    def takes(self, method: str, params: Mapping[str, Any] | None, version: str) -> bool:
        """Whether `serve` answers this request (a plain one, on a server configured as ours)."""
        allowed = PLAIN_PARAMS.get(method)
        if allowed is None or not isinstance(params, dict) or not params.keys() <= allowed:
            return False
        if method == CALL:
            arguments = params.get("arguments")
            if not isinstance(params.get("name"), str):
                return False
            if arguments is not None and not isinstance(arguments, dict):
                return False
        return self.configured(method) and self._envelope_passes(method, version, params)

    def configured(self, method: str) -> bool:
        """The SDK's own handler for `method` and exactly the middleware Gatehouse installs."""
        server = self._server
        if tuple(map(type, server.middleware)) != KNOWN_MIDDLEWARE:
            return False
        entry = server.get_request_handler(method)
        if method == CALL:
            own = self._mcp._handle_call_tool  # noqa: SLF001 - the handler MCPServer registers
            return entry is not None and entry.handler == own and CALL not in server.cache_hints
        own_list = self._mcp._handle_list_tools  # noqa: SLF001 - as above
        return entry is not None and entry.handler == own_list

    def _envelope_passes(self, method: str, version: str, params: dict[str, Any]) -> bool:
        """Whether the SDK's surface check passes these (plain) params."""
        meta = params.get("_meta")
        if not isinstance(meta, dict):
            return False
        # repr of json.loads's values (dict, list, str, int, float, bool, None) is one text per
        # value (strings quoted, 1, 1.0 and True apart), so two envelopes share a key exactly
        # when they are the same JSON value; Python's == would take 1 == 1.0 == True.
        key = repr(meta)
        if len(key) <= MAX_ENVELOPE_CHARS and self._envelopes.get((method, version, key)):
            return True
        try:
            validate_client_request(method, version, params)
        except (ValidationError, KeyError, ValueError):
            return False  # serve_one answers it, with the SDK's error
        if len(key) <= MAX_ENVELOPE_CHARS:
            self._envelopes.put((method, version, key), True)
        return True

    async def serve(
        self,
        dctx: DispatchContext[TransportContext],
        method: str,
        params: Mapping[str, Any] | None,
        *,
        connection: Connection,
        lifespan_state: Any,
    ) -> dict[str, Any] | str:
        """What `serve_one(server, dctx, method, params, ...)` returns or raises; a `tools/list`
        answered from its listing comes back as the result's JSON text."""
        server = self._server
        if not connection.initialize_accepted:  # never, from_envelope: the SDK's init gate
            return await serve_one(
                server, dctx, method, params, connection=connection, lifespan_state=lifespan_state
            )
        if method == LIST:
            return await self._list(dctx, params, connection, lifespan_state)
        runner = ServerRunner(server, connection, lifespan_state)
        version = connection.protocol_version
        meta = sdk_runner._extract_meta(params)  # noqa: SLF001 - _on_request's first step
        ctx = runner._make_context(dctx, method, params, meta, version)  # noqa: SLF001
        call = runner._compose_server_middleware(partial(self._handle, runner, params))  # noqa: SLF001
        try:
            return sdk_runner._dump_result(await call(ctx))  # noqa: SLF001 - as _on_request
        finally:
            # serve_one's aclose_shielded, which has nothing to unwind unless a handler or a
            # middleware pushed a callback (the stack's own list: AsyncExitStack has no
            # public way to ask).
            if connection.exit_stack._exit_callbacks:  # type: ignore[attr-defined]  # noqa: SLF001
                await aclose_shielded(connection)

    async def _handle(
        self,
        runner: ServerRunner[Any],
        proven: Mapping[str, Any] | None,
        ctx: ServerRequestContext[Any, Any],
    ) -> HandlerResult:
        """The SDK's `_on_request._inner` for a born-ready connection (no `initialize`, the
        init gate open), without the params check `takes` has already proved passes."""
        method, params = ctx.method, ctx.params
        version = runner.connection.protocol_version
        if method in SPEC_CLIENT_METHODS and not (method == CALL and params is proven):
            try:  # a middleware rewrote the request: the SDK's own check
                validate_client_request(method, version, params)
            except KeyError:
                raise MCPError(METHOD_NOT_FOUND, "Method not found", data=method) from None
        entry = runner.server.get_request_handler(method)
        if entry is None:
            raise MCPError(code=METHOD_NOT_FOUND, message="Method not found", data=method)
        typed = entry.params_type.model_validate({} if params is None else params, by_name=False)
        result = await entry.handler(ctx, typed)
        if isinstance(result, ErrorData):
            raise MCPError.from_error_data(result)
        return self._serialize(runner, method, version, result)

    def _serialize(
        self, runner: ServerRunner[Any], method: str, version: str, result: HandlerResult
    ) -> dict[str, Any]:
        """`ServerRunner._serialize`, with a plain CallToolResult shaped by `plain_call_result`."""
        hinted = method in self._server.cache_hints  # not for tools/call (configured)
        if method == CALL and version in MODERN_PROTOCOL_VERSIONS and not hinted:
            shaped = plain_call_result(sdk_runner._dump_result(result))  # noqa: SLF001
            if shaped is not None:
                # _stamp_server_info on a result without `_meta`.
                stamp = dict(self._stamp) if self._flat_stamp else self._server.server_info_stamp
                shaped["_meta"] = {SERVER_INFO_META_KEY: stamp}
                return shaped
        return runner._serialize(method, version, result)  # noqa: SLF001

    async def _list(
        self,
        dctx: DispatchContext[TransportContext],
        params: Mapping[str, Any] | None,
        connection: Connection,
        lifespan_state: Any,
    ) -> dict[str, Any] | str:
        """The listing's JSON text, or serve_one's answer (kept as the listing when it can be)."""
        version = connection.protocol_version
        tools = tuple(self._mcp._tool_manager.list_tools())  # noqa: SLF001 - the live registry
        hint = self._server.cache_hints.get(LIST)
        listing = self._listings.get(version)
        if listing is not None and listing.hint == hint and len(listing.tools) == len(tools):
            if all(a is b for a, b in zip(listing.tools, tools, strict=True)):
                return listing.text
        result = await serve_one(
            self._server, dctx, LIST, params, connection=connection, lifespan_state=lifespan_state
        )
        try:  # the bytes modern.answer writes for it
            text = WIRE_JSON.encode(result)
        except (TypeError, ValueError):
            return result
        self._listings[version] = Listing(tools, hint, text)
        return result
