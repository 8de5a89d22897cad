"""OAuth errors: small exception types carrying the RFC 6749 / RFC 7591 / RFC 8707 codes, and
the one handler that renders them as RFC 6749 §5.2 JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400
    # The WWW-Authenticate challenge owed to a client that authenticated with the Authorization
    # header, if this error is an authentication failure.
    challenge: ClassVar[str | None] = None

    def __init__(self, description: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.extra_headers = dict(headers or {})

    def response(self, request_headers: Mapping[str, str]) -> JSONResponse:
        """RFC 6749 §5.2: the error as JSON, never cached."""
        headers = {**NO_STORE, **self.extra_headers}
        if self.challenge is not None and request_headers.get("authorization"):
            headers["WWW-Authenticate"] = self.challenge
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status_code,
            headers=headers,
        )


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401
    # RFC 6749 §5.2: "If the client attempted to authenticate via the "Authorization" request
    # header field, the authorization server MUST respond with an HTTP 401 (Unauthorized) status
    # code and include the "WWW-Authenticate" response header field matching the authentication
    # scheme used by the client."
    challenge = 'Basic realm="gatehouse"'


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    error = "invalid_target"  # RFC 8707 §2


class AccessDenied(OAuthError):
    error = "access_denied"


class LoginRequired(OAuthError):
    error = "login_required"  # OIDC Core §3.1.2.6, for prompt=none


class InteractionRequired(OAuthError):
    error = "interaction_required"  # OIDC Core §3.1.2.6, for prompt=none


class ConsentRequired(OAuthError):
    error = "consent_required"  # OIDC Core §3.1.2.6, for prompt=none


class InvalidRedirectUri(OAuthError):
    error = "invalid_redirect_uri"  # RFC 7591 §3.2.2


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"  # RFC 7591 §3.2.2


class TooManyRequests(OAuthError):
    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, description: str, *, retry_after: int) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after)})


async def _render(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, OAuthError):  # pragma: no cover - registered for OAuthError only
        raise exc
    return exc.response(request.headers)


def install_oauth_error_handler(app: FastAPI) -> None:
    """Every OAuthError a route raises becomes its §5.2 JSON response."""
    app.add_exception_handler(OAuthError, _render)
