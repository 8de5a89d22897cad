"""Signing keys: published in /jwks.json, rotated by `gatehouse keys rotate`, sealed at rest."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from app.oauth.models import SigningKey
from tests.conftest import ROOT, TEST_SECRET_KEY, TEST_VAULT_KEYS, Backend
from tests.oauth.support import db_rows, full_flow, verify_jwt


def gatehouse(backend: Backend, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The admin CLI as an operator runs it, against the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": backend.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_KEYS": TEST_VAULT_KEYS,
        "VAR_DIR": str(tmp),
    }
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


async def test_jwks_publishes_public_p256_keys_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "EC"
        assert key["crv"] == "P-256"
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert key["kid"]
        assert "d" not in key


async def test_rotation_publishes_both_keys_and_old_tokens_keep_verifying(
    *,
    app: FastAPI,
    backend: Backend,
    tmp_path: Path,
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
) -> None:
    _, before = await full_flow(client, public_client["client_id"])
    old_kid = (await verify_jwt(client, before["access_token"])).header["kid"]

    output = gatehouse(backend, tmp_path, "keys", "rotate").stdout
    new_kid = output.split("active signing key: ")[1].split()[0]
    assert new_kid != old_kid
    app.state.signing_keys.forget()  # processes cache keys for 30 s

    published = [key["kid"] for key in (await client.get("/jwks.json")).json()["keys"]]
    assert new_kid in published
    assert old_kid in published
    keyset = KeySet.import_key_set((await client.get("/jwks.json")).json())
    assert jwt.decode(before["access_token"], keyset, algorithms=["ES256"]).claims["sub"]

    _, after = await full_flow(client, public_client["client_id"])
    assert (await verify_jwt(client, after["access_token"])).header["kid"] == new_kid


async def test_private_key_is_not_stored_in_plaintext(app: FastAPI) -> None:
    kid, key = await app.state.signing_keys.active()
    private = key.as_dict(private=True)
    d_text = private["d"]
    d_raw = base64.urlsafe_b64decode(d_text + "=" * (-len(d_text) % 4))
    pem = key.as_pem(private=True)
    [(row,)] = await db_rows(app, select(SigningKey).where(SigningKey.kid == kid))
    assert "d" not in row.public_jwk
    for column in SigningKey.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, bytes):
            assert d_raw not in value, column.key
            assert pem not in value, column.key
            assert d_text.encode() not in value, column.key
        else:
            assert d_text not in str(value), column.key
            assert "PRIVATE KEY" not in str(value), column.key
