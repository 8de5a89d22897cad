"""Application errors and the handlers that render them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import redis.exceptions as redis
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route

from app.kit.text import BadText

logger = logging.getLogger("gatehouse.errors")

RETRY_AFTER = "5"  # seconds: long enough for a database fail-over or restart to begin
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
OAUTH_JSON_PATHS = frozenset({"/token", "/register", "/revoke", "/introspect"})
MCP_PATHS = frozenset({"/mcp", "/mcp/"})
JSON_PATHS = frozenset({"/jwks.json", "/ready", "/health", "/api/me"})
# SQLSTATE classes that mean "the database is not there for us right now", not "bad request":
# 08 connection exception, 53 insufficient resources, 57 operator intervention (57014 is a
# statement timeout, 57P01-03 shutdown / cannot connect now), 58 system error.
OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})


class AppError(Exception):
    status_code = 400
    title = "Something went wrong"
    message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class CsrfError(AppError):
    status_code = 403
    title = "This form has expired"
    message = (
        "The form could not be verified (it may be old, or sent from another site). "
        "Go back, reload the page and try again."
    )


class NotFoundError(AppError):
    status_code = 404
    title = "Not found"
    message = "There is nothing here."


def _sqlstate(exc: DBAPIError) -> str:
    orig = exc.orig
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def is_outage(exc: BaseException) -> bool:
    """The database (or the network to it) failed us: our fault, worth a retry."""
    if isinstance(exc, PoolTimeout | OSError):  # TimeoutError and ConnectionError are OSErrors
        return True
    if isinstance(exc, StorageError | redis.ConnectionError | redis.TimeoutError):  # Redis away
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc.orig, OSError):
        return True
    state = _sqlstate(exc)
    if state:
        return state[:2] in OUTAGE_SQLSTATE_CLASSES
    # No SQLSTATE: the driver lost the connection (asyncpg), or SQLite stayed locked.
    name = type(exc.orig).__name__
    return name in ("OperationalError", "InterfaceError") or "Connection" in name


def is_bad_input(exc: BaseException) -> bool:
    """SQLSTATE class 22 (data exception: a NUL, a bad encoding) reached the database."""
    return isinstance(exc, DBAPIError) and _sqlstate(exc).startswith("22")


def kind_of_path(path: str) -> str:
    if path in OAUTH_JSON_PATHS:
        return "oauth"
    if path in MCP_PATHS:
        return "mcp"
    if path in JSON_PATHS or path.startswith("/.well-known/"):
        return "json"
    return "page"


def jsonrpc_error_body(code: int, message: str) -> dict[str, object]:
    # JSON-RPC 2.0 §5: "If there was an error in detecting the id in the Request object (e.g.
    # Parse error/Invalid Request), it MUST be Null." The body is not re-read here.
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    from app.kit.web import render

    async def unavailable(request: Request, exc: Exception) -> Response:
        """A database outage, a pool or statement timeout: 503 + Retry-After, never a 500, and
        never an error that tells a client its credentials are bad (MCP clients erase stored
        credentials on invalid_grant / invalid_client)."""
        if is_bad_input(exc):
            unstorable = BadText("input", "holds characters that cannot be stored")
            return await bad_text(request, unstorable)
        if not is_outage(exc):
            raise exc
        path = request.url.path
        name = type(exc).__name__
        logger.warning("a backing service is unavailable (%s) at %s %s", name, request.method, path)
        headers = {"Retry-After": RETRY_AFTER, **NO_STORE}
        kind = kind_of_path(request.url.path)
        description = "The service is temporarily unavailable; retry shortly."
        if kind in ("oauth", "json"):
            # RFC 6749 §4.1.2.1 defines temporarily_unavailable ("unable to handle the request
            # due to a temporary overloading or maintenance") for authorization responses;
            # §5.2 has none for /token, /revoke, /introspect or /register, and the codes it has
            # (server_error aside) blame the client: invalid_grant or invalid_client would make
            # an MCP client erase its stored credentials. The same code at every endpoint says
            # what happened; the 503 + Retry-After (RFC 9110 §15.6.4) says "retry" to any client.
            body = {"error": "temporarily_unavailable", "error_description": description}
            return JSONResponse(body, status_code=503, headers=headers)
        if kind == "mcp":
            rpc = jsonrpc_error_body(-32603, description)
            return JSONResponse(rpc, status_code=503, headers=headers)
        # A page for people, /authorize included: with the database away the client and its
        # redirect URI cannot be checked, so nothing may be redirected to (RFC 6749 §4.1.2.1).
        return render(
            request,
            "error.html",
            {"title": "Temporarily unavailable", "message": description},
            status_code=503,
            headers=headers,
        )

    app.add_exception_handler(SQLAlchemyError, unavailable)
    app.add_exception_handler(OSError, unavailable)
    app.add_exception_handler(redis.RedisError, unavailable)
    app.add_exception_handler(StorageError, unavailable)

    async def bad_text(request: Request, exc: Exception) -> Response:
        """Text that cannot be stored (app/kit/text.py): a 400 naming the field; nothing done."""
        if not isinstance(exc, BadText):  # pragma: no cover
            raise exc
        description = f"{exc.field} {exc.reason}"
        kind = kind_of_path(request.url.path)
        if kind in ("oauth", "json"):
            # RFC 6749 §5.2 invalid_request: the request "is otherwise malformed".
            body = {"error": "invalid_request", "error_description": description}
            return JSONResponse(body, status_code=400, headers=NO_STORE)
        if kind == "mcp":
            return JSONResponse(jsonrpc_error_body(-32600, description), status_code=400)
        return render(
            request,
            "error.html",
            {"title": "This request cannot be used", "message": f"The {description}."},
            status_code=400,
        )

    app.add_exception_handler(BadText, bad_text)

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
