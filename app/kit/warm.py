"""Do at start-up what the first requests would otherwise do on the event loop.

FastAPI (0.16x) builds an included router's route contexts the first time a request is matched
against it (each route's dependency analysis, its pydantic fields), and Jinja compiles a
template the first time it is rendered. Each is done once per process, but on the loop: measured
on a fresh worker, the first GET /sign-in took 26 ms and the first metadata document 36 ms
against 2 ms and 1 ms after, and every request in flight waited that long. Done here, before
`gc.freeze`, the work stalls nothing and what it builds joins the frozen start-up objects.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.kit.web import templates

# Matches no route (no route's path starts with a NUL), so every route is asked.
_NO_SUCH_REQUEST = {
    "type": "http",
    "method": "GET",
    "path": "/\x00warm",
    "root_path": "",
    "headers": [],
    "query_string": b"",
}


def warm_routes(routes: list[BaseRoute]) -> None:
    """Ask every route to match a request none matches: a router included with include_router
    builds its routes' contexts to answer (a plain route only compares its path)."""
    for route in routes:
        route.matches(dict(_NO_SUCH_REQUEST))


def warm_templates() -> int:
    """Compile every page template into the environment's cache; the number compiled."""
    env = templates.env
    names = env.list_templates(extensions=["html"])
    for name in names:
        env.get_template(name)
    return len(names)
