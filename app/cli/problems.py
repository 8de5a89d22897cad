"""What a person can get wrong at start-up or in a command, said in one line with the fix.

`explain` turns an exception into a `Problem` (the line to print, the exit code); the command's
entry point prints it instead of a traceback unless `--debug` or `LOG_LEVEL=debug` asks for one.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.config import ConfigError

# PostgreSQL error codes (Appendix A of its manual), as asyncpg reports them in `sqlstate`.
NO_SUCH_DATABASE = "3D000"
BAD_CREDENTIALS = frozenset({"28000", "28P01"})
NO_SUCH_TABLE = "42P01"
UPGRADE = "run `gatehouse db upgrade` (`make migrate` in the checkout)"


class Problem(Exception):
    """A mistake the person can fix: `str(problem)` says what and how; `code` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def where(database_url: str) -> str:
    """`PostgreSQL database "x" on host:port` or `SQLite file /path`, never the password."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return f"the SQLite file {url.database}"
    return f'PostgreSQL database "{url.database}" on {url.host or "localhost"}:{url.port or 5432}'


def missing_database(database_url: str) -> Problem:
    """The database does not exist. We print the command rather than create it: which role owns
    it, its encoding and whether the role may create databases at all are the operator's call,
    and a typo in DATABASE_URL must not quietly start a second, empty database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return Problem(f"there is no database at {url.database}: {UPGRADE} to create it")
    user = f" -U {url.username}" if url.username else ""
    command = f"createdb -h {url.host or 'localhost'} -p {url.port or 5432}{user} {url.database}"
    return Problem(
        f"{where(database_url)} does not exist: create it with `{command}` "
        f'(or CREATE DATABASE "{url.database}";), then {UPGRADE}'
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [current.__cause__, current.__context__]
        if isinstance(orig, BaseException):
            todo.append(orig)


def explain(exc: BaseException, database_url: str | None) -> Problem | None:
    """The Problem behind `exc`, or None when it is not one a person caused."""
    for cause in _chain(exc):
        if isinstance(cause, Problem):
            return cause
        if isinstance(cause, ConfigError):
            lines = str(cause).splitlines()
            return Problem("\n".join(f"configuration error: {line}" for line in lines), 2)
        if database_url is not None:
            problem = _database_problem(cause, database_url)
            if problem is not None:
                return problem
    return None


def _database_problem(cause: BaseException, database_url: str) -> Problem | None:
    place = where(database_url)
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate == NO_SUCH_DATABASE:
        return missing_database(database_url)
    if sqlstate in BAD_CREDENTIALS:
        user = make_url(database_url).username or "(none)"
        return Problem(
            f"{place} refused the user {user!r} ({_first_line(cause)}): "
            "fix the user and password in DATABASE_URL"
        )
    if sqlstate == NO_SUCH_TABLE or (
        isinstance(cause, sqlite3.OperationalError) and "no such table" in str(cause)
    ):
        return Problem(f"{place} has no Gatehouse tables yet: {UPGRADE}")
    if isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause):
        return Problem(f"cannot open {place}: check DATABASE_URL and that its folder exists")
    if isinstance(cause, socket.gaierror | ConnectionError | TimeoutError) or (
        isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
    ):
        return Problem(
            f"cannot reach {place} ({_first_line(cause) or type(cause).__name__}): start "
            "PostgreSQL there, or fix the host and port in DATABASE_URL"
        )
    if isinstance(cause, DBAPIError) and cause.connection_invalidated:
        return Problem(f"lost the connection to {place}: is the database up?")
    return None


def bind_problem(exc: OSError, host: str, port: int) -> Problem:
    if exc.errno == errno.EADDRINUSE:
        return Problem(
            f"port {port} on {host} is already in use: set PORT to a free port "
            f"(PORT={port + 1} make run) or stop the program that holds it"
        )
    if exc.errno == errno.EACCES:
        return Problem(f"no permission to listen on port {port}: set PORT to 1024 or above")
    return Problem(
        f"cannot listen on {host}:{port} ({_first_line(exc)}): set HOST to an address of "
        "this machine (127.0.0.1, or 0.0.0.0 for every interface)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else ""
