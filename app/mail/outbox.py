"""The outbox: a bounded queue of messages (and small jobs) worked off in the background.

A request only ever puts an item on the queue, which never waits: a slow or broken SMTP server
cannot hold a request. Each message is tried a few times with exponential backoff, each try
bounded by a timeout; a message that still fails is logged in one line (its kind, the
recipient's domain, the error class: never the body, which holds a single-use link) and
counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.config import Settings
from app.mail.message import Message
from app.mail.transport import Transport, transport_for
from app.telemetry import meter

logger = logging.getLogger("gatehouse.mail")

mail_messages = meter.create_counter(
    "gatehouse.mail.messages", description="Outgoing messages, by kind and outcome"
)
mail_failures = meter.create_counter(
    "gatehouse.mail.failures", description="Messages or mail jobs that failed for good, by kind"
)

Job = Callable[[], Awaitable[None]]


_PENDING = "gatehouse.outbox.pending"  # Session.info key: (outbox, message) awaiting a commit


def _release(session: Session) -> None:
    pending: list[tuple[Outbox, Message]] = session.info.get(_PENDING, [])
    while pending:
        outbox, message = pending.pop(0)
        outbox.send(message)


def _discard(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:  # the whole transaction is gone, and with it every link it made
        session.info.get(_PENDING, []).clear()


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "?"


def _permanent(exc: BaseException) -> bool:
    """A 5xx answer (unknown recipient, refused sender) will not change on a retry."""
    # aiosmtplib is imported by SmtpTransport.send only (for memory): an exception of it can
    # exist only once it has been imported.
    smtp = sys.modules.get("aiosmtplib")
    return (
        smtp is not None and isinstance(exc, smtp.SMTPResponseException) and 500 <= exc.code < 600
    )


class Outbox:
    def __init__(
        self,
        transport: Transport,
        *,
        maxsize: int = 1000,
        workers: int = 2,
        attempts: int = 4,
        backoff: float = 2.0,
        timeout: float = 30.0,
    ) -> None:
        self.transport = transport
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.counts: Counter[str] = Counter()  # accepted, sent, failed, dropped, job_failed
        self._queue: asyncio.Queue[Message | Job] = asyncio.Queue(maxsize=maxsize)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []

    # -- putting work on the queue (never waits) ---------------------------------------------------

    def send(self, message: Message) -> bool:
        """Queue a message; False (logged and counted) when the queue is full."""
        if not self._put(message, message.kind):
            return False
        self.counts["accepted"] += 1
        mail_messages.add(1, {"gatehouse.mail.kind": message.kind, "gatehouse.outcome": "queued"})
        return True

    def send_after_commit(self, session: AsyncSession, message: Message) -> None:
        """Queue a message once the session's transaction commits; never if it rolls back.

        The link in the message must not arrive before the row it names is durable.
        """
        sync = session.sync_session
        if _PENDING not in sync.info:
            sync.info[_PENDING] = []
            event.listen(sync, "after_commit", _release)
            event.listen(sync, "after_soft_rollback", _discard)
        sync.info[_PENDING].append((self, message))

    def defer(self, job: Job, *, kind: str) -> bool:
        """Run a small job on a worker (work whose cost must not show in a response's timing)."""
        return self._put(job, kind)

    def _put(self, item: Message | Job, kind: str) -> bool:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.counts["dropped"] += 1
            mail_failures.add(1, {"gatehouse.mail.kind": kind, "gatehouse.reason": "queue_full"})
            logger.warning("mail queue full: dropped a %s", kind)
            return False
        return True

    # -- the workers -------------------------------------------------------------------------------

    async def start(self) -> None:
        for n in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"mail-worker-{n}"))
        logger.info("outgoing mail goes to %s", self.transport.describe())

    async def stop(self, *, grace: float = 5.0) -> None:
        """Give queued messages a moment to leave, then stop the workers."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._queue.qsize():
            logger.warning("stopped with %d message(s) unsent", self._queue.qsize())

    async def idle(self) -> None:
        """Until everything queued so far has been handled (sent, or failed for good)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, Message):
                    await self._deliver(item)
                else:
                    await self._run(item)
            finally:
                self._queue.task_done()

    async def _run(self, job: Job) -> None:
        try:
            await job()
        except Exception as exc:  # noqa: BLE001 - one failed job must not stop the worker
            self.counts["job_failed"] += 1
            mail_failures.add(1, {"gatehouse.mail.kind": "job", "gatehouse.reason": "error"})
            logger.warning("mail job failed: %s", type(exc).__name__)

    async def _deliver(self, message: Message) -> None:
        error: BaseException | None = None
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                await asyncio.wait_for(self.transport.send(message), self.timeout)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then reported
                error = exc
                if _permanent(exc):
                    break
                continue
            self.counts["sent"] += 1
            mail_messages.add(1, {"gatehouse.mail.kind": message.kind, "gatehouse.outcome": "sent"})
            return
        self.counts["failed"] += 1
        mail_failures.add(1, {"gatehouse.mail.kind": message.kind, "gatehouse.reason": "error"})
        code = getattr(error, "code", None)
        logger.warning(
            "mail %s to @%s failed after %d attempt(s): %s%s",
            message.kind,
            _domain(message.to),
            attempt + 1,
            type(error).__name__,
            f" {code}" if isinstance(code, int) else "",
        )


def build_outbox(settings: Settings) -> Outbox:
    timeout = settings.mail_timeout
    return Outbox(
        transport_for(settings, timeout=timeout),
        attempts=settings.mail_attempts,
        backoff=settings.mail_backoff,
        timeout=timeout,
    )


@contextlib.asynccontextmanager
async def running_outbox(settings: Settings) -> AsyncIterator[Outbox]:
    """The app's outbox for the length of its lifespan (app/main.py); idle in the `mcp` role,
    which sends no mail."""
    outbox = build_outbox(settings)
    if not settings.email_flows:
        yield outbox
        return
    await outbox.start()
    try:
        yield outbox
    finally:
        await outbox.stop()
