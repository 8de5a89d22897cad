"""/authorize and /consent: page errors before the client is trusted, redirects after (RFC 9207)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.helpers import sign_in, sign_up
from tests.oauth.flow import (
    REDIRECT_URI,
    Authorization,
    authorize_code,
    consent,
    exchange,
    redirect_params,
    register,
)
from tests.oauth.support import ISSUER, RESOURCE, verify_jwt


def assert_page_error(response: httpx.Response) -> None:
    """An error shown on our page: never a redirect to an unverified URI."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def assert_redirected_error(
    response: httpx.Response, auth: Authorization, error: str
) -> dict[str, str]:
    """RFC 6749 §4.1.2.1 with RFC 9207: error, state and iss, to the registered redirect URI."""
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(auth.redirect_uri + "?")
    params = redirect_params(response)
    assert params["error"] == error
    assert params["state"] == auth.state
    assert params["iss"] == ISSUER
    assert "code" not in params
    return params


# -- before the client and redirect URI are trusted: a page ------------------------------------


async def test_unknown_client_id_shows_page(client: httpx.AsyncClient, user: str) -> None:
    assert_page_error(await client.get(Authorization("gh_c_no_such_client").url()))


async def test_missing_client_id_shows_page(client: httpx.AsyncClient, user: str) -> None:
    params = Authorization("x").params()
    del params["client_id"]
    assert_page_error(await client.get("/authorize?" + urlencode(params)))


async def test_redirect_uri_mismatch_shows_page_and_never_redirects(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], redirect_uri="https://evil.example/callback")
    assert_page_error(await client.get(auth.url()))


async def test_repeated_redirect_uri_shows_page(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    query = urlencode(auth.params()) + "&" + urlencode({"redirect_uri": REDIRECT_URI})
    assert_page_error(await client.get("/authorize?" + query))


@pytest.mark.parametrize(
    ("registered", "presented"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback"),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:51234/callback"),
        ("http://[::1]/callback", "http://[::1]:51234/callback"),
        ("http://[::1]:3000/callback", "http://[::1]:51234/callback"),
        ("http://localhost/callback", "http://localhost:51234/callback"),
        ("http://localhost:3000/callback", "http://localhost:51234/callback"),
    ],
)
async def test_loopback_redirect_accepts_any_port(
    client: httpx.AsyncClient, user: str, registered: str, presented: str
) -> None:
    # RFC 8252 §7.3: any port for loopback IP redirect URIs.
    registration = await register(client, redirect_uris=[registered])
    auth = Authorization(registration["client_id"], redirect_uri=presented)
    code = await authorize_code(client, auth)
    assert (await exchange(client, auth, code)).status_code == 200


@pytest.mark.parametrize(
    ("registered", "presented"),
    [
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:51234/other"),
        ("http://[::1]/callback", "http://[::1]:51234/callback/extra"),
        ("http://localhost/callback", "http://localhost:51234/callback?x=1"),
        ("http://127.0.0.1/callback", "http://localhost:51234/callback"),
        ("https://app.example.com/callback", "https://app.example.com:8443/callback"),
        ("https://app.example.com/callback", "https://app.example.com/callback/"),
    ],
)
async def test_redirect_uri_other_than_registered_refused(
    client: httpx.AsyncClient, user: str, registered: str, presented: str
) -> None:
    registration = await register(client, redirect_uris=[registered])
    auth = Authorization(registration["client_id"], redirect_uri=presented)
    assert_page_error(await client.get(auth.url()))


# -- after: errors redirect with error, state and iss -------------------------------------------


async def test_unknown_resource_redirects_invalid_target(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], resource="https://other.example/mcp")
    assert_redirected_error(await client.get(auth.url()), auth, "invalid_target")


async def test_our_resource_is_accepted(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], resource=RESOURCE)
    code = await authorize_code(client, auth)
    token = (await exchange(client, auth, code, resource=RESOURCE)).json()
    assert (await verify_jwt(client, token["access_token"])).claims["aud"] == RESOURCE


async def test_response_type_token_redirects_unsupported_response_type(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], extra={"response_type": "token"})
    assert_redirected_error(await client.get(auth.url()), auth, "unsupported_response_type")


