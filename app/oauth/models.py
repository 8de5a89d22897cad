"""Authorization-server tables: clients, consents, grants, codes, refresh tokens, signing keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.db import Base, UUIDPrimaryKey, utcnow


class OAuthClient(UUIDPrimaryKey, Base):
    """A registered client (RFC 7591) or one known by its metadata document URL (CIMD)."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(2048), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "registered" | "cimd" | "resource"
    client_name: Mapped[str] = mapped_column(String(200), default="")
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), default="none")
    client_secret_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    response_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str | None] = mapped_column(String(200), default=None)
    client_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registration_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105

    def __repr__(self) -> str:
        return f"OAuthClient(client_id={self.client_id!r}, kind={self.kind!r})"


class OAuthConsent(UUIDPrimaryKey, Base):
    """A user's remembered approval of a client at one redirect URI for a set of scopes."""

    __tablename__ = "oauth_consents"
    __table_args__ = (UniqueConstraint("user_id", "client_pk", "redirect_uri"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OAuthGrant(UUIDPrimaryKey, Base):
    """One approved authorization: the root of a code and of a chain of refresh tokens."""

    __tablename__ = "oauth_grants"
    __table_args__ = (Index("ix_oauth_grants_user_client", "user_id", "client_pk"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[str] = mapped_column(String(200))
    resource: Mapped[str] = mapped_column(String(2048))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)

    user: Mapped[User] = relationship(lazy="joined")
    client: Mapped[OAuthClient] = relationship(lazy="joined")

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class AuthorizationCode(UUIDPrimaryKey, Base):
    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True
    )
    client_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    # OAuth 2.1 §4.1.3: redirect_uri is required at /token if the authorization request had it.
    redirect_uri_given: Mapped[bool] = mapped_column(default=True)
    code_challenge: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(200))
    resource: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class RefreshToken(UUIDPrimaryKey, Base):
    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True
    )
    client_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)
    # After rotation: which token replaced this one, and (for the grace window only) that
    # token's value sealed under the vault key, so a retry can be answered with it.
    successor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    successor_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)

    grant: Mapped[OAuthGrant] = relationship(lazy="joined")


class SigningKey(Base):
    """An ES256 key pair; the private half is sealed under the vault master key."""

    __tablename__ = "oauth_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), default="ES256")
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    sealed_kid: Mapped[str] = mapped_column(String(64))
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    # Unused, but the column is in migration 0002: dropping it takes a migration of its own.
    note: Mapped[str | None] = mapped_column(Text, default=None)


class ClientAssertion(Base):
    """A spent `private_key_jwt` assertion (RFC 7523 §3 `jti`), kept until it expires so that no
    replica accepts it twice."""

    __tablename__ = "oauth_client_assertions"

    # sha256 of client_id and jti: the pair is what must be unique.
    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
