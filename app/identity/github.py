"""Sign-in with GitHub: OAuth 2 (not OpenID Connect), the person from GET /user and the
verified primary email from GET /user/emails. GitHub Enterprise through GITHUB_API_URL (and
OIDC_GITHUB_ISSUER for its web address, derived from an `/api/v3` API URL)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from app.identity.discovery import ProviderUnavailable, checked_json, get_json
from app.identity.settings import ProviderConfig
from app.identity.upstream import UpstreamPerson, UpstreamRefused

API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


class GitHubUpstream:
    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self._http = http

    @property
    def available(self) -> bool:
        return True  # no metadata to load: every failure shows at the callback

    async def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,  # noqa: ARG002 - the Upstream protocol's; GitHub is not OpenID Connect
        code_challenge: str,
    ) -> str:
        params = {
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "allow_signup": "false",
        }
        return f"{self.config.issuer}/login/oauth/authorize?{urlencode(params)}"

    async def check_response_issuer(self, iss: str | None) -> None:  # noqa: ARG002
        return None  # GitHub sends no `iss`; its own callback path keeps responses apart

    async def person(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        nonce: str,  # noqa: ARG002 - GitHub has no ID token to bind a nonce to
    ) -> UpstreamPerson:
        token = await self._exchange(code, redirect_uri, code_verifier)
        headers = {**API_HEADERS, "Authorization": f"Bearer {token}"}
        user = await get_json(self._http, f"{self.config.api_url}/user", headers=headers)
        emails = await get_json(self._http, f"{self.config.api_url}/user/emails", headers=headers)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise ProviderUnavailable("GitHub's /user answer has no id")
        primary = _primary(emails)
        if primary is None:
            raise UpstreamRefused("no_primary_email")
        if primary.get("verified") is not True:
            raise UpstreamRefused("primary_email_unverified")
        name = user.get("name") or user.get("login") or ""
        return UpstreamPerson(
            issuer=self.config.issuer,
            subject=str(user["id"]),  # the numeric id: a login can be renamed and reused
            email=str(primary["email"]),
            email_verified=True,
            name=str(name)[:200],
        )

    async def _exchange(self, code: str, redirect_uri: str, code_verifier: str) -> str:
        form = {
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        url = f"{self.config.issuer}/login/oauth/access_token"
        try:
            response = await self._http.post(url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{type(exc).__name__} from GitHub's token endpoint") from exc
        answer = checked_json(response, "GitHub's token endpoint")
        # GitHub answers 200 with {"error": "bad_verification_code"} for a used or wrong code.
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            error = answer.get("error") if isinstance(answer, dict) else None
            reason = f"token_{error}" if isinstance(error, str) and error.isidentifier() else ""
            raise UpstreamRefused(reason or "token_refused")
        return str(answer["access_token"])

    async def probe(self) -> list[str]:
        try:
            await get_json(self._http, f"{self.config.api_url}/meta", headers=API_HEADERS)
        except ProviderUnavailable as exc:
            return [f"GitHub's API at {self.config.api_url} did not answer: {exc}"]
        return []


def _primary(emails: object) -> dict[str, Any] | None:
    if not isinstance(emails, list):
        return None
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") is True and entry.get("email"):
            return entry
    return None
