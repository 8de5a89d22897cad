"""Unhandled exceptions: a 500 and one log line, never a wall of trace with a secret in it.

Without this, an exception no handler takes escapes to uvicorn, which logs the whole traceback at
ERROR (with the exception's message: a SQL error there once carried a submitted password's argon2
hash) and drops the connection, so the client's next keep-alive request is reset. Here it becomes:
- one ERROR line: the exception's type, the method and path (no query, no body) and an error id,
  the request's trace id when tracing is on (the formatter adds it too), else a random one;
- the traceback only at DEBUG (logger `gatehouse.errors`), through the same scrubbing formatters
  as every other line (app/telemetry.py, app/kit/scrub.py);
- a plain 500 naming the error id, on a connection that stays usable.
"""

from __future__ import annotations

import logging
import secrets

from opentelemetry import trace
from starlette.types import ASGIApp, Receive, Scope, Send

from app.kit.asgi import TrackedSend, send_whole

logger = logging.getLogger("gatehouse.errors")


def error_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else secrets.token_hex(16)


class UnhandledErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            ident, kind = error_id(), type(exc).__name__
            method, path = scope.get("method", "?"), scope.get("path", "?")
            logger.error("unhandled %s at %s %s (error id %s)", kind, method, path, ident)
            logger.debug("traceback for error id %s", ident, exc_info=exc)
            if tracked.started:  # too late for a status line; the server ends the response
                return
            body = f"Internal server error (error id {ident}).\n".encode()
            await send_whole(
                send,
                500,
                body,
                content_type=b"text/plain; charset=utf-8",
                extra=(b"cache-control", b"no-store"),
            )
