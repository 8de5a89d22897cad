"""A real HTTP server standing in for the GitHub REST API, for the connector tests.

It serves `/user`, `/user/repos` and `/search/issues` in GitHub's shapes, paginated with `page`,
`per_page` and a `Link` header, from a small Starlette app run by uvicorn in a background thread
on 127.0.0.1. Who a request acts as comes from its bearer token: `ghp_<login>_<anything>` is that
login (alice has 7 repositories, bob 3, anyone else 2). Some tokens always fail, and any token
can be switched to a failure mode at run time (`fail(token, mode)`):

- `expired`      401 Bad credentials
- `ratelimited`  403 with x-ratelimit-remaining: 0 and x-ratelimit-reset 120 s ahead
- `throttled`    429 with retry-after: 42
- `broken`       500, `gateway` 502
- `slow`         answers only after SLOW_SECONDS

`ghp_expired_…`, `ghp_ratelimited_…` (and so on) start in that mode. A search whose query names
`repo:missing/…` answers 404. Every request is logged with its Authorization header, so tests can
tell a cache hit (no request) from a call, and whose token a call carried.

Error bodies carry UPSTREAM_MARKER, so a test can check that no upstream body reaches a user.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.local_server import serve_asgi

SLOW_SECONDS = 3.0
UPSTREAM_MARKER = "upstream-body-7c1e"
MODES = ("expired", "ratelimited", "throttled", "broken", "gateway", "slow")
REPO_COUNTS = {"alice": 7, "bob": 3}
_TOKEN = re.compile(r"ghp_([a-z0-9]+)_[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None

    @property
    def token(self) -> str | None:
        if self.authorization and self.authorization.startswith("Bearer "):
            return self.authorization.removeprefix("Bearer ")
        return None


def repos_of(login: str) -> list[dict[str, Any]]:
    count = REPO_COUNTS.get(login, 2)
    return [
        {
            "id": hash((login, i)) & 0xFFFFFF,
            "full_name": f"{login}/project-{i}",
            "private": i % 2 == 1,
            "description": f"{login}'s project number {i}",
            "html_url": f"https://github.example/{login}/project-{i}",
            "updated_at": f"2026-01-{28 - i:02d}T12:00:00Z",
            "stargazers_count": i * 10,
        }
        for i in range(1, count + 1)
    ]


def issues_of(login: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n, repo in enumerate(repos_of(login), start=1):
        item: dict[str, Any] = {
            "title": f"{login}: bug in {repo['full_name']}",
            "number": n,
            "state": "open" if n % 2 else "closed",
            "html_url": f"{repo['html_url']}/issues/{n}",
            "updated_at": repo["updated_at"],
        }
        if n % 3 == 0:
            item["pull_request"] = {"url": f"{repo['html_url']}/pull/{n}"}
        items.append(item)
    return items


@dataclass
class FakeGitHub:
    url: str = ""
    modes: dict[str, str] = field(default_factory=dict)
    _log: list[Logged] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what tests use ------------------------------------------------------------------------

    def fail(self, token: str, mode: str | None) -> None:
        """Make every request with `token` fail as `mode` (None: answer normally again)."""
        assert mode is None or mode in MODES, mode
        with self._lock:
            if mode is None:
                self.modes.pop(token, None)
            else:
                self.modes[token] = mode

    def requests(self, token: str | None = None) -> list[Logged]:
        """Requests received so far; with `token`, only those that carried it."""
        with self._lock:
            log = list(self._log)
        return log if token is None else [r for r in log if r.token == token]

    # -- the API -------------------------------------------------------------------------------

    def _mode(self, token: str | None) -> str | None:
        if token is None:
            return None
        with self._lock:
            mode = self.modes.get(token)
        if mode is None:
            match = _TOKEN.fullmatch(token)
            if match and match.group(1) in MODES:
                mode = match.group(1)
        return mode

    async def _authenticate(self, request: Request) -> str | JSONResponse:
        authorization = request.headers.get("authorization")
        entry = Logged(request.method, request.url.path, dict(request.query_params), authorization)
        with self._lock:
            self._log.append(entry)
        token = entry.token
        mode = self._mode(token)
        if mode == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        elif mode == "expired":
            return _error(401, "Bad credentials")
        elif mode == "ratelimited":
            reset = str(int(time.time()) + 120)
            return _error(
                403,
                "API rate limit exceeded",
                {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
            )
        elif mode == "throttled":
            return _error(429, "secondary rate limit", {"retry-after": "42"})
        elif mode == "broken":
            return _error(500, "Server Error")
        elif mode == "gateway":
            return _error(502, "Bad Gateway")
        match = _TOKEN.fullmatch(token or "")
        if match is None:
            return _error(401, "Requires authentication")
        return match.group(1)

    async def user(self, request: Request) -> JSONResponse:
        login = await self._authenticate(request)
        if isinstance(login, JSONResponse):
            return login
        return JSONResponse(
            {
                "login": login,
                "id": hash(login) & 0xFFFFFF,
                "name": login.capitalize(),
                "html_url": f"https://github.example/{login}",
                "public_repos": len(repos_of(login)),
            }
        )

    async def user_repos(self, request: Request) -> JSONResponse:
        login = await self._authenticate(request)
        if isinstance(login, JSONResponse):
            return login
        return _page(request, repos_of(login), lambda items: items)

    async def search_issues(self, request: Request) -> JSONResponse:
        login = await self._authenticate(request)
        if isinstance(login, JSONResponse):
            return login
        query = request.query_params.get("q", "")
        if not query:
            return _error(422, "Validation Failed")
        if "repo:missing/" in query:
            return _error(404, "Not Found")
        words = [w for w in query.split() if ":" not in w]
        found = [i for i in issues_of(login) if all(w in i["title"] for w in words)]
        return _page(request, found, lambda items: {"total_count": len(found), "items": items})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"message": f"{message} ({UPSTREAM_MARKER})", "documentation_url": "https://docs"}
    return JSONResponse(body, status_code=status, headers=headers)


def _page(request: Request, items: list[dict[str, Any]], shape: Any) -> JSONResponse:
    page = max(1, int(request.query_params.get("page", "1")))
    per_page = min(100, max(1, int(request.query_params.get("per_page", "30"))))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {}
    if page * per_page < len(items):
        query = {**request.query_params, "page": str(page + 1)}
        headers["link"] = f'<{request.url.replace(query=urlencode(query))}>; rel="next"'
    return JSONResponse(shape(chunk), headers=headers)


def serve(fake: FakeGitHub) -> Iterator[FakeGitHub]:
    """Run `fake` on a free loopback port until the generator is closed."""
    api = Starlette(
        routes=[
            Route("/user", fake.user),
            Route("/user/repos", fake.user_repos),
            Route("/search/issues", fake.search_issues),
        ]
    )
    with serve_asgi(api) as url:
        fake.url = url
        yield fake


@pytest.fixture(scope="session")
def fake_github() -> Iterator[FakeGitHub]:
    yield from serve(FakeGitHub())
