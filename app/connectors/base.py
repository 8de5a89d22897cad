"""What a connector is, the errors an upstream can give, and how a tool calls an upstream.

A connector declares a name and label, the credential it needs (with help for finding one), how
to validate that credential against the upstream, and its tools. Tools call
`UpstreamCall.run`, which reads the user's sealed credential, answers from the per-user cache
when it can, and turns upstream failures into plain-words tool errors with no upstream body and
no secret in them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mcp.server.mcpserver.exceptions import ToolError

from app.kit.envelope import SecretValue
from app.mcp.context import CallContext
from app.vault import service as vault

if TYPE_CHECKING:
    from app.connectors.cache import ReadCache
    from app.mcp.server import GatehouseMCP

logger = logging.getLogger("gatehouse.connectors")


@dataclass(frozen=True)
class CredentialSpec:
    label: str  # "Personal access token"
    help_text: str
    help_url: str


class UpstreamError(Exception):
    """An upstream failure, described in plain words safe to show a user or a model."""


class CredentialRejected(UpstreamError):
    pass


class RateLimited(UpstreamError):
    def __init__(self, message: str, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(UpstreamError):
    pass


class UpstreamUnavailable(UpstreamError):
    pass


class Connector(Protocol):
    name: str
    label: str
    credential: CredentialSpec

    async def validate(self, secret: SecretValue) -> str:
        """The upstream account the credential belongs to; raises UpstreamError if unusable."""
        ...

    def register_tools(self, mcp: GatehouseMCP) -> None: ...

    async def aclose(self) -> None: ...


def reconnect_url(call: CallContext) -> str:
    return f"{call.settings.public_url}/account/credentials"


def _cache_key(call: CallContext, connector: str, generation: str, tool: str, args: Any) -> str:
    digest = hashlib.sha256(json.dumps([tool, args], sort_keys=True).encode()).hexdigest()[:32]
    return f"{call.auth.user.id}:{connector}:{generation}:{digest}"


async def run_upstream(
    call: CallContext,
    connector: Connector,
    *,
    tool: str,
    args: dict[str, Any],
    fetch: Callable[[SecretValue], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run a read against the upstream as the calling user, through the per-user cache."""
    label = connector.label
    try:
        unsealed = await vault.load(
            call.sessionmaker,
            call.app_state.envelope,
            user_id=call.auth.user.id,
            connector=connector.name,
        )
    except vault.CredentialUnreadable as exc:
        raise ToolError(
            f"Your stored {label} credential cannot be read. Reconnect it at {reconnect_url(call)}"
        ) from exc
    if unsealed is None:
        raise ToolError(f"No {label} credential is connected. Connect one at {reconnect_url(call)}")
    cache: ReadCache = call.app_state.connector_cache
    key = _cache_key(call, connector.name, str(unsealed.generation), tool, args)
    cached = await cache.get(key)
    if cached is not None:
        return cached
    try:
        result = await fetch(unsealed.secret)
    except CredentialRejected as exc:
        raise ToolError(
            f"{label} refused your credential (expired or revoked?). "
            f"Reconnect at {reconnect_url(call)}"
        ) from exc
    except RateLimited as exc:
        when = f" Try again in {exc.retry_after} seconds." if exc.retry_after else ""
        raise ToolError(f"{label} is rate-limiting your account.{when}") from exc
    except NotFound as exc:
        raise ToolError(f"{label} says: not found. {exc}") from exc
    except UpstreamError as exc:
        raise ToolError(f"{label} is not answering right now; try again later. ({exc})") from exc
    await cache.set(key, result)
    return result
