"""Jaeger's role in docker-compose.yml for the container tests: take OTLP/HTTP on :4318 and
answer a small part of Jaeger's query API on :16686 from what arrived."""

from __future__ import annotations

import json
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from otlp_receiver import Receiver, start_receiver


def traces_of(receiver: Receiver, service: str) -> list[dict[str, Any]]:
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in receiver.all_spans():
        if span.resource.get("service.name") == service:
            by_trace[span.trace_id].append(
                {"spanID": span.span_id, "operationName": span.name, "tags": span.attributes}
            )
    return [{"traceID": trace, "spans": spans} for trace, spans in by_trace.items()]


def query_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Query(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            if url.path == "/api/services":
                names = {s.resource.get("service.name") for s in receiver.all_spans()}
                data: Any = sorted(str(n) for n in names if n)
            elif url.path == "/api/traces":
                service = parse_qs(url.query).get("service", [""])[0]
                data = traces_of(receiver, service)
            else:
                self.send_error(404)
                return
            body = json.dumps({"data": data}, default=str).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Query


def main() -> None:
    receiver, _ = start_receiver(host="0.0.0.0", port=4318)  # noqa: S104 - the container's own
    ThreadingHTTPServer(("0.0.0.0", 16686), query_handler(receiver)).serve_forever()  # noqa: S104


if __name__ == "__main__":
    main()
