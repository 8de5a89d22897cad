"""/mcp in front: its requests go straight to the endpoint, past the pages' middleware and router.

Every /mcp request used to pass the pages' CORS and body-limit middleware (both of which skip
/mcp), FastAPI's exit stack and a scan of every route before reaching the endpoint: about an
eighth of its cost (docs/PERFORMANCE.md). `McpFirst` sits just inside `UnhandledErrors` and
hands /mcp to the endpoint wrapped in exactly what it relied on from those layers:

- its CORS (PublicCors on the /mcp paths, with the /mcp origins);
- the app's exception handlers, through Starlette's own ExceptionMiddleware built from the same
  table FastAPI builds its own from, so McpChallenge, McpOriginRefused, RevocationUnknown and the
  outage handlers (app/failures.py) answer as before.

Everything outside the app's user middleware (the OpenTelemetry request span when tracing is on,
ServerErrorMiddleware, UnhandledErrors) still wraps /mcp. Other paths go on as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp

from app.kit.cors import PublicCors
from app.kit.front import InFront, handled


class McpFirst(InFront):
    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoint: ASGIApp,
        paths: frozenset[str],
        handlers: Mapping[Any, Any],
        origins: frozenset[str] | None,
    ) -> None:
        cors = PublicCors(
            handled(endpoint, handlers),
            paths=paths,
            origins=origins,
            allow_headers=(
                "Authorization, Content-Type, Accept, Mcp-Protocol-Version, Mcp-Session-Id, "
                "Last-Event-ID"
            ),
            expose_headers="WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version",
            methods="GET, POST, DELETE, OPTIONS",
        )
        super().__init__(app, endpoint=cors, paths=paths)
