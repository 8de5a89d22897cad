"""The one scrubber: what it removes from text and attributes."""

from __future__ import annotations

import pytest

from app.kit.scrub import REDACTED, scrub_attributes, scrub_text


@pytest.mark.parametrize(
    "text",
    [
        "GET /authorize?client_id=c&state=s3cr3t-state&code_challenge=abc HTTP/1.1",
        "http://127.0.0.1:9/callback?code=gh_ac_abcdefghijklmnop&state=xyz&iss=http://x",
        "grant_type=refresh_token&refresh_token=gh_rt_abcdefghijklmnop",
        "password=hunter2hunter2&email=a@example.com",
        "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "upstream said ghp_abcdefghijklmnopqrstuvwxyz0123456789 is bad",
        "cookie gh_s_abcdefghijklmnopqrstuvwxyz",
        "credential_github=ghp_secretsecretsecret",
    ],
)
def test_scrub_text_removes_secrets(text: str) -> None:
    cleaned = scrub_text(text)
    assert REDACTED in cleaned
    for secret in (
        "s3cr3t-state",
        "gh_ac_abcdefghijklmnop",
        "gh_rt_abcdefghijklmnop",
        "hunter2hunter2",
        "c2lnbmF0dXJl",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "gh_s_abcdefghijklmnopqrstuvwxyz",
        "ghp_secretsecretsecret",
    ):
        assert secret not in cleaned


def test_scrub_text_keeps_harmless_text() -> None:
    text = "GET /authorize?client_id=gh_c_abc&response_type=code HTTP/1.1 200"
    assert scrub_text(text) == text


def test_scrub_attributes_redacts_secret_named_keys_and_values() -> None:
    cleaned = scrub_attributes(
        {
            "http.request.header.authorization": ("Bearer x",),
            "http.request.header.cookie": "gh_session=abc",
            "oauth.client_id": "gh_c_abc",
            "http.target": "/callback?code=abc&state=def",
            "gatehouse.outcome": "issued",
            "count": 3,
        }
    )
    assert cleaned["http.request.header.authorization"] == REDACTED
    assert cleaned["http.request.header.cookie"] == REDACTED
    assert cleaned["oauth.client_id"] == "gh_c_abc"
    assert cleaned["http.target"] == f"/callback?code={REDACTED}&state={REDACTED}"
    assert cleaned["gatehouse.outcome"] == "issued"
    assert cleaned["count"] == 3
