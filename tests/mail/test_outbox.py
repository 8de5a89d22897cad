"""The outbox and its SMTP transport against a real SMTP server: credentials, retries with
backoff, permanent failures, an unreachable server, a full queue; and the settings around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.config import ConfigError, Settings, load_settings
from app.mail.message import Message, compose
from app.mail.outbox import Outbox
from app.mail.transport import LogTransport, SmtpTransport, smtp_target
from tests.conftest import TEST_SECRET_KEY, TEST_VAULT_KEYS, free_port
from tests.mail.smtp_server import PASSWORD, USERNAME, Mailbox, run_smtp_server

TOKEN = "tok-Zx9QmW3vR7pL2sN8yK4fH6jD1cB5aE0gU"  # stands in for a link token


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box, stop = run_smtp_server()
    yield box
    stop()


def settings_for(smtp_url: str, **values: Any) -> Settings:
    return Settings(
        smtp_url=smtp_url,
        public_url="https://gatehouse.example",
        secret_key=TEST_SECRET_KEY,
        vault_keys=TEST_VAULT_KEYS,
        **values,
    )


def message(to: str = "ada@example.org") -> Message:
    link = f"https://gatehouse.example/reset-password?token={TOKEN}"
    return Message(to=to, subject="Hello", text=f"Go to {link}\n", html=f"<a>{link}</a>", kind="t")


async def deliver(settings: Settings, *messages: Message, **outbox: Any) -> Outbox:
    box = Outbox(SmtpTransport(settings, timeout=5), backoff=0.01, **outbox)
    await box.start()
    for m in messages:
        assert box.send(m)
    await asyncio.wait_for(box.idle(), 30)
    await box.stop()
    return box


async def test_a_message_arrives_with_text_and_html_and_the_url_credentials(
    mailbox: Mailbox,
) -> None:
    url = f"smtp://{USERNAME}:{quote(PASSWORD, safe='')}@127.0.0.1:{mailbox.port}"
    box = await deliver(settings_for(url), message())
    assert box.counts["sent"] == 1
    [got] = mailbox.to("ada@example.org")
    assert got.login == USERNAME
    assert got.sender == "no-reply@gatehouse.example"
    assert str(got.message["From"]) == "Gatehouse <no-reply@gatehouse.example>"
    assert got.text == message().text
    assert TOKEN in got.html
    assert got.message["Message-ID"].endswith("@gatehouse.example>")


async def test_smtp_username_and_password_win_over_the_url(mailbox: Mailbox) -> None:
    settings = settings_for(
        f"smtp://someone:else@127.0.0.1:{mailbox.port}",
        smtp_username=USERNAME,
        smtp_password=PASSWORD,
        mail_from="Ops <ops@example.net>",
    )
    await deliver(settings, message())
    [got] = mailbox.received
    assert got.login == USERNAME
    assert got.sender == "ops@example.net"


async def test_a_temporary_refusal_is_retried_and_the_message_arrives_once(
    mailbox: Mailbox,
) -> None:
    mailbox.refusals = ["451 4.3.0 try again later", "421 4.3.2 busy"]
    box = await deliver(settings_for(mailbox.url), message(), attempts=4)
    assert mailbox.attempts == 3
    assert len(mailbox.received) == 1
    assert box.counts == {"accepted": 1, "sent": 1}


async def test_a_permanent_refusal_is_not_retried_and_is_logged_without_the_link(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox.refusals = ["550 5.1.1 no such user"]
    with caplog.at_level(logging.WARNING, logger="gatehouse.mail"):
        box = await deliver(settings_for(mailbox.url), message(), attempts=4)
    assert mailbox.attempts == 1
    assert box.counts["failed"] == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "gatehouse.mail"]
    assert line == "mail t to @example.org failed after 1 attempt(s): SMTPDataError 550"
    assert TOKEN not in caplog.text


async def test_an_unreachable_server_fails_after_every_attempt_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"smtp://{USERNAME}:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="gatehouse.mail"):
        box = await deliver(settings_for(url), message(), attempts=3)
    assert box.counts["failed"] == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "gatehouse.mail"]
    assert line.startswith("mail t to @example.org failed after 3 attempt(s): ")
    assert TOKEN not in caplog.text
    assert PASSWORD not in caplog.text


async def test_a_full_queue_drops_the_message_without_waiting() -> None:
    box = Outbox(LogTransport(Settings(secret_key=TEST_SECRET_KEY)), maxsize=1)
    assert box.send(message()) is True
    assert box.send(message()) is False  # not started: nothing drains it, and send never waits
    assert box.counts == {"accepted": 1, "dropped": 1}


def test_credentials_go_to_a_remote_server_only_over_tls() -> None:
    remote = smtp_target(settings_for("smtp://u:p@mail.example.com"))
    assert (remote.port, remote.use_tls, remote.start_tls) == (587, False, True)
    anonymous = smtp_target(settings_for("smtp://mail.example.com:25"))
    assert (anonymous.port, anonymous.start_tls) == (25, None)  # STARTTLS when offered
    implicit = smtp_target(settings_for("smtps://u:p%40ss@mail.example.com"))
    assert (implicit.port, implicit.use_tls, implicit.start_tls) == (465, True, False)
    assert implicit.password == "p@ss"
    assert "p@ss" not in repr(implicit)
    local = smtp_target(settings_for("smtp://u:p@127.0.0.1:2525"))
    assert local.start_tls is None


def test_html_parts_are_escaped_and_text_parts_are_not() -> None:
    built = compose(
        Settings(secret_key=TEST_SECRET_KEY, public_url="https://g.example"),
        "verify_email",
        to="a@example.org",
        subject="s",
        name="<b>Ada</b>",
        email="a@example.org",
        link="https://g.example/verify-email?token=x&y=1",
        hours=24,
    )
    assert "Hello <b>Ada</b>," in built.text
    assert "&lt;b&gt;Ada&lt;/b&gt;" in built.html
    assert "token=x&amp;y=1" in built.html
    assert "https://g.example" in built.text
    assert "Gatehouse" in built.html


def test_production_refuses_to_start_without_smtp_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    production = {
        "gatehouse_env": "production",
        "public_url": "https://gatehouse.example",
        "secret_key": TEST_SECRET_KEY,
        "vault_keys": TEST_VAULT_KEYS,
        "database_url": "postgresql://g@db.example/g",
        "var_dir": tmp_path,
    }
    with pytest.raises(ConfigError, match="SMTP_URL is required in production"):
        load_settings(**production)
    # The resource server sends no mail.
    load_settings(**production, gatehouse_role="mcp", auth_issuer_url="https://gatehouse.example")
    assert load_settings(**production, smtp_url="smtp://mail.example").smtp_url is not None
    for bad in ("http://user:hunter2@mail.example", "smtp://user:hunter2@mail.example:x"):
        with pytest.raises(ConfigError, match="SMTP_URL") as caught:
            load_settings(smtp_url=bad, var_dir=tmp_path)
        assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match="SMTP_URL is required in production"):
        LogTransport(Settings(gatehouse_env="production"))


async def test_a_message_tied_to_a_transaction_leaves_only_when_it_commits() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    box = Outbox(LogTransport(Settings(secret_key=TEST_SECRET_KEY)))
    try:
        async with AsyncSession(engine) as session:
            await session.execute(text("SELECT 1"))
            box.send_after_commit(session, message())
            assert box.counts["accepted"] == 0
            await session.rollback()
            await session.execute(text("SELECT 1"))
            await session.commit()
            assert box.counts["accepted"] == 0  # rolled back: its link never existed
            box.send_after_commit(session, message())
            box.send_after_commit(session, message("bob@example.org"))
            await session.commit()
            assert box.counts["accepted"] == 2
            await session.commit()
            assert box.counts["accepted"] == 2  # once
    finally:
        await engine.dispose()
