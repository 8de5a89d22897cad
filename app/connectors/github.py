"""GitHub: the API client, and validating a personal access token (tools: github_tools.py).

GITHUB_API_URL points at api.github.com, a GitHub Enterprise server (https://HOST/api/v3), or a
test server. Every call has a timeout; outputs are paginated and bounded.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from app import __version__
from app.connectors.base import (
    CredentialRejected,
    CredentialSpec,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)
from app.kit.envelope import SecretValue

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_NEXT = re.compile(r'<[^>]+>;\s*rel="next"')


class GitHubConnector:
    name = "github"
    label = "GitHub"
    credential = CredentialSpec(
        label="GitHub personal access token",
        help_text=(
            "Create a fine-grained token with read access to the repositories you want the "
            "tools to see. It is stored encrypted and used only for your own tool calls."
        ),
        help_url="https://github.com/settings/personal-access-tokens/new",
    )

    def __init__(self, api_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self._http = httpx.AsyncClient(
            base_url=api_url,
            timeout=timeout,
            follow_redirects=False,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"gatehouse/{__version__}",
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(
        self, secret: SecretValue, path: str, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        """GET `path` as the secret's owner; upstream failures become UpstreamError."""
        headers = {"Authorization": f"Bearer {secret.reveal()}"}
        try:
            response = await self._http.get(path, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable("the request timed out") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable("it could not be reached") from exc
        _raise_for(response)
        try:
            response.json()  # decoded once here so a malformed body is an upstream error
        except ValueError as exc:
            raise UpstreamUnavailable("it gave an answer that is not JSON") from exc
        return response

    async def validate(self, secret: SecretValue) -> str:
        response = await self.get(secret, "/user")
        login = json_object(response).get("login")
        if not isinstance(login, str) or not login:
            raise UpstreamUnavailable("it gave an unexpected answer")
        return login


def has_next_page(response: httpx.Response) -> bool:
    return bool(_NEXT.search(response.headers.get("link", "")))


def json_object(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict):
        raise UpstreamUnavailable("it gave an unexpected answer")
    return body


def _raise_for(response: httpx.Response) -> None:
    """Classify an upstream answer; never pass its body on."""
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        raise CredentialRejected("the token was refused")
    remaining = response.headers.get("x-ratelimit-remaining")
    if status == 429 or (status == 403 and (remaining == "0" or "retry-after" in response.headers)):
        raise RateLimited("rate limited", _retry_after(response))
    if status == 403:
        raise CredentialRejected("the token lacks permission for this")
    if status == 404:
        raise NotFound("The repository or resource does not exist or this token cannot see it.")
    if status == 422:
        raise UpstreamError("it did not accept the query")
    raise UpstreamUnavailable(f"it answered {status}")


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after")
    if value and value.isdigit():
        return int(value)
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(1, int(reset) - int(time.time()))
    return None