async def test_missing_response_type_redirects_invalid_request(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    # RFC 6749 §4.1.2.1: "invalid_request: The request is missing a required parameter".
    auth = Authorization(public_client["client_id"])
    params = {k: v for k, v in auth.params().items() if k != "response_type"}
    response = await client.get("/authorize?" + urlencode(params))
    assert_redirected_error(response, auth, "invalid_request")


async def test_repeated_parameter_redirects_invalid_request(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    query = urlencode(auth.params()) + "&" + urlencode({"scope": "mcp"})
    response = await client.get("/authorize?" + query)
    assert_redirected_error(response, auth, "invalid_request")


async def test_deny_redirects_access_denied_with_state_and_iss(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    page = await client.get(auth.url())
    response = await consent(client, page, action="deny")
    assert_redirected_error(response, auth, "access_denied")


# -- sign-in and consent ----------------------------------------------------------------------


async def test_not_signed_in_goes_to_sign_in_and_back(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    email = await sign_up(client)
    await client.post("/sign-out", data={})  # best effort; a fresh client is what matters
    client.cookies.clear()
    auth = Authorization(public_client["client_id"])
    response = await client.get(auth.url())
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/sign-in"
    next_path = parse_qs(location.query)["next"][0]
    assert next_path == auth.url()
    signed_in = await sign_in(client, email, next_path=next_path)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == auth.url()
    page = await client.get(signed_in.headers["location"])
    assert page.status_code == 200
    assert 'name="pending"' in page.text


async def test_consent_page_names_client_redirect_host_and_scopes(
    client: httpx.AsyncClient, user: str
) -> None:
    registration = await register(client, client_name="Acme Notes")
    page = await client.get(Authorization(registration["client_id"]).url())
    assert page.status_code == 200
    assert '<span id="client-name">Acme Notes</span>' in page.text
    assert "unverified" in page.text
    assert '<dd id="redirect-host">127.0.0.1' in page.text
    assert 'name="scope" value="mcp:write"' in page.text
    assert 'name="action" value="approve"' in page.text
    assert 'name="action" value="deny"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_client_name_with_script_shows_as_text(client: httpx.AsyncClient, user: str) -> None:
    registration = await register(client, client_name="<script>alert(1)</script>")
    page = await client.get(Authorization(registration["client_id"]).url())
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_consent_csp_form_action_allows_the_redirect_origin(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    page = await client.get(Authorization(public_client["client_id"]).url())
    directives = [d.strip() for d in page.headers["content-security-policy"].split(";")]
    form_action = next(d for d in directives if d.startswith("form-action"))
    assert form_action.split() == ["form-action", "'self'", "http://127.0.0.1:33418"]


async def test_consent_csp_form_action_allows_a_private_use_scheme(
    client: httpx.AsyncClient, user: str
) -> None:
    uri = "cursor://anysphere.cursor-retrieval/oauth/callback"
    registration = await register(client, redirect_uris=[uri])
    page = await client.get(Authorization(registration["client_id"], redirect_uri=uri).url())
    directives = [d.strip() for d in page.headers["content-security-policy"].split(";")]
    form_action = next(d for d in directives if d.startswith("form-action"))
    assert form_action.split() == ["form-action", "'self'", "cursor:"]
    assert "(an app on this device)" in page.text


async def test_consent_post_without_csrf_token_refused(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    page = await client.get(Authorization(public_client["client_id"]).url())
    pending = page.text.split('name="pending" value="')[1].split('"')[0]
    response = await client.post("/consent", data={"pending": pending, "action": "approve"})
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_approval_redirects_with_code_state_and_iss(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    response = await consent(client, await client.get(auth.url()))
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    params = redirect_params(response)
    assert params["state"] == auth.state
    assert params["iss"] == ISSUER
    assert params["code"].startswith("gh_ac_")


async def test_consent_is_remembered_for_same_client_redirect_and_scopes(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    await authorize_code(client, Authorization(public_client["client_id"]))
    again = Authorization(public_client["client_id"])
    response = await client.get(again.url())
    params = redirect_params(response)
    assert params["state"] == again.state
    assert params["iss"] == ISSUER
    assert (await exchange(client, again, params["code"])).status_code == 200


async def test_new_scope_asks_again(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    await authorize_code(client, Authorization(public_client["client_id"], scope="mcp"))
    response = await client.get(Authorization(public_client["client_id"]).url())
    assert response.status_code == 200
    assert 'name="pending"' in response.text


async def test_other_redirect_uri_asks_again(client: httpx.AsyncClient, user: str) -> None:
    registration = await register(
        client, redirect_uris=["http://127.0.0.1/callback", "http://127.0.0.1/other"]
    )
    first = Authorization(registration["client_id"], redirect_uri="http://127.0.0.1:4000/callback")
    await authorize_code(client, first)
    second = Authorization(registration["client_id"], redirect_uri="http://127.0.0.1:4000/other")
    response = await client.get(second.url())
    assert response.status_code == 200
    assert 'name="pending"' in response.text


async def test_consent_covers_a_new_loopback_port(client: httpx.AsyncClient, user: str) -> None:
    # RFC 8252 §7.3: native apps take a fresh ephemeral port each time; the person approved the
    # app on their device, so a new port is not a new approval.
    registration = await register(client, redirect_uris=["http://127.0.0.1/callback"])
    first = Authorization(registration["client_id"], redirect_uri="http://127.0.0.1:4000/callback")
    await authorize_code(client, first)
    second = Authorization(registration["client_id"], redirect_uri="http://127.0.0.1:4001/callback")
    params = redirect_params(await client.get(second.url()))
    assert params["state"] == second.state
    assert (await exchange(client, second, params["code"])).status_code == 200


async def test_consent_of_one_user_does_not_cover_another(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    await authorize_code(client, Authorization(public_client["client_id"]))
    client.cookies.clear()
    await sign_up(client)
    response = await client.get(Authorization(public_client["client_id"]).url())
    assert response.status_code == 200
    assert 'name="pending"' in response.text


async def test_unticked_write_scope_grants_only_mcp(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], scope="mcp mcp:write")
    code = await authorize_code(client, auth, scopes=[])
    token = (await exchange(client, auth, code)).json()
    assert token["scope"] == "mcp"
    assert (await verify_jwt(client, token["access_token"])).claims["scope"] == "mcp"


async def test_omitted_scope_defaults_to_mcp(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], scope=None)
    page = await client.get(auth.url())
    assert 'name="scope"' not in page.text
    code = redirect_params(await consent(client, page, scopes=[]))["code"]
    assert (await exchange(client, auth, code)).json()["scope"] == "mcp"
