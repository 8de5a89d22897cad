"""Every feature's models, imported so Alembic and create_all see one metadata."""

from app.audit import AuditEvent
from app.auth.mfa.models import MfaChallenge, RecoveryCode, TotpFactor, WebAuthnCredential
from app.auth.models import BrowserSession, User
from app.auth.recovery.models import AccountToken
from app.db import Base
from app.identity.models import Identity, UsedSignInState
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
    "AccountToken",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "BrowserSession",
    "Credential",
    "Identity",
    "MfaChallenge",
    "Note",
    "OAuthClient",
    "OAuthConsent",
    "OAuthGrant",
    "RecoveryCode",
    "RefreshToken",
    "SigningKey",
    "UsedSignInState",
    "TotpFactor",
    "User",
    "WebAuthnCredential",
]
