"""At most MAX_SESSIONS_PER_USER open handshake-generation sessions per person, per process,
and MAX_SESSIONS_PER_CLIENT of them through any one of their clients.

The SDK's session manager bounds the sessions of everyone together (MAX_SESSIONS), so one
account opening session after session (an `initialize` that declares elicitation, sampling or
roots opens one) could take every slot and leave everyone else a 503 until they idled out;
and any one app a person approved (with no scope at all) could hold all of that person's places
and leave their other apps a 429.
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
# Of those, through any one client (app): one the person approved cannot hold all of their places.
MAX_SESSIONS_PER_CLIENT = 16
SESSION_IDLE_TIMEOUT = 600.0  # seconds without a request before the SDK closes a session
IDLE_MINUTES = int(SESSION_IDLE_TIMEOUT // 60)
logger = logging.getLogger("gatehouse.mcp")


class TooManySessions(Exception):
    """The person, or the person through this client, holds as many open sessions here as they
    may (answered 429, app/mcp/endpoint.py)."""

    def __init__(self, holder: str, limit: int) -> None:
        super().__init__(
            f"{holder} already has {limit} open MCP sessions on this server; end one "
            "(DELETE /mcp with its Mcp-Session-Id) or wait for an unused one to close after "
            f"{IDLE_MINUTES} minutes idle"
        )


def cap_sessions_per_user(
    manager: StreamableHTTPSessionManager, *, per_user: int, per_client: int
) -> None:
    """Make `manager` refuse a person's new session once `per_user` of theirs are open, whichever
    of their clients opened them, or `per_client` through the client asking (the SDK's owner of a
    session is its client, issuer and subject)."""
    admit = manager._admit_session  # noqa: SLF001 - the one place the SDK registers a session

    def admit_within_cap(
        requestor: AuthorizationContext | None,
    ) -> StreamableHTTPServerTransport | None:
        if requestor is None or requestor["subject"] is None:  # /mcp authenticates first
            raise RuntimeError("a session is opened only for an authenticated person")
        subject = requestor["subject"]
        owners = manager._session_owners.values()  # noqa: SLF001 - session id -> its owner
        theirs = [owner for owner in owners if owner["subject"] == subject]
        if len(theirs) >= per_user:
            logger.warning("refused an MCP session: user %s holds %d", subject, per_user)
            raise TooManySessions("this account", per_user)
        client_id = requestor["client_id"]
        if sum(1 for owner in theirs if owner["client_id"] == client_id) >= per_client:
            logger.warning(
                "refused an MCP session: user %s holds %d through client %s",
                subject,
                per_client,
                client_id,
            )
            raise TooManySessions("this app, for this account,", per_client)
        return admit(requestor)

    manager._admit_session = admit_within_cap  # type: ignore[method-assign]  # noqa: SLF001
