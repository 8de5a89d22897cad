"""Registration abuse control that lets hosted clients through: claude.ai and ChatGPT register
every person's connection from a few shared egress addresses, so the per-address limit is only a
flood bound; never-used registrations are capped (oldest evicted first); bodies are capped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from app.config import Settings
from app.oauth.models import OAuthClient, OAuthGrant
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import sign_up
from tests.oauth.flow import REDIRECT_URI, Authorization, authorize_code, exchange
from tests.oauth.support import assert_oauth_error, db_rows

HOSTED_EGRESS = "160.79.104.10"  # one address, many people (a documentation-like example)


def body(**extra: Any) -> dict[str, Any]:
    return {
        "client_name": "claude.ai",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none",
        **extra,
    }


def test_the_default_per_address_limit_is_a_flood_bound() -> None:
    # The old default (30 an hour) refused the 31st person connecting through one hosted client.
    default = Settings.model_fields["registration_limit_ip"].default
    count, _, period = default.partition(" per ")
    assert int(count) >= 1000
    assert period == "hour"


async def test_a_hosted_clients_address_registers_at_human_rates(
    backend: Backend, tmp_path: Path
) -> None:
    default = Settings.model_fields["registration_limit_ip"].default
    settings = make_settings(backend, tmp_path, registration_limit_ip=default)
    async with running_app(settings) as application, client_for(application, HOSTED_EGRESS) as c:
        for n in range(60):
            response = await c.post("/register", json=body())
            assert response.status_code == 201, (n, response.text)


async def test_a_flood_from_one_address_is_stopped(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, registration_limit_ip="20 per hour")
    async with running_app(settings) as application:
        async with client_for(application, "10.2.0.1") as flooder:
            statuses = [
                (await flooder.post("/register", json=body())).status_code for _ in range(25)
            ]
            assert statuses == [201] * 20 + [429] * 5
            last = await flooder.post("/register", json=body())
            assert int(last.headers["retry-after"]) > 0
        async with client_for(application, "10.2.0.2") as someone_else:
            assert (await someone_else.post("/register", json=body())).status_code == 201


async def test_never_used_registrations_are_bounded_oldest_first(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, registration_max_unused=5)
    async with running_app(settings) as application, client_for(application, "10.2.1.1") as c:
        await sign_up(c)
        # One client is used (a grant exists): it is never evicted.
        used = (await c.post("/register", json=body(redirect_uris=[REDIRECT_URI]))).json()
        auth = Authorization(used["client_id"])
        assert (await exchange(c, auth, await authorize_code(c, auth))).status_code == 200
        ids = [(await c.post("/register", json=body())).json()["client_id"] for _ in range(8)]
        # Never used: no grant and never at /token (other tests' clients in this database
        # count too, and are evicted by the same rule).
        has_grant = select(OAuthGrant.id).where(OAuthGrant.client_pk == OAuthClient.id).exists()
        unused = (
            (OAuthClient.kind == "registered") & OAuthClient.last_used_at.is_(None) & ~has_grant
        )
        [[count]] = await db_rows(application, select(func.count()).where(unused))
        assert count == 5
        remaining = {row[0] for row in await db_rows(application, select(OAuthClient.client_id))}
        assert remaining >= {used["client_id"], *ids[3:]}
        assert not remaining & set(ids[:3])


async def test_an_oversized_registration_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/register", json=body(client_name="x", software_id="y" * (17 * 1024))
    )
    body_ = assert_oauth_error(response, 400, "invalid_request")
    assert "at most 16384 bytes" in body_["error_description"]


async def test_too_many_redirect_uris_are_refused(client: httpx.AsyncClient) -> None:
    uris = [f"https://app.example/cb/{n}" for n in range(11)]
    response = await client.post("/register", json=body(redirect_uris=uris))
    assert_oauth_error(response, 400, "invalid_redirect_uri")
