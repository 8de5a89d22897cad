"""Application errors and the handlers that render them (the types live in app/kit/errors.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route

from app.kit.errors import AppError, CsrfError, NotFoundError
from app.kit.web import render

__all__ = ["AppError", "CsrfError", "NotFoundError", "install_error_handlers"]


def install_error_handlers(app: FastAPI) -> None:
    async def app_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, AppError):  # pragma: no cover - registered for AppError only
            raise exc
        return render(
            request,
            "error.html",
            {"title": exc.title, "message": exc.message},
            status_code=exc.status_code,
        )

    app.add_exception_handler(AppError, app_error)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Browsers get a page for 404/405; API clients keep FastAPI's JSON."""
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        if exc.status_code == 405:
            exc = StarletteHTTPException(405, exc.detail, {"Allow": allowed_methods(request)})
        wants_html = "text/html" in request.headers.get("accept", "")
        if not wants_html or exc.status_code not in PAGE_TITLES:
            return await http_exception_handler(request, exc)
        title, message = PAGE_TITLES[exc.status_code]
        return render(
            request,
            "error.html",
            {"title": title, "message": message},
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    app.add_exception_handler(StarletteHTTPException, http_error)


METHOD_ORDER = {m: i for i, m in enumerate(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"))}


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, through included routers (FastAPI keeps them as branches; ours have no
    prefix, so their routes' paths are the paths requested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §15.5.6: a 405 MUST send Allow).

    Starlette answers a 405 from the first route whose path matched, so a page served by two
    routes (GET and POST /sign-in) claimed only GET.
    """
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        if isinstance(route, Route) and route.methods:
            if route.matches(request.scope)[0] != Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods, key=lambda m: (METHOD_ORDER.get(m, len(METHOD_ORDER)), m)))


PAGE_TITLES = {
    404: ("Not found", "There is nothing here."),
    405: ("Not allowed", "This page cannot be used that way. Go back and use the buttons on it."),
}
