"""Spans leave the process scrubbed: the exporter wrapper `setup_telemetry` installs.

A module of its own, imported only when OTLP is configured: it subclasses the OpenTelemetry
SDK's SpanExporter, and the SDK (~1 MiB of modules) has no business in a process that exports
nothing (bench/rss.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from app.kit.scrub import scrub_attributes, scrub_text


class ScrubbingSpanExporter(SpanExporter):
    """Wraps an exporter; every span is rebuilt with scrubbed attributes, events and status."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([_scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _scrubbed(span: ReadableSpan) -> ReadableSpan:
    events = [
        Event(event.name, scrub_attributes(event.attributes), event.timestamp)
        for event in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, scrub_text(status.description))
    return ReadableSpan(
        name=scrub_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrub_attributes(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
