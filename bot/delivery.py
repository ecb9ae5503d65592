"""Delivery figures per repository, read from its ledger and kept for ``/status``, the status page and
``/metrics``.

Reading the ledger costs GitHub requests (one list per ledger task, and the statuses of each deployment
whose verdict is not in yet), so the figures are computed only when the ledger is read, and it is read:

- by a pass that wrote a verdict (``invalidate``, then ``refresh(..., only_if_invalid=True)``), or the
  first pass over a repository since start-up; never by an idle pass;
- when a person asks (``/status``, the status page) and the figures are older than ``max_age``.

Concurrent askers share one read. The cache is derived from GitHub: a restart only empties it. A read that
fails keeps the figures read before (and says so in the log), and is not tried again for ``max_age``:
figures are never worth failing a pass, or spending an idle pass's requests, for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from bot.core.dora import WINDOWS, RepoFigures, figures
from bot.core.ledger import LedgerEntry
from bot.errors import ExternalError

log = logging.getLogger(__name__)

MAX_AGE = timedelta(minutes=5)

ReadLedger = Callable[[str], Awaitable[list[LedgerEntry]]]


class DeliveryFigures:
    """The figures of each repository, refreshed from ``read(repo)`` (``RepoGitHub.read_ledger``);
    ``on_update(repo, figures)`` is told each new reading (the Prometheus gauges)."""

    def __init__(
        self,
        read: ReadLedger,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_age: timedelta = MAX_AGE,
        windows: Sequence[int] = WINDOWS,
        on_update: Callable[[str, RepoFigures], None] | None = None,
    ) -> None:
        self.read = read
        self.clock = clock
        self.max_age = max_age
        self.windows = tuple(windows)
        self.on_update = on_update
        self._figures: dict[str, RepoFigures] = {}
        self._invalid: set[str] = set()
        self._failed: dict[
            str, datetime
        ] = {}  # repo -> when its last read failed (tried again after max_age)
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, repo: str) -> RepoFigures | None:
        """The last reading of ``repo``, however old (None before the first)."""
        return self._figures.get(repo)

    def all_cached(self) -> dict[str, RepoFigures]:
        return dict(self._figures)

    def invalidate(self, repo: str) -> None:
        """A verdict was written: the next ``refresh`` reads the ledger again, whatever its age."""
        self._invalid.add(repo)

    def invalid(self, repo: str) -> bool:
        """Never read, or a verdict written since the last reading."""
        return repo in self._invalid or repo not in self._figures

    def stale(self, repo: str) -> bool:
        current = self._figures.get(repo)
        return self.invalid(repo) or current is None or self.clock() - current.computed_at >= self.max_age

    async def refresh(
        self, repo: str, stages: Sequence[str] = (), *, only_if_invalid: bool = False
    ) -> RepoFigures | None:
        """Read ``repo``'s ledger when its figures are stale (with ``only_if_invalid``: only when never read
        or invalidated), compute them with ``stages`` first, and return the newest figures."""
        lock = self._locks.setdefault(repo, asyncio.Lock())
        async with lock:  # a second asker waits for the first's reading, then finds it fresh
            due = self.invalid(repo) if only_if_invalid else self.stale(repo)
            failed = self._failed.get(repo)
            if not due or (failed is not None and self.clock() - failed < self.max_age):
                return self._figures.get(repo)
            self._invalid.discard(repo)
            try:
                entries = await self.read(repo)
            except ExternalError as exc:
                self._invalid.add(repo)
                self._failed[repo] = self.clock()
                log.warning("could not read the ledger", extra={"repo": repo, "error": str(exc)})
                return self._figures.get(repo)
            self._failed.pop(repo, None)
            now = self.clock()
            found = RepoFigures(
                now, tuple(figures(entries, now=now, windows=self.windows, stages=stages)), len(entries)
            )
            self._figures[repo] = found
            if self.on_update is not None:
                self.on_update(repo, found)
            return found
