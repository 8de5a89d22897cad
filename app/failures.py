"""When a backing service fails us, or text that cannot be stored gets in: the right answer for
each kind of endpoint, never a 500.

- An outage (PostgreSQL, the pool, a statement timeout, Redis) is 503 + Retry-After: the OAuth
  JSON endpoints get `temporarily_unavailable`, /mcp a JSON-RPC error, people a page.
- Text that cannot be stored (app/kit/text.BadText, or the database's own SQLSTATE 22 refusal)
  is a 400 naming the field, in the same three shapes.
"""

from __future__ import annotations

import logging
import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.kit.text import BadText
from app.kit.web import render
from app.kit.work_gate import GateBusy

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


def _sqlstate(exc: DBAPIError) -> str:
    orig = exc.orig
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def is_outage(exc: BaseException) -> bool:
    """The database (or the network to it) failed us: our fault, worth a retry."""
    if isinstance(exc, PoolTimeout | OSError):  # TimeoutError and ConnectionError are OSErrors
        return True
    if isinstance(exc, StorageError):  # Redis away, through the limits package
        return True
    # Redis is imported only when REDIS_URL is set (~8 MiB of modules otherwise resident for
    # nothing): an exception of it can exist only once it has been imported.
    redis = sys.modules.get("redis.exceptions")
    if redis is not None and isinstance(exc, redis.ConnectionError | redis.TimeoutError):
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
    description = "The service is temporarily unavailable; retry shortly."
    return _retry_later(request, description, RETRY_AFTER)


async def busy(request: Request, exc: Exception) -> Response:
    """Expensive work with no slot free (app/kit/work_gate.py): the server is busy, not the
    client wrong; routes that expect it answer it themselves, this catches the rest."""
    if not isinstance(exc, GateBusy):  # pragma: no cover
        raise exc
    logger.warning("%s at %s %s", exc, request.method, request.url.path)
    description = "The service is busy; retry shortly."
    return _retry_later(request, description, str(exc.retry_after))


def _retry_later(request: Request, description: str, retry_after: str) -> Response:
    headers = {"Retry-After": retry_after, **NO_STORE}
    kind = kind_of_path(request.url.path)
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


def install_failure_handlers(app: FastAPI, *, uses_redis: bool) -> None:
    """`uses_redis` (REDIS_URL is set): answer Redis's own errors too; importing redis only then
    keeps its ~8 MiB of modules out of a process that never talks to it."""
    families: list[type[Exception]] = [SQLAlchemyError, OSError, StorageError]
    if uses_redis:
        import redis.exceptions  # lazily, for memory (above)

        families.append(redis.exceptions.RedisError)
    for family in families:
        app.add_exception_handler(family, unavailable)
    app.add_exception_handler(BadText, bad_text)
    app.add_exception_handler(GateBusy, busy)
