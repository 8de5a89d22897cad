"""Hot paths in front: their requests go straight to their endpoint, past the router.

A request that reaches the end of the app's middleware pays for FastAPI's exit stack, a scan of
every route and, for an APIRoute, the dependency solver: about a sixth of a token grant's CPU
and an eighth of an /mcp call's (docs/PERFORMANCE.md). `InFront` sits inside `UnhandledErrors`
and hands the requests of a few exact paths (and methods) to an endpoint that is wrapped in
what it relied on from those layers; every other request goes on as before.

`handled` gives such an endpoint the app's own exception handlers, through Starlette's
ExceptionMiddleware built from the same table FastAPI builds its own from, so the AppError,
OAuth and outage handlers (app/errors.py, app/oauth/errors.py, app/failures.py) answer as they
do behind the router.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


def handled(endpoint: ASGIApp, handlers: Mapping[Any, Any]) -> ASGIApp:
    """`endpoint` behind the app's exception handlers."""
    # As FastAPI.build_middleware_stack: 500 and Exception belong to ServerErrorMiddleware.
    table = {key: value for key, value in handlers.items() if key not in (500, Exception)}
    return ExceptionMiddleware(endpoint, handlers=table)


class InFront:
    """Requests for `paths` (with one of `methods`, if given) to `endpoint`, the rest to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoint: ASGIApp,
        paths: frozenset[str],
        methods: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.endpoint = endpoint
        self.paths = paths
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] in self.paths
            and (self.methods is None or scope["method"] in self.methods)
        ):
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
