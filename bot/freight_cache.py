"""Newest freight per warehouse, polled no more often than the warehouse's ``interval``.

A cache only: after a restart the first pass asks the registry again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.core.config import Warehouse
from bot.core.freight import Freight

Discover = Callable[[str, Warehouse], Awaitable[Freight]]


class FreightCache:
    def __init__(self, discover: Discover, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.discover = discover
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Freight]] = {}

    async def newest(self, repo: str, name: str, warehouse: Warehouse) -> Freight:
        key = (repo, name)
        cached = self._entries.get(key)
        now = self.clock()
        if cached is not None and now - cached[0] < warehouse.interval.total_seconds():
            return cached[1]
        freight = await self.discover(name, warehouse)
        self._entries[key] = (now, freight)
        return freight

    def invalidate(self, repo: str | None = None) -> None:
        """Forget cached freight (of one repository, or all): a package event announced new tags."""
        for key in [k for k in self._entries if repo is None or k[0] == repo]:
            del self._entries[key]
