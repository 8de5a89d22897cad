"""The right JSON-RPC error for every MCP request that cannot be served.

- An unknown tool or prompt, or a prompt missing a required argument, is -32602 naming what was
  not found. MCP 2025-11-25, server/tools "Error Handling": "Protocol Errors ... Unknown tools
  ... Invalid arguments" with the example `"code": -32602, "message": "Unknown tool:
  invalid_tool_name"`; server/prompts: "Invalid prompt name: -32602 (Invalid params)", "Missing
  required arguments: -32602". Unknown resources are the SDK's -32602 with `data.uri`
  (SEP-2164, "Resource Not Found").
- Params that do not fit the method's schema (tools/call or prompts/get `arguments` that are a
  list or a string) are the client's fault: the SDK's own -32602 "Invalid request parameters",
  nothing logged. JSON-RPC 2.0 §5.1: -32602 "Invalid method parameter(s)".
- Anything else that escapes a handler is our fault: -32603 with a trace id the operator can
  find in the log, which holds the exception's type and frames but never its message or the
  request's arguments (user data).
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.methods import SPEC_CLIENT_METHODS, validate_client_request
from opentelemetry import trace
from pydantic import ValidationError

from app.mcp.asking import declared, missing_capability

logger = logging.getLogger("gatehouse.mcp")

# name -> the names of its required arguments
PromptArguments = Callable[[], dict[str, frozenset[str]]]


def trace_id() -> str:
    """The current OpenTelemetry trace id, or a fresh incident id when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else uuid.uuid4().hex


def internal_error(exc: BaseException, *, where: str) -> MCPError:
    """Log a fault (its types and frames only) and the -32603 the client sees."""
    incident = trace_id()
    chain: list[BaseException] = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:  # the SDK wraps some errors
        chain.append(chain[-1].__cause__)
    kinds = " <- ".join(type(e).__qualname__ for e in chain)
    frames = "".join(traceback.format_tb(chain[-1].__traceback__))
    logger.error("MCP %s failed with %s (trace %s)\n%s", where, kinds, incident, frames)
    return MCPError(code=INTERNAL_ERROR, message=f"Internal error (trace id {incident})")


def unknown(kind: str, name: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"Unknown {kind}: {name}", data={kind: name})


def malformed_params(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether the request's params themselves fail the SDK's check for its method and version.

    The SDK validates params inside `call_next`, so a ValidationError there may be the
    client's (bad params) or ours (a handler building a model wrongly); only the first passes
    as -32602. Asked only once something has failed, so the common case pays nothing.
    """
    if ctx.method not in SPEC_CLIENT_METHODS:
        return False
    try:
        validate_client_request(ctx.method, ctx.protocol_version, ctx.params)
    except ValidationError:
        return True
    except (KeyError, ValueError):  # a method or version the SDK let through: not the params
        pass
    return False


class ProtocolErrors:
    """SDK middleware: -32602 for unknown names and missing arguments, -32603 for faults."""

    def __init__(
        self,
        tools: Collection[str],
        prompts: PromptArguments,
        requires: Mapping[str, tuple[str, ...]],
    ) -> None:
        self._tools = tools
        self._prompts = prompts
        self._requires = requires

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params or {}
        name = params.get("name")
        if ctx.method == "tools/call":
            if name not in self._tools:
                raise unknown("tool", str(name))
            needs = self._requires.get(str(name))
            if needs:
                absent = [n for n in needs if not declared(ctx.session.client_capabilities, n)]
                if absent:
                    raise missing_capability(absent, what=f"the tool {name}")
        if ctx.method == "prompts/get":
            self._check_prompt(name, params.get("arguments"))
        try:
            return await call_next(ctx)
        except MCPError:
            raise
        except ValidationError as exc:
            if malformed_params(ctx):
                raise  # the SDK's ladder answers it: -32602, no pydantic text on the wire
            raise internal_error(exc, where=ctx.method) from None
        except Exception as exc:
            raise internal_error(exc, where=ctx.method) from None

    def _check_prompt(self, name: object, arguments: object) -> None:
        required = self._prompts().get(str(name))
        if required is None:
            raise unknown("prompt", str(name))
        given = arguments if isinstance(arguments, dict) else {}
        absent = sorted(required - given.keys())
        if absent:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Missing required arguments for prompt {name}: {', '.join(absent)}",
            )
