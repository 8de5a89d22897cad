"""Rate limits for the mail-sending forms: each sends mail, so each is bounded per key."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from app.kit.ratelimit import Verdict
from app.kit.web import render
from app.state import services_of


async def first_refusal(request: Request, *limits: tuple[str, str, str]) -> Verdict | None:
    """Count one attempt against each (rule, name, key); the first refusal, if any.

    Every rule is counted even after a refusal, so hammering one key cannot save the others.
    """
    store = services_of(request.app).rate_limits
    refused: Verdict | None = None
    for rule, name, key in limits:
        verdict = await store.hit(store.rule(rule), name, key)
        if not verdict.allowed and refused is None:
            refused = verdict
    return refused


def too_many(request: Request, verdict: Verdict, *, back: str = "/") -> HTMLResponse:
    minutes = max(1, round(verdict.retry_after / 60))
    return render(
        request,
        "recovery_message.html",
        {
            "title": "Too many requests",
            "message": f"Too many emails were asked for. Try again in {minutes} minute"
            + ("s." if minutes != 1 else "."),
            "link": back,
            "link_text": "Go back",
        },
        status_code=429,
        headers={"Retry-After": str(verdict.retry_after)},
    )
