"""The tool author's API (app/mcp/call.py) seen from the official SDK client, on both protocol
generations: progress and log notifications arrive, elicitation is accepted, declined and
cancelled (the bulk notes_delete), sampling reaches the client's model, required capabilities
answer -32021, and a 2026-07-28 input_required round trip refuses a tampered, replayed or
foreign requestState. Raw JSON-RPC where the SDK client would hide the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CreateMessageResult, ElicitResult, TextContent

from app.mcp.session_cap import MAX_SESSIONS_PER_CLIENT as PER_APP
from app.mcp.session_cap import MAX_SESSIONS_PER_USER as CAP
from tests.helpers import sign_in
from tests.mcp.conftest import ConformanceServer
from tests.mcp.support import MODERN, mcp_request, obtain_grant, structured

MODES = ["auto", "legacy"]  # auto speaks 2026-07-28; legacy does the initialize handshake


@asynccontextmanager
async def sdk(target: ConformanceServer, mode: str, **options: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {target.grant.access_token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        transport = streamable_http_client(target.mcp_url, http_client=http)
        async with Client(transport, mode=mode, **options) as client:  # type: ignore[arg-type]
            yield client


def answering(action: str, content: dict[str, Any] | None = None) -> Callable[..., Any]:
    async def elicit(_context: Any, _params: Any) -> ElicitResult:
        return ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    return elicit


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    return dict(result.structured_content)


def _text(result: Any) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


@pytest.mark.parametrize("mode", MODES)
async def test_progress_reaches_the_client(
    conformance_server: ConformanceServer, mode: str
) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, _message: str | None) -> None:
        seen.append((progress, total))

    async with sdk(conformance_server, mode) as client:
        result = await client.call_tool(
            "test_tool_with_progress", {}, progress_callback=on_progress
        )
    assert not result.is_error
    assert seen == [(0, 100), (50, 100), (100, 100)]


@pytest.mark.parametrize("mode", MODES)
async def test_log_messages_reach_the_client(
    conformance_server: ConformanceServer, mode: str
) -> None:
    logs: list[Any] = []

    async def on_log(params: Any) -> None:
        logs.append(params.data)

    async def on_progress(_progress: float, _total: float | None, _message: str | None) -> None:
        pass

    # 2026-07-28 asks for log messages per request (_meta logLevel, from log_level). The
    # handshake generation's logging/setLevel has no session to live in when Gatehouse serves
    # statelessly: messages ride the response when it streams (here: a progress token).
    options = {"log_level": "info"} if mode == "auto" else {}
    async with sdk(conformance_server, mode, logging_callback=on_log, **options) as client:
        result = await client.call_tool("test_tool_with_logging", {}, progress_callback=on_progress)
    assert _text(result) == "Tool with logging executed successfully"
    assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]


async def _two_notes(client: Client, label: str) -> list[str]:
    ids = []
    for n in (1, 2):
        created = await client.call_tool("notes_create", {"title": f"{label} {n}"})
        ids.append(_structured(created)["id"])
    return ids


async def _remaining(client: Client, ids: list[str]) -> list[str]:
    listed = _structured(await client.call_tool("notes_list", {"limit": 100}))
    return sorted(note["id"] for note in listed["notes"] if note["id"] in ids)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("action", "content", "deletes"),
    [
        ("accept", {"confirm": True}, True),
        ("accept", {"confirm": False}, False),
        ("decline", None, False),
        ("cancel", None, False),
    ],
    ids=["accepted-yes", "accepted-no", "declined", "cancelled"],
)
async def test_bulk_delete_asks_the_user_first(
    conformance_server: ConformanceServer,
    mode: str,
    action: str,
    content: dict[str, Any] | None,
    deletes: bool,
) -> None:
    asked: list[str] = []

    async def elicit(_context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    async with sdk(conformance_server, mode, elicitation_callback=elicit) as client:
        ids = await _two_notes(client, f"{mode} {action}")
        result = await client.call_tool("notes_delete", {"ids": ids})
        assert asked == ["Delete 2 notes? This cannot be undone."]
        assert _structured(result) == {"ids": ids if deletes else [], "deleted": deletes}
        assert await _remaining(client, ids) == ([] if deletes else sorted(ids))


@pytest.mark.parametrize("mode", MODES)
async def test_one_note_is_deleted_without_asking(
    conformance_server: ConformanceServer, mode: str
) -> None:
    async with sdk(conformance_server, mode) as client:  # no elicitation capability at all
        note = (await _two_notes(client, f"{mode} single"))[0]
        result = await client.call_tool("notes_delete", {"id": note})
        assert _structured(result) == {"ids": [note], "deleted": True}


@pytest.mark.parametrize("mode", MODES)
async def test_asking_a_client_without_elicitation_is_32021(
    conformance_server: ConformanceServer, mode: str
) -> None:
    async with sdk(conformance_server, mode) as client:
        ids = await _two_notes(client, f"{mode} no-elicitation")
        with pytest.raises(MCPError) as raised:
            await client.call_tool("notes_delete", {"ids": ids})
        assert raised.value.error.code == -32021
        assert raised.value.error.data == {"requiredCapabilities": {"elicitation": {}}}
        assert await _remaining(client, ids) == sorted(ids)


@pytest.mark.parametrize("mode", MODES)
async def test_sampling_reaches_the_clients_model(
    conformance_server: ConformanceServer, mode: str
) -> None:
    prompts: list[str] = []

    async def sample(_context: Any, params: Any) -> CreateMessageResult:
        prompts.append(params.messages[0].content.text)
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="Paris"), model="test"
        )

    async with sdk(conformance_server, mode, sampling_callback=sample) as client:
        result = await client.call_tool("test_sampling", {"prompt": "capital of France?"})
    assert _text(result) == "LLM response: Paris"
    assert prompts == ["capital of France?"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_requiring_sampling_is_32021_before_it_runs(
    conformance_server: ConformanceServer, mode: str
) -> None:
    async with sdk(conformance_server, mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("test_missing_capability", {})
    assert raised.value.error.code == -32021
    assert raised.value.error.data == {"requiredCapabilities": {"sampling": {}}}


# -- the 2026-07-28 wire, raw --------------------------------------------------------------------


def reply(response: httpx.Response) -> dict[str, Any]:
    """A JSON-RPC reply; 2026-07-28 answers an error with HTTP 400 (SEP-2575)."""
    message = dict(response.json())
    assert response.status_code == (400 if "error" in message else 200), response.text
    return message


async def _post(
    target: ConformanceServer, token: str, params: dict[str, Any], *, elicitation: bool = True
) -> dict[str, Any]:
    body, headers = mcp_request("tools/call", params, token=token, version=MODERN)
    if elicitation:
        body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = {"elicitation": {}}
    async with httpx.AsyncClient(timeout=30) as web:
        return reply(await web.post(target.mcp_url, json=body, headers=headers))


def _flip(state: str) -> str:
    i = len(state) // 2
    return state[:i] + ("A" if state[i] != "A" else "B") + state[i + 1 :]


async def test_input_required_round_trip_and_refused_states(
    conformance_server: ConformanceServer,
) -> None:
    alice = conformance_server.grant.access_token
    ids = []
    for n in (1, 2, 3):
        made = await _post(
            conformance_server, alice, {"name": "notes_create", "arguments": {"title": f"raw {n}"}}
        )
        ids.append(structured(made["result"])["id"])
    call = {"name": "notes_delete", "arguments": {"ids": ids[:2]}}

    first = (await _post(conformance_server, alice, call))["result"]
    assert first["resultType"] == "input_required"
    assert list(first["inputRequests"]) == ["confirm"]
    question = first["inputRequests"]["confirm"]
    assert question["method"] == "elicitation/create"
    assert question["params"]["requestedSchema"]["properties"]["confirm"]["type"] == "boolean"
    state = first["requestState"]
    yes = {"confirm": {"action": "accept", "content": {"confirm": True}}}

    refused = [
        # tampered: one character of the sealed state changed
        (alice, {**call, "inputResponses": yes, "requestState": _flip(state)}),
        # replayed against other arguments (a third note)
        (alice, {**call, "arguments": {"ids": ids}, "inputResponses": yes, "requestState": state}),
        # replayed against another tool
        (
            alice,
            {
                "name": "test_input_required_result_request_state",
                "arguments": {"ids": ids[:2]},
                "inputResponses": yes,
                "requestState": state,
            },
        ),
        # replayed by another user
        (
            conformance_server.other.access_token,
            {**call, "inputResponses": yes, "requestState": state},
        ),
    ]
    for token, params in refused:
        answer = await _post(conformance_server, token, params)
        assert answer["error"]["code"] == -32602, answer
        assert answer["error"]["message"] == "Invalid or expired requestState"

    listed = await _post(conformance_server, alice, {"name": "notes_list", "arguments": {}})
    assert {n["id"] for n in structured(listed["result"])["notes"]} >= set(ids)

    done = await _post(
        conformance_server, alice, {**call, "inputResponses": yes, "requestState": state}
    )
    assert structured(done["result"]) == {"ids": ids[:2], "deleted": True}


async def test_unknown_names_are_32602_naming_them(conformance_server: ConformanceServer) -> None:
    alice = conformance_server.grant.access_token
    async with httpx.AsyncClient(timeout=30) as web:
        cases = [
            ("tools/call", {"name": "nope", "arguments": {}}, "Unknown tool: nope"),
            ("prompts/get", {"name": "nope"}, "Unknown prompt: nope"),
            (
                "prompts/get",
                {"name": "test_prompt_with_arguments", "arguments": {"arg1": "x"}},
                "Missing required arguments for prompt test_prompt_with_arguments: arg2",
            ),
            (
                "completion/complete",
                {
                    "ref": {"type": "ref/prompt", "name": "nope"},
                    "argument": {"name": "a", "value": ""},
                },
                "Unknown prompt: nope",
            ),
        ]
        for method, params, message in cases:
            body, headers = mcp_request(method, params, token=alice)
            answer = reply(await web.post(conformance_server.mcp_url, json=body, headers=headers))
            assert answer["error"]["code"] == -32602, answer
            assert answer["error"]["message"] == message


async def test_completions_for_prompt_and_template_arguments(
    conformance_server: ConformanceServer,
) -> None:
    async with sdk(conformance_server, "auto") as client:
        from mcp_types import PromptReference, ResourceTemplateReference

        prompt = await client.complete(
            PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
            {"name": "arg1", "value": "par"},
        )
        template = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="test://template/{id}/data"),
            {"name": "id", "value": "1"},
        )
    assert prompt.completion.values == ["paris", "park", "party"]
    assert template.completion.values == ["1", "123"]


# -- handshake-generation sessions ------------------------------------------------------------


async def test_a_session_belongs_to_the_user_and_client_that_opened_it(
    conformance_server: ConformanceServer,
) -> None:
    version = "2025-11-25"
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version,
    }
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {"elicitation": {}},
            "clientInfo": {"name": "tests", "version": "1"},
        },
    }
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    alice = {**headers, "Authorization": f"Bearer {conformance_server.grant.access_token}"}
    bob = {**headers, "Authorization": f"Bearer {conformance_server.other.access_token}"}
    async with httpx.AsyncClient(timeout=30) as web:
        opened = await web.post(conformance_server.mcp_url, json=initialize, headers=alice)
        assert opened.status_code == 200
        session = opened.headers["mcp-session-id"]
        url = conformance_server.mcp_url
        own = await web.post(url, json=listing, headers={**alice, "Mcp-Session-Id": session})
        assert own.status_code == 200
        foreign = await web.post(url, json=listing, headers={**bob, "Mcp-Session-Id": session})
        assert foreign.status_code == 404  # as if it did not exist
        ended = await web.delete(url, headers={**alice, "Mcp-Session-Id": session})
        assert ended.status_code == 200
        after = await web.post(url, json=listing, headers={**alice, "Mcp-Session-Id": session})
        assert after.status_code == 404
        # A client that cannot answer the server's requests stays stateless.
        plain = {**initialize, "params": {**initialize["params"], "capabilities": {}}}
        stateless = await web.post(url, json=plain, headers=alice)
        assert stateless.status_code == 200
        assert "mcp-session-id" not in stateless.headers


SESSION_OPENING = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"sampling": {}},
        "clientInfo": {"name": "tests", "version": "1"},
    },
}


def _as(token: str) -> dict[str, str]:
    return {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2025-11-25",
        "Authorization": f"Bearer {token}",
    }


async def _alices_other_apps(target: ConformanceServer, count: int) -> list[dict[str, str]]:
    """Headers for `count` more clients alice approves (each its own registration)."""
    async with httpx.AsyncClient(base_url=target.server.url, timeout=30) as browser:
        assert (await sign_in(browser, target.grant.email)).status_code == 303
        grants = [await obtain_grant(browser, email=target.grant.email) for _ in range(count)]
    return [_as(grant.access_token) for grant in grants]


@asynccontextmanager
async def _sessions(target: ConformanceServer) -> AsyncIterator[Any]:
    """Open sessions all at once; every one opened is ended on the way out (the server is
    shared by the module's tests)."""
    opened: list[tuple[dict[str, str], str]] = []
    async with httpx.AsyncClient(timeout=60) as web:

        async def open_all(callers: list[dict[str, str]]) -> list[httpx.Response]:
            answers = await asyncio.gather(
                *(web.post(target.mcp_url, json=SESSION_OPENING, headers=h) for h in callers)
            )
            opened.extend(
                (h, a.headers["mcp-session-id"])
                for h, a in zip(callers, answers, strict=True)
                if a.is_success
            )
            return list(answers)

        try:
            yield open_all, opened, web
        finally:
            for headers, session in opened:
                await web.delete(target.mcp_url, headers={**headers, "Mcp-Session-Id": session})


def _refusal(answer: httpx.Response) -> str:
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "60"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["vary"] == "Authorization"
    error = answer.json()
    assert error["id"] is None
    assert error["error"]["code"] == -32600
    message: str = error["error"]["message"]
    assert message.endswith(
        "open MCP sessions on this server; end one (DELETE /mcp with its Mcp-Session-Id) or "
        "wait for an unused one to close after 10 minutes idle"
    )
    return message


async def test_one_person_cannot_hold_more_than_their_share_of_sessions(
    conformance_server: ConformanceServer,
) -> None:
    alice = _as(conformance_server.grant.access_token)
    apps = [alice, *await _alices_other_apps(conformance_server, 2)]
    assert CAP + 5 < 3 * PER_APP  # no app reaches its own bound: the person's is the one tested
    async with _sessions(conformance_server) as (open_all, opened, web):
        # All at once through three of her apps: the count is the person's, taken where the
        # SDK admits a session, so exactly the cap gets in however the requests interleave.
        answers = await open_all([apps[i % 3] for i in range(CAP + 5)])
        assert sorted(a.status_code for a in answers) == [200] * CAP + [429] * 5
        refused = next(a for a in answers if a.status_code == 429)
        assert _refusal(refused).startswith(f"this account already has {CAP} open")
        # Someone else is not held back by alice's sessions.
        (theirs,) = await open_all([_as(conformance_server.other.access_token)])
        assert theirs.status_code == 200
        # Alice's stateless calls go on; ending a session frees its place.
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
        assert (await web.post(conformance_server.mcp_url, json=listing, headers=alice)).is_success
        owner, first = opened.pop(0)
        ended = await web.delete(
            conformance_server.mcp_url, headers={**owner, "Mcp-Session-Id": first}
        )
        assert ended.status_code == 200
        assert sorted(a.status_code for a in await open_all([owner, owner])) == [200, 429]


async def test_one_app_cannot_hold_all_of_a_persons_sessions(
    conformance_server: ConformanceServer,
) -> None:
    alice = _as(conformance_server.grant.access_token)
    (elsewhere,) = await _alices_other_apps(conformance_server, 1)
    async with _sessions(conformance_server) as (open_all, _opened, _web):
        answers = await open_all([alice] * (PER_APP + 3))
        assert sorted(a.status_code for a in answers) == [200] * PER_APP + [429] * 3
        refused = next(a for a in answers if a.status_code == 429)
        assert _refusal(refused).startswith(
            f"this app, for this account, already has {PER_APP} open"
        )
        # Her other app still gets its own places.
        assert [a.status_code for a in await open_all([elsewhere])] == [200]


# -- a slow tool on a stream -------------------------------------------------------------------


async def _titles(target: ConformanceServer) -> list[str]:
    listed = await _post(
        target, target.grant.access_token, {"name": "notes_list", "arguments": {"limit": 100}}
    )
    return [note["title"] for note in structured(listed["result"])["notes"]]


async def test_a_streaming_tool_is_cancelled_when_the_client_goes_away(
    conformance_server: ConformanceServer,
) -> None:
    token = conformance_server.grant.access_token
    # Finished: the note is written (the check below can fail).
    done = await _post(
        conformance_server,
        token,
        {"name": "slow_note", "arguments": {"title": "kept", "seconds": 0.5}},
    )
    assert done["result"]["content"][0]["text"] == "written"
    assert "kept" in await _titles(conformance_server)

    body, headers = mcp_request(
        "tools/call",
        {"name": "slow_note", "arguments": {"title": "abandoned", "seconds": 2.0}},
        token=token,
    )
    async with httpx.AsyncClient(timeout=30) as web:
        with pytest.raises(httpx.ReadTimeout):
            # The client gives up after half a second and closes the connection.
            await web.post(conformance_server.mcp_url, json=body, headers=headers, timeout=0.5)
    await asyncio.sleep(3.0)  # past the moment the tool would have written
    assert "abandoned" not in await _titles(conformance_server)
