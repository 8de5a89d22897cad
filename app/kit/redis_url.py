"""REDIS_URL's time bounds, for both Redis clients: coredis (the rate limits, through `limits`)
and redis-py (the connectors' read cache).

Without them a Redis that accepts connections but never answers holds every request that needs
it; with them the call fails, and app/failures.py answers 503 + Retry-After as for any outage.
A timeout in the URL's query wins, in either client's spelling (`socket_connect_timeout` or
`connect_timeout`; `socket_timeout` or `stream_timeout`); it is taken out of the URL and handed
to each client under its own name, as neither accepts the other's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CONNECT_TIMEOUT = 2.0  # seconds to open a connection to Redis
COMMAND_TIMEOUT = 2.0  # seconds to wait for the answer to one command

_CONNECT_NAMES = ("socket_connect_timeout", "connect_timeout")
_COMMAND_NAMES = ("socket_timeout", "stream_timeout")
_TIMEOUT_NAMES = _CONNECT_NAMES + _COMMAND_NAMES


@dataclass(frozen=True)
class RedisTarget:
    url: str  # REDIS_URL without the timeouts in its query
    connect_timeout: float
    command_timeout: float


def redis_target(url: str) -> RedisTarget:
    """The URL to give a client, and the timeouts it must use. ValueError on a bad timeout."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {name: _seconds(name, value) for name, value in query if name in _TIMEOUT_NAMES}
    if given:
        kept = [(name, value) for name, value in query if name not in _TIMEOUT_NAMES]
        url = urlunsplit(parts._replace(query=urlencode(kept)))
    return RedisTarget(
        url=url,
        connect_timeout=_first(given, _CONNECT_NAMES, CONNECT_TIMEOUT),
        command_timeout=_first(given, _COMMAND_NAMES, COMMAND_TIMEOUT),
    )


def _first(given: dict[str, float], names: tuple[str, ...], default: float) -> float:
    return next((given[name] for name in names if name in given), default)


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"REDIS_URL: {name} in its query must be a positive number of seconds")
    return seconds
