"""A 405 names every method the path serves (RFC 9110 §15.5.6: "The origin server MUST generate
an Allow header field in a 405 response containing a list of the target resource's currently
supported methods"): pages served by a GET and a POST route claimed only GET."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/sign-in", "/sign-up"])
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_a_405_at_a_form_page_allows_get_and_post(
    client: httpx.AsyncClient, path: str, accept: str
) -> None:
    response = await client.put(path, headers={"Accept": accept})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_a_405_at_a_post_only_endpoint_allows_post(client: httpx.AsyncClient) -> None:
    response = await client.get("/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
