"""Provider sign-in spans reach a real OTLP receiver: each step with its provider and outcome,
and no upstream code, state, token or ID token in any exported attribute."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx

from tests.conftest import Backend, start_server
from tests.identity import stub_idp
from tests.identity.stub_idp import StubIdp
from tests.identity.support import begin, callback, new_code
from tests.telemetry.otlp_receiver import start_receiver


async def test_identity_spans_carry_provider_and_outcome_and_no_upstream_secret(
    backend: Backend, stub: StubIdp, tmp_path: Path
) -> None:
    receiver, otlp = start_receiver()
    server = start_server(
        backend,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OIDC_PROVIDERS="stub",
        OIDC_STUB_ISSUER=stub.url,
        OIDC_STUB_CLIENT_ID=stub_idp.CLIENT_ID,
        OIDC_STUB_CLIENT_SECRET=stub_idp.CLIENT_SECRET,
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as web:
            started = await begin(web)
            sub, code = "sub-" + uuid.uuid4().hex[:12], new_code()
            stub.issue(code, stub.claims(nonce=started.nonce, sub=sub, email=f"{sub}@t.example"))
            assert (await callback(web, started, code)).status_code == 303
            web.cookies.clear()  # signed out again, to be refused
            refused = await begin(web)
            bad = new_code()
            stub.issue(bad, stub.claims(nonce="wrong", sub=sub, email=f"{sub}@t.example"))
            assert (await callback(web, refused, bad)).status_code == 400
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(receiver.named("identity.callback")) < 2:
            await asyncio.sleep(0.2)
    finally:
        server.stop()
        otlp.shutdown()
        otlp.server_close()
    starts = receiver.named("identity.start")
    assert {
        (s.attributes["gatehouse.provider"], s.attributes["gatehouse.outcome"]) for s in starts
    } == {("stub", "redirected")}
    outcomes = {
        (s.attributes.get("gatehouse.outcome"), s.attributes.get("gatehouse.reason"))
        for s in receiver.named("identity.callback")
    }
    assert outcomes == {("success", None), ("failure", "id_token_wrong_nonce")}
    exported = json.dumps([s.attributes for s in receiver.all_spans()])
    for secret in (code, bad, started.state, refused.state, started.nonce, "stub-access-", "eyJ"):
        assert secret not in exported
