"""Every feature's models, imported so Alembic and create_all see one metadata."""

from app.audit import AuditEvent
from app.auth.mfa.models import MfaChallenge, RecoveryCode, TotpFactor, WebAuthnCredential
from app.auth.models import BrowserSession, User
from app.db import Base
from app.mcp.models import Note
from app.oauth.models import (
    AuthorizationCode,
    OAuthClient,
    OAuthConsent,
    OAuthGrant,
    RefreshToken,
    SigningKey,
)
from app.vault.models import Credential

__all__ = [
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "BrowserSession",
    "Credential",
    "MfaChallenge",
    "Note",
    "OAuthClient",
    "OAuthConsent",
    "OAuthGrant",
    "RecoveryCode",
    "RefreshToken",
    "SigningKey",
    "TotpFactor",
    "User",
    "WebAuthnCredential",
]
