"""The provider's metadata and keys are read once and kept; a key the provider starts signing
with after a rotation is fetched on its first unknown `kid`, but at most once per interval."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from joserfc.jwk import RSAKey

from app.identity import discovery
from app.identity.discovery import OidcDiscovery, new_http_client
from app.identity.settings import parse_providers
from tests.identity import stub_idp
from tests.identity.stub_idp import StubIdp


@pytest.fixture
def own_stub() -> Iterator[StubIdp]:
    with stub_idp.running_stub() as idp:
        yield idp


@pytest.fixture
async def provider(own_stub: StubIdp) -> AsyncIterator[OidcDiscovery]:
    [config] = parse_providers(
        ["stub"],
        {
            "OIDC_STUB_ISSUER": own_stub.url,
            "OIDC_STUB_CLIENT_ID": stub_idp.CLIENT_ID,
            "OIDC_STUB_CLIENT_SECRET": stub_idp.CLIENT_SECRET,
        },
        microsoft_tenant="",
        github_api_url="https://api.github.com",
    )
    http = new_http_client()
    yield OidcDiscovery(config, http)
    await http.aclose()


def _kids(keys: object) -> set[str | None]:
    return {key.kid for key in keys.keys}  # type: ignore[attr-defined]


async def test_known_kids_are_served_from_the_cache(
    provider: OidcDiscovery, own_stub: StubIdp
) -> None:
    first = await provider.keys(None)
    for _ in range(3):
        assert await provider.keys("published-1") is first
    assert own_stub.jwks_fetches == 1
    assert provider.available


async def test_a_rotated_key_is_fetched_on_its_first_unknown_kid(
    provider: OidcDiscovery, own_stub: StubIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _kids(await provider.keys(None)) == {"published-1"}
    own_stub.rotated.append(RSAKey.generate_key(2048, parameters={"kid": "rotated-2"}))
    # Within the interval an unknown kid does not make us ask again...
    assert _kids(await provider.keys("rotated-2")) == {"published-1"}
    assert own_stub.jwks_fetches == 1
    # ...once it has passed, the first token with the new kid does.
    monkeypatch.setattr(discovery, "REFRESH_MIN_INTERVAL", 0.0)
    assert _kids(await provider.keys("rotated-2")) == {"published-1", "rotated-2"}
    assert own_stub.jwks_fetches == 2
