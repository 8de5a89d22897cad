"""A real HTTP server standing in for github.com's OAuth endpoints and the REST API's /user and
/user/emails, for sign-in with GitHub.

A code is `code-<login>-<anything>`; it is exchanged (once) for the token `gho_<login>`. `octo`
has a verified primary email, `unverified` a primary email GitHub has not verified (and a verified
secondary one, which must not be used instead). Every token request is logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.local_server import serve_asgi

CLIENT_ID = "Iv1.gatehouse-test"
CLIENT_SECRET = "github-test-secret-77aa"  # noqa: S105 - a test value
USERS: dict[str, dict[str, Any]] = {
    "octo": {
        "id": 583231,
        "name": "The Octocat",
        "emails": [
            {"email": "octo@github-users.example", "primary": True, "verified": True},
            {"email": "octo@other.example", "primary": False, "verified": False},
        ],
    },
    "unverified": {
        "id": 999001,
        "name": "",
        "emails": [
            {"email": "unverified@github-users.example", "primary": True, "verified": False},
            {"email": "second@github-users.example", "primary": False, "verified": True},
        ],
    },
}


@dataclass
class FakeGitHubOAuth:
    url: str = ""
    used_codes: set[str] = field(default_factory=set)
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    async def access_token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        self.token_requests.append(form)
        code = str(form.get("code", ""))
        login = code.removeprefix("code-").split("-", 1)[0]
        if (
            form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or login not in USERS
            or code in self.used_codes
        ):
            # GitHub's own shape: 200 with an error member.
            return JSONResponse({"error": "bad_verification_code"})
        self.used_codes.add(code)
        return JSONResponse({"access_token": f"gho_{login}", "token_type": "bearer"})

    def _login(self, request: Request) -> str | None:
        login = request.headers.get("authorization", "").removeprefix("Bearer gho_")
        return login if login in USERS else None

    async def user(self, request: Request) -> JSONResponse:
        login = self._login(request)
        if login is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(
            {"id": USERS[login]["id"], "login": login, "name": USERS[login]["name"]}
        )

    async def emails(self, request: Request) -> JSONResponse:
        login = self._login(request)
        if login is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(USERS[login]["emails"])

    async def meta(self, request: Request) -> JSONResponse:
        return JSONResponse({"verifiable_password_authentication": False})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
                Route("/user", self.user),
                Route("/user/emails", self.emails),
                Route("/meta", self.meta),
            ]
        )


@contextmanager
def running_fake_github() -> Iterator[FakeGitHubOAuth]:
    fake = FakeGitHubOAuth()
    with serve_asgi(fake.app()) as url:
        fake.url = url
        yield fake
