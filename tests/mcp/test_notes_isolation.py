"""The built-in tools: one user never sees or touches another's notes, whatever ids they pass;
tools describe themselves (annotations, schemas); whoami and the prompt speak for the caller."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import client_for
from tests.helpers import user_by_email
from tests.mcp.support import (
    MODERN,
    Grant,
    call_tool,
    error_text,
    obtain_grant,
    post_mcp,
    reply,
    result,
    structured,
)

# The SDK prefixes a tool's ToolError message; the same words for "not yours" and "no such id".
NOT_FOUND = "Error executing tool notes_delete: no note with that id"


@dataclass
class Person:
    web: httpx.AsyncClient
    grant: Grant

    @property
    def token(self) -> str:
        return self.grant.access_token


@pytest.fixture
async def alice(app: FastAPI) -> AsyncIterator[Person]:
    async with client_for(app) as web:
        yield Person(web, await obtain_grant(web))


@pytest.fixture
async def bob(app: FastAPI) -> AsyncIterator[Person]:
    async with client_for(app) as web:
        yield Person(web, await obtain_grant(web))


@pytest.fixture
async def alices_note(alice: Person) -> dict[str, Any]:
    title = f"alice private {uuid.uuid4().hex[:8]}"
    body = "the launch code is 0000"
    return structured(
        await call_tool(alice.web, alice.token, "notes_create", {"title": title, "body": body})
    )


def id_forms(note_id: str) -> list[str]:
    """The same id spelled every way uuid.UUID accepts it."""
    value = uuid.UUID(note_id)
    return [str(value), str(value).upper(), f"{{{value}}}", f"urn:uuid:{value}", value.hex]


async def titles_of(person: Person) -> list[str]:
    listed = structured(await call_tool(person.web, person.token, "notes_list", {"limit": 100}))
    return [note["title"] for note in listed["notes"]]


async def read_note(person: Person, note_id: str) -> dict[str, Any]:
    uri = f"notes://{note_id}"
    response = await post_mcp(person.web, "resources/read", {"uri": uri}, token=person.token)
    if response.status_code == 200:
        return reply(response)
    # 2026-07-28 maps a JSON-RPC error to its HTTP status: -32602 is 400.
    assert response.status_code == 400, response.text
    return dict(response.json())


# -- isolation -------------------------------------------------------------------------------------


async def test_notes_list_shows_only_the_callers_notes(
    alice: Person, bob: Person, alices_note: dict[str, Any]
) -> None:
    bobs = structured(await call_tool(bob.web, bob.token, "notes_create", {"title": "bob's"}))
    assert await titles_of(alice) == [alices_note["title"]]
    assert await titles_of(bob) == [bobs["title"]]


async def test_notes_search_never_finds_another_users_note(
    alice: Person, bob: Person, alices_note: dict[str, Any]
) -> None:
    for query in (alices_note["title"], "launch code", "%", "_"):
        found = structured(await call_tool(bob.web, bob.token, "notes_search", {"query": query}))
        assert found == {"notes": [], "count": 0}, query
    mine = structured(await call_tool(alice.web, alice.token, "notes_search", {"query": "LAUNCH"}))
    assert [n["id"] for n in mine["notes"]] == [alices_note["id"]]


async def test_note_resource_of_another_user_is_not_found(
    alice: Person, bob: Person, alices_note: dict[str, Any]
) -> None:
    for form in id_forms(alices_note["id"]):
        answer = await read_note(bob, form)
        assert "result" not in answer, (form, answer)
        # SEP-2164: a resource that does not exist is -32602; "not yours" looks the same.
        assert answer["error"]["code"] == -32602, (form, answer)
        assert answer["error"]["message"] == "no note with that id"


async def test_note_resource_answers_the_same_for_unknown_and_malformed_ids(bob: Person) -> None:
    for form in (str(uuid.uuid4()), "not-an-id"):
        answer = await read_note(bob, form)
        assert answer["error"]["code"] == -32602, (form, answer)
        assert answer["error"]["message"] == "no note with that id"


async def test_note_resource_reads_the_owners_note(
    alice: Person, alices_note: dict[str, Any]
) -> None:
    contents = (await read_note(alice, alices_note["id"]))["result"]["contents"]
    assert contents == [
        {
            "uri": f"notes://{alices_note['id']}",
            "mimeType": "text/markdown",
            "text": f"# {alices_note['title']}\n\nthe launch code is 0000",
        }
    ]


async def test_notes_delete_of_another_users_note_fails_and_the_note_stays(
    alice: Person, bob: Person, alices_note: dict[str, Any]
) -> None:
    for form in id_forms(alices_note["id"]):
        failed = await call_tool(bob.web, bob.token, "notes_delete", {"id": form})
        assert error_text(failed) == NOT_FOUND, form
    assert await titles_of(alice) == [alices_note["title"]]
    assert "result" in await read_note(alice, alices_note["id"])


async def test_notes_delete_answers_the_same_for_unknown_ids(bob: Person) -> None:
    failed = await call_tool(bob.web, bob.token, "notes_delete", {"id": str(uuid.uuid4())})
    assert error_text(failed) == NOT_FOUND


async def test_notes_delete_removes_the_owners_note(
    alice: Person, alices_note: dict[str, Any]
) -> None:
    deleted = structured(
        await call_tool(alice.web, alice.token, "notes_delete", {"id": alices_note["id"]})
    )
    assert deleted == {"ids": [alices_note["id"]], "deleted": True}
    assert await titles_of(alice) == []


async def test_summarize_notes_prompt_lists_only_the_callers_notes(
    alice: Person, bob: Person, alices_note: dict[str, Any]
) -> None:
    await call_tool(bob.web, bob.token, "notes_create", {"title": "bob's grocery list"})
    prompt = result(
        await post_mcp(bob.web, "prompts/get", {"name": "summarize_notes"}, token=bob.token)
    )
    texts = [m["content"]["text"] for m in prompt["messages"]]
    assert len(texts) == 1
    assert "## bob's grocery list" in texts[0]
    assert alices_note["title"] not in texts[0]
    assert "launch code" not in texts[0]


# -- what the tools say about themselves -----------------------------------------------------------


async def test_tools_list_carries_annotations_and_schemas(alice: Person) -> None:
    listed = result(await post_mcp(alice.web, "tools/list", token=alice.token))
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert set(tools) == {"whoami", "notes_create", "notes_list", "notes_search", "notes_delete"}

    hints = {
        name: (tool["annotations"]["readOnlyHint"], tool["annotations"]["destructiveHint"])
        for name, tool in tools.items()
    }
    assert hints == {
        "whoami": (True, False),
        "notes_list": (True, False),
        "notes_search": (True, False),
        "notes_create": (False, False),
        "notes_delete": (False, True),
    }
    for tool in tools.values():
        assert tool["description"], tool["name"]
        assert tool["inputSchema"]["type"] == "object", tool["name"]
        assert "ctx" not in tool["inputSchema"].get("properties", {}), tool["name"]
        assert tool["outputSchema"]["type"] == "object", tool["name"]

    create = tools["notes_create"]["inputSchema"]
    assert create["required"] == ["title"]
    assert create["properties"]["title"]["type"] == "string"
    assert create["properties"]["title"]["maxLength"] == 200
    delete = tools["notes_delete"]["inputSchema"]
    assert "required" not in delete  # id (one) or ids (several)
    assert delete["properties"]["ids"]["maxItems"] == 100
    assert tools["notes_search"]["inputSchema"]["required"] == ["query"]
    assert tools["notes_list"]["inputSchema"]["properties"]["limit"]["maximum"] == 100
    assert tools["whoami"]["inputSchema"].get("properties", {}) == {}


async def test_whoami_names_the_user_client_and_scopes(app: FastAPI, alice: Person) -> None:
    me = structured(await call_tool(alice.web, alice.token, "whoami"))
    user = await user_by_email(app, alice.grant.email)
    assert me == {
        "user_id": str(user.id),
        "email": alice.grant.email,
        "name": "",
        "client_id": alice.grant.client_id,
        "client_name": "Test Client",
        "scopes": ["mcp", "mcp:write"],
        "protocol_version": MODERN,
    }


async def test_whoami_of_a_read_only_grant_shows_only_mcp(app: FastAPI) -> None:
    async with client_for(app) as web:
        grant = await obtain_grant(web, write=False)
        me = structured(await call_tool(web, grant.access_token, "whoami"))
    assert me["scopes"] == ["mcp"]
    assert me["client_id"] == grant.client_id
