"""`CallContext`: what a tool knows about the call it serves, and what it can do with it.

`app.mcp.endpoint` puts one in the ASGI scope before handing the request to the SDK; a tool
reads it with `call_context(ctx)`, which binds it to the tool's SDK `Context`. It is never a
global. Besides who is calling (`auth`) and the service's resources, it is the tool author's
whole MCP API: `progress`, `log`, `ask` (elicitation), `sample`, `roots`, `supports`; each
speaks the wire shape of the protocol generation the client negotiated (app/mcp/asking.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from mcp.server.elicitation import (
    AcceptedElicitation,
    CancelledElicitation,
    DeclinedElicitation,
    ElicitationResult,
    render_elicitation_schema,
)
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    INVALID_PARAMS,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequest,
    ListRootsRequest,
    ListRootsResult,
    Root,
    SamplingMessage,
    TextContent,
)
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.mcp import asking
from app.mcp.context import AuthContext
from app.state import Services

SCOPE_KEY = "gatehouse.mcp"
LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class CallContext:
    """Everything a tool needs: the caller's identity, the service's resources, the MCP call."""

    auth: AuthContext
    services: Services
    protocol_version: str | None
    ctx: Context | None = None

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def session(self) -> AsyncSession:
        return self.services.sessionmaker()

    @property
    def _sdk(self) -> Context:
        if self.ctx is None:
            raise NoCallContext("use call_context(ctx) inside the tool to reach the MCP call")
        return self.ctx

    async def progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """Report progress (sent only when the request carried a progressToken)."""
        await self._sdk.report_progress(done, total, message or None)

    async def log(self, level: LogLevel, data: object, *, logger: str | None = None) -> None:
        """Send a log message to the client, on this request's stream. Never log secrets."""
        session = self._sdk.request_context.session
        with warnings.catch_warnings():
            # Deprecated as of 2026-07-28 (SEP-2577) but still part of every generation we
            # speak; the SDK sends it only where the request opted in.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await session.send_log_message(
                level=level, data=data, logger=logger, related_request_id=self._sdk.request_id
            )

    def supports(self, capability: str) -> bool:
        """Whether the client declared `capability` ("elicitation", "sampling", "roots")."""
        return asking.declared(self._sdk.client_capabilities, capability)

    async def ask(self, message: str, schema: type[T], *, key: str = "ask") -> ElicitationResult[T]:
        """Ask the user (form elicitation); accept (with validated `data`), decline or cancel."""
        request = ElicitRequest(
            params=ElicitRequestFormParams(
                message=message, requested_schema=render_elicitation_schema(schema)
            )
        )
        answer = (await asking.gather(self._sdk, {key: request}))[key]
        return _outcome(key, cast(ElicitResult, answer), schema)

    async def confirm(self, message: str, *, key: str = "confirm") -> bool:
        """Ask a yes/no question; True only when the user accepted and said yes."""
        outcome = await self.ask(message, Confirmation, key=key)
        return isinstance(outcome, AcceptedElicitation) and outcome.data.confirm

    async def sample(
        self,
        prompt: str | list[SamplingMessage],
        *,
        max_tokens: int,
        system_prompt: str | None = None,
        key: str = "sample",
    ) -> CreateMessageResult:
        """Ask the client's model for a completion (sampling/createMessage)."""
        messages = (
            [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))]
            if isinstance(prompt, str)
            else prompt
        )
        request = CreateMessageRequest(
            params=CreateMessageRequestParams(
                messages=messages, max_tokens=max_tokens, system_prompt=system_prompt
            )
        )
        answer = (await asking.gather(self._sdk, {key: request}))[key]
        return cast(CreateMessageResult, answer)

    async def roots(self, *, key: str = "roots") -> list[Root]:
        """The client's roots (roots/list)."""
        answer = (await asking.gather(self._sdk, {key: ListRootsRequest()}))[key]
        return cast(ListRootsResult, answer).roots

    async def gather(self, requests: Mapping[str, InputRequest]) -> dict[str, Any]:
        """Several requests at once (one round on 2026-07-28); the answers by key."""
        return dict(await asking.gather(self._sdk, requests))


class Confirmation(BaseModel):
    confirm: bool


def _outcome(key: str, answer: ElicitResult, schema: type[T]) -> ElicitationResult[T]:
    if answer.action == "decline":
        return DeclinedElicitation()
    if answer.action == "cancel":
        return CancelledElicitation()
    try:
        return AcceptedElicitation[schema](data=schema.model_validate(answer.content or {}))  # type: ignore[valid-type]
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"the answer to {key!r} does not match its schema: {', '.join(fields)}",
        ) from exc


class NoCallContext(RuntimeError):
    pass


def call_context(ctx: Context) -> CallContext:
    """The CallContext of the MCP request a tool is serving (pass the tool's `ctx`)."""
    request = getattr(ctx.request_context, "request", None)
    found = request.scope.get(SCOPE_KEY) if request is not None else None
    if not isinstance(found, CallContext):
        raise NoCallContext("this tool was called outside an authenticated /mcp request")
    # dataclasses.replace(found, ctx=ctx), without its walk over the fields on every tool call
    # (tests/mcp/test_call_context.py keeps the two the same).
    return CallContext(found.auth, found.services, found.protocol_version, ctx)
