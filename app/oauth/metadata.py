"""Discovery documents: RFC 8414 (authorization server) and RFC 9728 (protected resource)."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.oauth.client_assertions import ALGORITHMS as ASSERTION_ALGORITHMS
from app.oauth.scopes import AUTHORIZATION_SERVER_SCOPES, SUPPORTED_SCOPES


def authorization_server_metadata(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer
    # RFC 8414 §2; MCP 2025-11-25 "Authorization Server Metadata"; RFC 9207 §3.
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/register",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "jwks_uri": f"{issuer}/jwks.json",
        "scopes_supported": list(AUTHORIZATION_SERVER_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        # RFC 8414 §2; RFC 7523 §2.2 / OIDC Core §9: asymmetric algorithms only, never HMAC.
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }


def protected_resource_metadata(settings: Settings) -> dict[str, Any]:
    # RFC 9728 §2: resource, authorization_servers, scopes_supported, bearer_methods_supported.
    return {
        "resource": settings.mcp_resource,
        "authorization_servers": [settings.auth_issuer_url],
        "scopes_supported": list(SUPPORTED_SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": "Gatehouse MCP",
    }
