"""Requests one reconcile pass sends to GitHub, counted where they leave the process.

A pass runs in its own task (and the reads it gathers in child tasks, which copy its context), so a
``ContextVar`` holding a mutable ``PassCount`` is shared by everything the pass awaits and by nothing
another repository's pass does. The GitHub connection pool (``bot.github.client``) calls ``note_request``
for every request it sends; an answer githubkit's HTTP cache gives without asking GitHub is not counted.

The counts feed the ``ferry_pass_github_requests`` histogram (``bot.metrics``) by pass kind, and one rule
of the reconciler: a pass that wrote to GitHub makes the next pass read everything again, because Ferry's
own writes (commit statuses above all) do not move what the cheap change check reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

WRITE_METHODS: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})

# The kinds of pass the histogram tells apart: nothing to do, a stage verifying, actions taken.
IDLE: Final = "idle"
VERIFYING: Final = "verifying"
ACTING: Final = "acting"
PASS_KINDS: Final = (IDLE, VERIFYING, ACTING)


@dataclass
class PassCount:
    """GitHub requests of one pass: ``reads`` (GET, HEAD) and ``writes`` (content-creating methods);
    ``actions`` the pass performed (a sync asked of Argo CD is one, with no GitHub request)."""

    reads: int = 0
    writes: int = 0
    actions: int = 0
    kind: str = ""  # idle, verifying or acting, once the pass is over

    @property
    def total(self) -> int:
        return self.reads + self.writes


_CURRENT: ContextVar[PassCount | None] = ContextVar("ferry_pass_count", default=None)


def note_request(method: str) -> None:
    """Count one request sent to GitHub against the pass running in this context (if any)."""
    count = _CURRENT.get()
    if count is None:
        return
    if method.upper() in WRITE_METHODS:
        count.writes += 1
    else:
        count.reads += 1


def note_action() -> None:
    """Count one action performed by the pass running in this context (if any)."""
    count = _CURRENT.get()
    if count is not None:
        count.actions += 1


@contextlib.contextmanager
def counting() -> Iterator[PassCount]:
    """Count this context's GitHub requests; nested inside a pass already counted, it is that pass's count
    (a pass's steps and its reconcile step add up to one figure)."""
    current = _CURRENT.get()
    if current is not None:
        yield current
        return
    count = PassCount()
    token = _CURRENT.set(count)
    try:
        yield count
    finally:
        _CURRENT.reset(token)


class Budget:
    """Passes and their GitHub requests by kind since start-up (``totals``: {kind: [passes, requests]});
    ``on_pass(kind, requests)`` hears each pass (the ``ferry_pass_github_requests`` histogram)."""

    def __init__(self, on_pass: Callable[[str, int], None] | None = None) -> None:
        self.on_pass = on_pass
        self.totals: dict[str, list[int]] = {kind: [0, 0] for kind in PASS_KINDS}

    def record(self, count: PassCount, *, verifying: bool) -> None:
        """Classify a finished pass (acting: it acted or wrote; verifying: a stage verifies; else idle)."""
        count.kind = ACTING if count.writes or count.actions else VERIFYING if verifying else IDLE
        self.totals[count.kind][0] += 1
        self.totals[count.kind][1] += count.total
        if self.on_pass is not None:
            self.on_pass(count.kind, count.total)


def per_pass(budget: Mapping[str, list[int]]) -> dict[str, float | None]:
    """Mean GitHub requests per pass by kind, from ``Budget.totals`` ({kind: [passes, requests]});
    None for a kind no pass was of."""
    return {kind: round(total / passes, 2) if passes else None for kind, (passes, total) in budget.items()}
