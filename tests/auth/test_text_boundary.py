"""One input boundary: NUL and control characters at the account forms are a 400 saying what to
fix, before anything is counted or queried; nothing is changed and nothing is logged as an error.
(PostgreSQL refuses a NUL in text: unchecked, each of these was a 500 with a trace in the log.)
"""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.auth.models import User
from app.kit.text import BadText, check_fields, check_text, text_problem
from tests.helpers import PASSWORD, db_scalar, form_post, sign_up, unique_email, user_by_email

BAD = {
    "nul": ("\x00", "holds a NUL character"),
    "c0": ("\x1b[31m", "holds control characters"),
    "c1": ("\x85", "holds control characters"),
    "newline": ("\n", "holds control characters"),
}
ERROR_TAG = '<p class="error" role="alert">'


def inject(value: str, bad: str) -> str:
    return value[:3] + bad + value[3:]


def assert_form_error(response: httpx.Response, label: str, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert f"{ERROR_TAG}The {label} {reason}. Remove them and try again.</p>" in response.text


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("field", ["email", "password", "name"])
async def test_sign_up_refuses_control_characters_and_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, field: str, kind: str
) -> None:
    bad, reason = BAD[kind]
    data = {"email": unique_email("text"), "password": PASSWORD, "name": "Ada Lovelace"}
    data[field] = inject(data[field], bad)
    users = select(func.count()).select_from(User)
    before = await db_scalar(app, users)
    response = await form_post(client, "/sign-up", "/sign-up", data)
    assert_form_error(response, {"email": "email address"}.get(field, field), reason)
    assert "gh_session" not in client.cookies
    assert await db_scalar(app, users) == before
    no_errors_logged(caplog)


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("field", ["email", "password"])
async def test_sign_in_refuses_control_characters_before_counting_or_querying(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, field: str, kind: str
) -> None:
    bad, reason = BAD[kind]
    data = {"email": unique_email("text"), "password": PASSWORD}
    data[field] = inject(data[field], bad)
    response = await form_post(client, "/sign-in", "/sign-in", data)
    assert_form_error(response, {"email": "email address"}.get(field, field), reason)
    assert "gh_session" not in client.cookies
    no_errors_logged(caplog)


@pytest.mark.parametrize("kind", BAD)
async def test_profile_refuses_a_name_with_control_characters_and_keeps_the_old_one(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    bad, reason = BAD[kind]
    email = await sign_up(client, name="Grace Hopper")
    response = await form_post(
        client, "/account", "/account/profile", {"name": inject("Grace Hopper", bad)}
    )
    assert_form_error(response, "name", reason)
    assert (await user_by_email(app, email)).name == "Grace Hopper"
    no_errors_logged(caplog)


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("field", ["current_password", "new_password"])
async def test_password_change_refuses_control_characters_and_keeps_the_old_password(
    app: FastAPI,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    field: str,
    kind: str,
) -> None:
    bad, reason = BAD[kind]
    email = await sign_up(client)
    before = (await user_by_email(app, email)).password_hash
    data = {"current_password": PASSWORD, "new_password": "a brand new password"}
    data[field] = inject(data[field], bad)
    response = await form_post(client, "/account", "/account/password", data)
    assert_form_error(response, field.replace("_", " "), reason)
    assert (await user_by_email(app, email)).password_hash == before
    no_errors_logged(caplog)


# -- the kit check, for the endpoints that call it -------------------------------------------------


def test_check_fields_names_the_first_bad_field_and_skips_missing_ones() -> None:
    check_fields(client_id="abc", scope=None, state="x y")
    with pytest.raises(BadText) as caught:
        check_fields(client_id="ok", redirect_uri="https://a.example/\x00")
    assert caught.value.field == "redirect_uri"
    assert caught.value.reason == "holds a NUL character"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("fine: ünïcødé ✓", None),
        ("a\ud800b", "holds characters that are not valid UTF-8"),
        ("a\x7fb", "holds control characters"),
        ("a\x9fb", "holds control characters"),
        ("tab\there", "holds control characters"),
    ],
)
def test_text_problem_single_line(value: str, problem: str | None) -> None:
    assert text_problem(value) == problem


def test_multiline_text_may_hold_tab_and_line_breaks_but_not_nul() -> None:
    check_text("notes", "line one\r\n\tline two", multiline=True)
    with pytest.raises(BadText):
        check_text("notes", "line\x00", multiline=True)
    with pytest.raises(BadText):
        check_text("notes", "bell\x07", multiline=True)
