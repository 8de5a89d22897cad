"""Provider settings: presets need only an id and a secret; a bad value is a start-up error that
names the variable; a provider that cannot be reached at start-up is a warning and a button that
says so, never a crash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from app.config import ConfigError, Settings
from app.kit.security import csrf_token_for
from tests.conftest import (
    TEST_SECRET_KEY,
    Backend,
    client_for,
    free_port,
    make_settings,
    running_app,
)
from tests.identity.support import reason


def settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_presets_need_only_an_id_and_a_secret() -> None:
    google, microsoft, github = settings(
        oidc_providers="google, microsoft ,github",
        OIDC_GOOGLE_CLIENT_ID="g",
        OIDC_GOOGLE_CLIENT_SECRET="gs",
        OIDC_MICROSOFT_CLIENT_ID="m",
        OIDC_MICROSOFT_CLIENT_SECRET="ms",
        oidc_microsoft_tenant="contoso.onmicrosoft.com",
        OIDC_GITHUB_CLIENT_ID="h",
        OIDC_GITHUB_CLIENT_SECRET="hs",
    ).identity_providers
    assert (google.issuer, google.label, google.scopes) == (
        "https://accounts.google.com",
        "Google",
        ("openid", "email", "profile"),
    )
    assert microsoft.issuer == "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
    assert (github.kind, github.issuer, github.api_url) == (
        "github",
        "https://github.com",
        "https://api.github.com",
    )
    assert github.callback_path() == "/sign-in/github/callback"


def test_github_enterprise_is_reached_through_github_api_url() -> None:
    [github] = settings(
        oidc_providers="github",
        OIDC_GITHUB_CLIENT_ID="h",
        OIDC_GITHUB_CLIENT_SECRET="hs",
        github_api_url="https://ghe.example.com/api/v3",
    ).identity_providers
    assert (github.issuer, github.api_url) == (
        "https://ghe.example.com",
        "https://ghe.example.com/api/v3",
    )


def test_microsoft_without_a_tenant_uses_common() -> None:
    [microsoft] = settings(
        oidc_providers="microsoft", OIDC_MICROSOFT_CLIENT_ID="m", OIDC_MICROSOFT_CLIENT_SECRET="s"
    ).identity_providers
    assert microsoft.issuer == "https://login.microsoftonline.com/common/v2.0"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"oidc_providers": "okta"}, "OIDC_OKTA_ISSUER"),
        (
            {"oidc_providers": "okta", "OIDC_OKTA_ISSUER": "https://o.example"},
            "OIDC_OKTA_CLIENT_ID",
        ),
        (
            {"oidc_providers": "okta", "OIDC_OKTA_ISSUER": "o.example", "OIDC_OKTA_CLIENT_ID": "c"},
            "OIDC_OKTA_ISSUER",
        ),
        (
            {
                "oidc_providers": "okta",
                "OIDC_OKTA_ISSUER": "https://o.example",
                "OIDC_OKTA_CLIENT_ID": "c",
            },
            "OIDC_OKTA_CLIENT_SECRET",
        ),
        (
            {
                "oidc_providers": "google",
                "OIDC_GOOGLE_CLIENT_ID": "c",
                "OIDC_GOOGLE_CLIENT_AUTH": "private_key_jwt",
            },
            "OIDC_GOOGLE_PRIVATE_KEY",
        ),
        (
            {
                "oidc_providers": "google",
                "OIDC_GOOGLE_CLIENT_ID": "c",
                "OIDC_GOOGLE_CLIENT_SECRET": "s",
                "OIDC_GOOGLE_ALLOWED_DOMAINS": "corp.example, not a domain",
            },
            "OIDC_GOOGLE_ALLOWED_DOMAINS",
        ),
        (
            {
                "oidc_providers": "google",
                "OIDC_GOOGLE_CLIENT_ID": "c",
                "OIDC_GOOGLE_CLIENT_SECRET": "s",
                "OIDC_GOOGLE_SCOPES": "email profile",
            },
            "OIDC_GOOGLE_SCOPES",
        ),
        ({"oidc_providers": "go-ogle"}, "OIDC_PROVIDERS"),
        (
            {
                "oidc_providers": "microsoft",
                "OIDC_MICROSOFT_CLIENT_ID": "c",
                "OIDC_MICROSOFT_CLIENT_SECRET": "s",
                "oidc_microsoft_tenant": "../evil",
            },
            "OIDC_MICROSOFT_TENANT",
        ),
    ],
)
def test_a_bad_provider_setting_names_its_variable(values: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**values, OIDC_ANY_CLIENT_SECRET="do-not-print-me")
    assert named in str(raised.value)
    assert "do-not-print-me" not in str(raised.value)


def test_private_key_jwt_takes_a_pem_key(tmp_path: Path) -> None:
    key = RSAKey.generate_key(2048)
    path = tmp_path / "key.pem"
    path.write_bytes(key.as_pem(private=True))
    [okta] = settings(
        oidc_providers="okta",
        OIDC_OKTA_ISSUER="https://o.example",
        OIDC_OKTA_CLIENT_ID="c",
        OIDC_OKTA_CLIENT_AUTH="private_key_jwt",
        OIDC_OKTA_PRIVATE_KEY=str(path),
    ).identity_providers
    assert okta.client_auth == "private_key_jwt"
    assert "PRIVATE KEY" in okta.private_key_pem
    assert "PRIVATE" not in repr(okta)


async def test_an_unreachable_provider_is_a_warning_and_an_unavailable_button(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    values = make_settings(
        backend,
        tmp_path,
        oidc_providers="corp",
        OIDC_CORP_ISSUER=down,
        OIDC_CORP_CLIENT_ID="c",
        OIDC_CORP_CLIENT_SECRET="s",
    )
    with caplog.at_level(logging.WARNING, logger="gatehouse.identity"):
        async with running_app(values) as app, client_for(app) as web:
            page = await web.get("/sign-in")
            assert page.status_code == 200
            assert 'id="provider-corp-unavailable"' in page.text
            started = await web.get("/sign-in/corp")
    assert started.status_code == 503
    assert started.headers["retry-after"] == "60"
    assert reason(started) == "unavailable"
    assert "Corp is not answering right now" in started.text
    assert any("identity provider corp is unavailable" in r.getMessage() for r in caplog.records)


async def test_password_signin_false_hides_the_password_form(
    backend: Backend, tmp_path: Path
) -> None:
    values = make_settings(backend, tmp_path, password_signin=False)
    async with running_app(values) as app, client_for(app) as web:
        page = await web.get("/sign-in")
        # The page has no form at all now; a browser's CSRF cookie still makes a valid token.
        token = csrf_token_for(TEST_SECRET_KEY.encode(), web.cookies["gh_csrf"])
        posted = await web.post(
            "/sign-in",
            data={"email": "a@b.example", "password": "x" * 12, "csrf_token": token},
        )
        signed_up = await web.post(
            "/sign-up",
            data={"email": "a@b.example", "password": "x" * 12, "csrf_token": token},
        )
    assert page.status_code == 200
    assert 'name="password"' not in page.text
    assert posted.status_code == 404
    assert signed_up.status_code == 404


def test_an_issuer_is_kept_exactly_as_given() -> None:
    [auth0] = settings(
        oidc_providers="auth0",
        OIDC_AUTH0_ISSUER="https://tenant.eu.auth0.com/",
        OIDC_AUTH0_CLIENT_ID="c",
        OIDC_AUTH0_CLIENT_SECRET="s",
    ).identity_providers
    assert auth0.issuer == "https://tenant.eu.auth0.com/"  # Auth0's ID tokens end it with "/"
