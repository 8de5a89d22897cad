"""What the peer and the ceiling share: the same JWT checks Gatehouse makes, and the bodies sent.

The checks are written the way a developer would write them for a bare SDK server (joserfc, the
same library Gatehouse uses, so the signature cost is identical): alg ES256 only, typ at+jwt,
iss, aud, exp/nbf with leeway, sub and jti present. No caching.
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

MODERN = "2026-07-28"
HANDSHAKE = "2025-06-18"


class JwtChecker:
    def __init__(self, jwks_file: str, *, issuer: str, audience: str) -> None:
        self.keyset = KeySet.import_key_set(json.loads(Path(jwks_file).read_text()))
        self.issuer = issuer
        self.audience = audience

    def verify(self, token: str) -> dict[str, Any] | None:
        try:
            encoded = token.split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            if header.get("alg") != "ES256" or header.get("typ") != "at+jwt":
                return None
            claims = jwt.decode(token, self.keyset, algorithms=["ES256"]).claims
            jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
                jti={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError):
            return None
        return dict(claims)


class PyJwtChecker:
    """The same checks written with PyJWT, as the fair peer's developer would: ES256 only,
    `typ: at+jwt`, iss, aud, exp/nbf with leeway, sub and jti required; the key by `kid`."""

    def __init__(self, jwks_file: str, *, issuer: str, audience: str) -> None:
        import jwt as pyjwt

        self._jwt = pyjwt
        keys = pyjwt.PyJWKSet.from_dict(json.loads(Path(jwks_file).read_text()))
        self.keys = {key.key_id: key for key in keys.keys}
        self.issuer = issuer
        self.audience = audience

    def verify(self, token: str) -> dict[str, Any] | None:
        pyjwt = self._jwt
        try:
            header = pyjwt.get_unverified_header(token)
            key = self.keys.get(header.get("kid"))
            if key is None or header.get("alg") != "ES256" or header.get("typ") != "at+jwt":
                return None
            claims: dict[str, Any] = pyjwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=30,
                options={"require": ["exp", "iss", "aud", "sub", "jti"]},
            )
        except pyjwt.PyJWTError:
            return None
        return claims


def tools_call_body(generation: str) -> dict[str, Any]:
    """One `tools/call` of `whoami`, as a 2026-07-28 client or a handshake-era client sends it."""
    params: dict[str, Any] = {"name": "whoami", "arguments": {}}
    if generation == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def routing_headers(generation: str) -> dict[str, str]:
    """2026-07-28 mirrors the method and the tool name into headers (the SDK checks they match)."""
    return {"Mcp-Method": "tools/call", "Mcp-Name": "whoami"} if generation == MODERN else {}


def serve(
    build: Callable[[argparse.Namespace], Any], *, default_port: int, flags: tuple[str, ...] = ()
) -> None:
    """Parse the comparison servers' shared arguments and serve `build(args)` the same way."""
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--jwks", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    for flag in flags:
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args()
    uvicorn.run(
        build(args),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
