"""The one in-process cache: bounded (least recently used goes first), entries that may expire.

Every cache in the process is one of these: verified tokens, introspection answers, who users
and clients are, upstream read results. Ages are measured on the monotonic clock, so a change of
the wall clock never makes an entry live longer.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Hit(Generic[V]):
    value: V
    stored_at: float  # time.monotonic() when it was put
    expires_at: float  # math.inf when it never expires

    @property
    def age(self) -> float:
        return time.monotonic() - self.stored_at


class BoundedCache(Generic[K, V]):
    """At most `max_entries` entries; each lives `ttl` seconds (None: until pushed out)."""

    def __init__(self, *, max_entries: int, ttl: float | None = None) -> None:
        self._max = max_entries
        self._ttl = ttl
        self._entries: OrderedDict[K, Hit[V]] = OrderedDict()

    def lookup(self, key: K) -> Hit[V] | None:
        """The live entry for `key` (marked as recently used), or None. Use this when a stored
        value may itself be None ("we asked, there is no such user")."""
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit.expires_at <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return hit

    def get(self, key: K) -> V | None:
        hit = self.lookup(key)
        return hit.value if hit is not None else None

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        """Store `value`; `ttl` overrides the cache's lifetime for this entry."""
        now = time.monotonic()
        lifetime = ttl if ttl is not None else self._ttl
        expires_at = now + lifetime if lifetime is not None else float("inf")
        self._entries[key] = Hit(value, now, expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def keys(self) -> Iterator[K]:
        """A snapshot of the keys (safe to pop while iterating)."""
        return iter(list(self._entries))

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
