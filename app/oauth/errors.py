"""OAuth errors: small exception types carrying the RFC 6749 / RFC 7591 / RFC 8707 codes."""

from __future__ import annotations

from typing import ClassVar

from fastapi.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        """RFC 6749 §5.2: the error as JSON, never cached."""
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status_code,
            headers={**NO_STORE, **(headers or {})},
        )


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401


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


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class InvalidRedirectUri(OAuthError):
    error = "invalid_redirect_uri"  # RFC 7591 §3.2.2


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"  # RFC 7591 §3.2.2


class TooManyRequests(OAuthError):
    error = "temporarily_unavailable"
    status_code = 429
