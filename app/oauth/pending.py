"""The authorization request a consent page is about, carried signed in its hidden `pending`
field, so approving needs no server-side state (any replica can take the POST)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.kit.security import sign_blob, unsign_blob
from app.oauth.authorization import AuthorizationRequest, Target

PENDING_TTL = 600  # seconds a consent page stays valid
PENDING_PURPOSE = "authorization-request"


def seal_pending(
    secret_key: bytes, authorization: AuthorizationRequest, *, session_id: uuid.UUID
) -> str:
    """The `pending` value for a consent page shown in this browser session."""
    return sign_blob(
        secret_key,
        PENDING_PURPOSE,
        {
            "client_id": authorization.client.client_id,
            "redirect_uri": authorization.redirect_uri,
            "scopes": list(authorization.scopes),
            "state": authorization.state,
            "code_challenge": authorization.code_challenge,
            "resource": authorization.resource,
            "redirect_uri_given": authorization.redirect_uri_given,
            "session": str(session_id),
        },
        ttl=PENDING_TTL,
    )


@dataclass(frozen=True)
class PendingApproval:
    """An opened `pending` value: the request, short of its client, which is resolved again."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str
    resource: str
    redirect_uri_given: bool

    def request_for(self, target: Target) -> AuthorizationRequest:
        return AuthorizationRequest(
            client=target.client,
            redirect_uri=self.redirect_uri,
            redirect_uri_given=self.redirect_uri_given,
            scopes=self.scopes,
            resource=self.resource,
            code_challenge=self.code_challenge,
            state=self.state,
        )


def open_pending(secret_key: bytes, value: str, *, session_id: uuid.UUID) -> PendingApproval | None:
    """The approval a `pending` value carries; None if altered, expired or from another session."""
    data = unsign_blob(secret_key, PENDING_PURPOSE, value)
    if data is None or data.get("session") != str(session_id):
        return None
    return PendingApproval(
        client_id=data["client_id"],
        redirect_uri=data["redirect_uri"],
        scopes=tuple(data["scopes"]),
        state=data.get("state"),
        code_challenge=data["code_challenge"],
        resource=data["resource"],
        redirect_uri_given=bool(data.get("redirect_uri_given", True)),
    )
