"""At most MAX_SESSIONS_PER_USER open handshake-generation sessions per person, per process.

The SDK's session manager bounds the sessions of everyone together (MAX_SESSIONS), so one
account opening session after session (an `initialize` that declares elicitation, sampling or
roots opens one) could take every slot and leave everyone else a 503 until they idled out.
Each session also holds a server task and its streams. The person's count is taken where the
SDK admits a session, under its creation lock, so concurrent openings cannot pass the bound
together (count first, then work); a session stops counting when the SDK forgets it (DELETE,
idle timeout, its server ending).
"""

from __future__ import annotations

import logging

from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

MAX_SESSIONS = 1000  # everyone's, in this process
MAX_SESSIONS_PER_USER = 32
SESSION_IDLE_TIMEOUT = 600.0  # seconds without a request before the SDK closes a session
IDLE_MINUTES = int(SESSION_IDLE_TIMEOUT // 60)
logger = logging.getLogger("gatehouse.mcp")


class TooManySessions(Exception):
    """The person already holds `limit` open sessions here (answered 429, app/mcp/endpoint.py)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this account already has {limit} open MCP sessions on this server; end one "
            "(DELETE /mcp with its Mcp-Session-Id) or wait for an unused one to close after "
            f"{IDLE_MINUTES} minutes idle"
        )


def cap_sessions_per_user(manager: StreamableHTTPSessionManager, limit: int) -> None:
    """Make `manager` refuse a person's new session once `limit` of theirs are open, whichever
    of their clients opened them (the SDK's owner is the client, issuer and subject)."""
    admit = manager._admit_session  # noqa: SLF001 - the one place the SDK registers a session

    def admit_within_cap(
        requestor: AuthorizationContext | None,
    ) -> StreamableHTTPServerTransport | None:
        subject = requestor["subject"] if requestor is not None else None
        if subject is None:  # every /mcp request is authenticated first (app/mcp/endpoint.py)
            raise RuntimeError("a session is opened only for an authenticated person")
        owners = manager._session_owners.values()  # noqa: SLF001 - session id -> its owner
        if sum(1 for owner in owners if owner["subject"] == subject) >= limit:
            logger.warning("refused an MCP session: user %s already holds %d", subject, limit)
            raise TooManySessions(limit)
        return admit(requestor)

    manager._admit_session = admit_within_cap  # type: ignore[method-assign]  # noqa: SLF001
