"""Newest freight per warehouse, polled no more often than the warehouse's ``interval``.

A cache only: after a restart the first pass asks the registry again. It also remembers which images
each repository's warehouses watch (from the passes that asked), so a registry event about one image
refreshes exactly the warehouses that watch it, in whichever repositories they are.
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
        # (repo, warehouse) -> normalised images it watches, as of the last pass that asked for it.
        self._watching: dict[tuple[str, str], frozenset[str]] = {}

    async def newest(self, repo: str, name: str, warehouse: Warehouse) -> Freight:
        key = (repo, name)
        self._watching[key] = frozenset(rule.name for rule in warehouse.images)
        cached = self._entries.get(key)
        now = self.clock()
        if cached is not None and now - cached[0] < warehouse.interval.total_seconds():
            return cached[1]
        freight = await self.discover(name, warehouse)
        self._entries[key] = (now, freight)
        return freight

    def invalidate(self, repo: str | None = None) -> None:
        """Forget cached freight (of one repository, or all)."""
        for key in [k for k in self._entries if repo is None or k[0] == repo]:
            del self._entries[key]

    def refresh_image(self, image: str) -> list[str]:
        """Forget the freight of every warehouse watching ``image`` (normalised); their repositories.

        A repository whose passes never asked for freight (one without ``.github/ferry.yml``, such as
        the application repository a package belongs to) watches nothing and is not returned. A
        warehouse since removed from its config may still be listed until its repository's next pass
        asks again: the caller only triggers a pass, which re-reads the config.
        """
        repos: set[str] = set()
        for key, images in self._watching.items():
            if image in images:
                self._entries.pop(key, None)
                repos.add(key[0])
        return sorted(repos)
