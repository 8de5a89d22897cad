"""OpenTelemetry: traces, metrics and logs, configured only by the standard OTEL_* variables.

With no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT / ..._TRACES_ENDPOINT) nothing is set up:
the API's no-op providers cost next to nothing. With one, spans go through a batch processor
and metrics through a periodic reader, over OTLP HTTP/protobuf (gRPC when
OTEL_EXPORTER_OTLP_PROTOCOL=grpc), both flushed on shutdown. Every span is scrubbed
(app/kit/scrub.py) on its way out.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from app import __version__
from app.kit.scrub import scrub_text

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.config import Settings

P = ParamSpec("P")
R = TypeVar("R")

tracer = trace.get_tracer("gatehouse", __version__)
meter = metrics.get_meter("gatehouse", __version__)

tokens_issued = meter.create_counter(
    "gatehouse.oauth.tokens_issued", description="Token responses issued, by grant type"
)
refreshes = meter.create_counter(
    "gatehouse.oauth.refreshes", description="Refresh requests, by outcome"
)
reuse_detections = meter.create_counter(
    "gatehouse.oauth.reuse_detections", description="Reused codes or refresh tokens (grant revoked)"
)
signin_failures = meter.create_counter(
    "gatehouse.auth.signin_failures", description="Failed sign-ins, by reason class"
)
challenges = meter.create_counter(
    "gatehouse.mcp.challenges", description="401/403 challenges answered at /mcp"
)
vault_decrypts = meter.create_counter(
    "gatehouse.vault.decrypts", description="Credential decryptions, by outcome"
)
mcp_duration = meter.create_histogram(
    "mcp.server.operation.duration", unit="s", description="MCP method duration"
)
tool_duration = meter.create_histogram(
    "gatehouse.mcp.tool.duration", unit="s", description="MCP tool call duration"
)


def otlp_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@dataclass
class Telemetry:
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None

    @property
    def fastapi_config(self) -> TelemetryConfig | None:
        """`FastAPI(telemetry=...)`: FastAPI's default when Gatehouse's telemetry is on. Off
        when it is off: FastAPI would otherwise ask OpenTelemetry for its global providers on
        every request, only to find the no-op ones nothing installs (docs/PERFORMANCE.md)."""
        if self.enabled:
            return None
        return {"tracing": False, "metrics": False, "logs": False}

    def flush(self) -> None:
        """Export what is buffered (at shutdown; the SDK also shuts down at process exit)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
        if self.meter_provider is not None:
            self.meter_provider.force_flush()


_installed: Telemetry | None = None


def setup_telemetry(settings: Settings) -> Telemetry:
    """Install the SDK providers once per process (OpenTelemetry's globals are set once)."""
    global _installed
    if _installed is not None:
        return _installed
    if not otlp_configured():
        _installed = Telemetry()
        return _installed

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from app.telemetry_export import ScrubbingSpanExporter

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "gatehouse"),
            "service.version": __version__,
            "deployment.environment": settings.gatehouse_env,
            "deployment.environment.name": settings.gatehouse_env,
            "gatehouse.role": settings.gatehouse_role,
        }
    )
    tracer_provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER
    tracer_provider.add_span_processor(BatchSpanProcessor(ScrubbingSpanExporter(_span_exporter())))
    metric_reader = PeriodicExportingMetricReader(_metric_exporter())
    meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    # Outbound calls (upstream APIs, the issuer's JWKS in the mcp role) as client spans.
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    _installed = Telemetry(tracer_provider, meter_provider)
    return _installed


# The exporters are imported only when OTLP is configured: they are heavy, and optional.
def _span_exporter() -> SpanExporter:
    if _protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _metric_exporter() -> MetricExporter:
    if _protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return GrpcMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _protocol(signal: str) -> str:
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()


def instrument_app(app: FastAPI, telemetry: Telemetry) -> None:
    if not telemetry.enabled:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        excluded_urls="/health,/ready,/static/.*",
        exclude_spans=["receive", "send"],
    )


def instrument_engine(engine: AsyncEngine, telemetry: Telemetry) -> None:
    if not telemetry.enabled:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # skip_dep_check: the instrumentation's declared range lags SQLAlchemy releases; it hooks
    # the engine's cursor events, which are stable across 2.x.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        enable_commenter=False,
        skip_dep_check=True,
    )


# -- spans for the flows ---------------------------------------------------------------------------


@contextmanager
def flow_span(name: str, **attributes: str | int | bool | None) -> Iterator[Span]:
    """A span for one step of an auth flow; set `gatehouse.outcome` on it before it ends."""
    clean = {k.replace("__", "."): v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, attributes=clean) as span:
        yield span


def outcome(span: Span, value: str, **attributes: str | int | bool | None) -> None:
    span.set_attribute("gatehouse.outcome", value)
    for key, item in attributes.items():
        if item is not None:
            span.set_attribute(key.replace("__", "."), item)


def failed(span: Span, error: str, description: str | None = None) -> None:
    span.set_attribute("gatehouse.outcome", "error")
    span.set_attribute("error.type", error)
    span.set_status(Status(StatusCode.ERROR, description))


def note(**attributes: str | int | bool | None) -> None:
    """Add attributes to the current span (outcome, error code, client id...)."""
    span = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key.replace("__", "."), value)


def _record_raised(span: Span, exc: Exception) -> None:
    """A protocol error (an `error` code and a 4xx `status_code`, like the OAuth errors) is the
    caller's mistake, rendered by an exception handler: record it as that response would be.
    Anything else failed here."""
    code, status = getattr(exc, "error", None), getattr(exc, "status_code", None)
    if isinstance(code, str) and isinstance(status, int) and status < 500:
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("gatehouse.outcome", "error")
        span.set_attribute("error.type", code)
        return
    failed(span, type(exc).__name__)


def traced(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run a route in a span named `name`; its outcome defaults from the response status."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with tracer.start_as_current_span(name) as span:
                try:
                    response = await fn(*args, **kwargs)
                except Exception as exc:
                    _record_raised(span, exc)
                    raise
                status = getattr(response, "status_code", 200)
                span.set_attribute("http.response.status_code", status)
                if "gatehouse.outcome" not in (getattr(span, "attributes", None) or {}):
                    span.set_attribute("gatehouse.outcome", "ok" if status < 400 else "error")
                return response

        return wrapper

    return decorate


# -- logs ------------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the trace and span of the request that logged it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub_text(record.getMessage()),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for development, scrubbed like everything else."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = scrub_text(super().format(record))
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line += f" [trace={format(context.trace_id, '032x')}]"
        return line


def log_config(settings: Settings) -> dict[str, Any]:
    """A logging dictConfig for uvicorn and the app: JSON in production, text in development."""
    style = os.environ.get("LOG_FORMAT") or ("json" if settings.is_production else "text")
    formatter = "app.telemetry.JsonFormatter" if style == "json" else "app.telemetry.TextFormatter"
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": {"()": formatter}},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": "INFO"},
        "loggers": {
            "uvicorn": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "sqlalchemy.engine": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "mcp": {"level": "WARNING"},
        },
    }
