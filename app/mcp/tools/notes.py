"""Per-user notes: the reference read/write toolset. A user only ever sees their own notes."""

from __future__ import annotations

import uuid
from datetime import datetime

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select

from app.mcp.call import CallContext, call_context
from app.mcp.models import Note
from app.mcp.server import GatehouseMCP, ToolSet
from app.oauth.scopes import WRITE_SCOPE

MAX_TITLE = 200
MAX_BODY = 20_000
MAX_LIMIT = 100

toolset = ToolSet()


class NoteOut(BaseModel):
    id: str
    title: str
    body: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, note: Note) -> NoteOut:
        return cls(
            id=str(note.id),
            title=note.title,
            body=note.body,
            created_at=note.created_at,
            updated_at=note.updated_at,
        )


class NoteList(BaseModel):
    notes: list[NoteOut]
    count: int = Field(description="How many notes are in this page")


class Deleted(BaseModel):
    ids: list[str] = Field(description="The notes deleted")
    deleted: bool = Field(description="False when the user declined a bulk delete")


def _note_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ToolError("id must be a note id as returned by notes_list") from exc


def _require_write(call: CallContext) -> None:
    # The HTTP layer already answered 403 insufficient_scope; this is the second lock.
    if not call.auth.has(WRITE_SCOPE):
        raise ToolError(f"this tool needs the {WRITE_SCOPE} scope")


async def _owned(call: CallContext, note_id: uuid.UUID) -> Note | None:
    async with call.session() as session:
        stmt = select(Note).where(Note.id == note_id, Note.user_id == call.auth.user.id)
        return (await session.execute(stmt)).scalar_one_or_none()


def _like(query: str) -> str:
    """A LIKE pattern matching `query` anywhere, with the pattern characters escaped."""
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped + "%"


@toolset.tool(
    title="Create a note",
    description="Save a new note for the signed-in user. Needs the mcp:write scope.",
    scopes=(WRITE_SCOPE,),
    read_only=False,
    destructive=False,
)
async def notes_create(
    ctx: Context,
    title: str = Field(description="A short title", min_length=1, max_length=MAX_TITLE),
    body: str = Field(default="", description="The note's text", max_length=MAX_BODY),
) -> NoteOut:
    call = call_context(ctx)
    _require_write(call)
    async with call.session() as session, session.begin():
        note = Note(user_id=call.auth.user.id, title=title.strip(), body=body)
        session.add(note)
    return NoteOut.of(note)


@toolset.tool(
    title="List notes",
    description="List the signed-in user's notes, newest first.",
    read_only=True,
    idempotent=True,
)
async def notes_list(
    ctx: Context,
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT, description="At most this many"),
    offset: int = Field(default=0, ge=0, description="Skip this many (for paging)"),
) -> NoteList:
    call = call_context(ctx)
    async with call.session() as session:
        stmt = (
            select(Note)
            .where(Note.user_id == call.auth.user.id)
            .order_by(Note.created_at.desc(), Note.id)
            .limit(limit)
            .offset(offset)
        )
        notes = [NoteOut.of(n) for n in (await session.execute(stmt)).scalars()]
    return NoteList(notes=notes, count=len(notes))


@toolset.tool(
    title="Search notes",
    description="Find the signed-in user's notes whose title or text contains the query.",
    read_only=True,
    idempotent=True,
)
async def notes_search(
    ctx: Context,
    query: str = Field(min_length=1, max_length=200, description="Text to look for"),
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT),
) -> NoteList:
    call = call_context(ctx)
    pattern = _like(query)
    async with call.session() as session:
        stmt = (
            select(Note)
            .where(
                Note.user_id == call.auth.user.id,
                or_(
                    func.lower(Note.title).like(pattern, escape="\\"),
                    func.lower(Note.body).like(pattern, escape="\\"),
                ),
            )
            .order_by(Note.created_at.desc())
            .limit(limit)
        )
        notes = [NoteOut.of(n) for n in (await session.execute(stmt)).scalars()]
    return NoteList(notes=notes, count=len(notes))


@toolset.tool(
    title="Delete a note",
    description=(
        "Delete one of the signed-in user's notes by id, or several (ids), after asking the "
        "user to confirm. Needs the mcp:write scope."
    ),
    scopes=(WRITE_SCOPE,),
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def notes_delete(
    ctx: Context,
    id: str = Field(default="", description="One note's id, from notes_list"),  # noqa: A002
    ids: list[str] = Field(  # noqa: B008 - pydantic's Field, how the SDK reads parameters
        default_factory=list, max_length=MAX_LIMIT, description="Several notes' ids, at once"
    ),
) -> Deleted:
    call = call_context(ctx)
    _require_write(call)
    wanted = list(dict.fromkeys(_note_id(v) for v in ([id] if id else []) + ids))
    if not wanted:
        raise ToolError("give the id of a note (id) or of several (ids)")
    async with call.session() as session:
        stmt = select(Note.id).where(Note.id.in_(wanted), Note.user_id == call.auth.user.id)
        owned = list((await session.execute(stmt)).scalars())
    if len(owned) < len(wanted):
        # The same answer for "not yours" and "does not exist": ids reveal nothing.
        raise ToolError("no note with that id")
    if len(owned) > 1 and not await call.confirm(
        f"Delete {len(owned)} notes? This cannot be undone."
    ):
        return Deleted(ids=[], deleted=False)
    async with call.session() as session, session.begin():
        doomed = select(Note).where(Note.id.in_(owned), Note.user_id == call.auth.user.id)
        for note in (await session.execute(doomed)).scalars():
            await session.delete(note)
    return Deleted(ids=[str(n) for n in wanted], deleted=True)


async def note_resource(note_id: str, ctx: Context) -> str:
    call = call_context(ctx)
    try:
        parsed = uuid.UUID(note_id)
    except ValueError:
        parsed = None
    note = await _owned(call, parsed) if parsed else None
    if note is None:
        # A resource handler's anticipated failure is a ResourceError (anything else is a
        # crash: -32603 and a logged traceback); not found is -32602 (SEP-2164).
        raise ResourceNotFoundError("no note with that id")
    return f"# {note.title}\n\n{note.body}"


async def summarize_notes(ctx: Context, limit: int = 20) -> str:
    call = call_context(ctx)
    limit = max(1, min(limit, MAX_LIMIT))
    async with call.session() as session:
        stmt = (
            select(Note)
            .where(Note.user_id == call.auth.user.id)
            .order_by(Note.created_at.desc())
            .limit(limit)
        )
        notes = list((await session.execute(stmt)).scalars())
    if not notes:
        return "I have no notes yet. Say so briefly."
    listing = "\n\n".join(f"## {n.title}\n{n.body}" for n in notes)
    return f"Summarise these notes in a few bullet points, grouping related ones:\n\n{listing}"


def register(server: GatehouseMCP) -> None:
    """The notes tools, the note resource and the summary prompt."""
    toolset.register(server)
    server.resource(
        "notes://{note_id}",
        name="note",
        title="A note",
        description="One of the signed-in user's notes, as text.",
        mime_type="text/markdown",
    )(note_resource)
    server.prompt(
        name="summarize_notes",
        title="Summarize my notes",
        description="Ask the model to summarise the signed-in user's most recent notes.",
    )(summarize_notes)
