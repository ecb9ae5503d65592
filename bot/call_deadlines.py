"""Deadlines on outside calls, and the longest call each service took: every request to GitHub, Argo CD
or a registry runs inside ``bounded``, which enforces its deadline at the call (``asyncio.timeout``, so no
library layer can drop it) and notes how long it took, in ``CALLS``.

``CALLS`` is the process's record, read by ``bench/faults.py`` to show that no call outlived its
deadline (a stalled call is cut at its deadline and becomes a temporary failure of the caller's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

GITHUB, ARGOCD, REGISTRY = "github", "argocd", "registry"


@dataclass
class CallTimes:
    """Per service: the longest call (seconds, the deadline cut included) and the deadline it had."""

    longest: dict[str, float] = field(default_factory=dict)
    deadline: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def note(self, service: str, seconds: float, deadline: float) -> None:
        self.calls[service] = self.calls.get(service, 0) + 1
        if seconds >= self.longest.get(service, -1.0):
            self.longest[service] = seconds
            self.deadline[service] = deadline

    def reset(self) -> None:
        self.longest.clear()
        self.deadline.clear()
        self.calls.clear()


CALLS = CallTimes()


@contextlib.asynccontextmanager
async def bounded(service: str, deadline: float) -> AsyncIterator[None]:
    """Run the block within ``deadline`` seconds (``TimeoutError`` past it), noting how long it took."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            yield
    finally:
        CALLS.note(service, time.monotonic() - started, deadline)
