"""How a tool calls an upstream as the calling user.

`run_upstream` reads the user's sealed credential, answers from the per-user cache when it can,
and turns upstream failures into plain-words tool errors with no upstream body and no secret in
them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from app.connectors.base import (
    Connector,
    CredentialRejected,
    NotFound,
    RateLimited,
    UpstreamError,
)
from app.kit.envelope import SecretValue
from app.mcp.call import CallContext
from app.vault import service as vault

Fetch = Callable[[SecretValue], Awaitable[dict[str, Any]]]


def reconnect_url(call: CallContext) -> str:
    return f"{call.settings.public_url}/account/credentials"


def _cache_key(
    call: CallContext, connector: str, generation: str, tool: str, args: Mapping[str, object]
) -> str:
    digest = hashlib.sha256(json.dumps([tool, args], sort_keys=True).encode()).hexdigest()[:32]
    return f"{call.auth.user.id}:{connector}:{generation}:{digest}"


async def run_upstream(
    call: CallContext,
    connector: Connector,
    *,
    tool: str,
    args: dict[str, Any],
    fetch: Fetch,
) -> dict[str, Any]:
    """Run a read against the upstream as the calling user, through the per-user cache."""
    label = connector.label
    try:
        unsealed = await vault.load(
            call.services.sessionmaker,
            call.services.envelope,
            user_id=call.auth.user.id,
            connector=connector.name,
        )
    except vault.CredentialUnreadable as exc:
        raise ToolError(
            f"Your stored {label} credential cannot be read. Reconnect it at {reconnect_url(call)}"
        ) from exc
    if unsealed is None:
        raise ToolError(f"No {label} credential is connected. Connect one at {reconnect_url(call)}")
    cache = call.services.connector_cache
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
