"""Questions asked of the freight ledger (``bot.core.ledger``), pure: was this freight ever verified in
a stage, did its last verification there fail, what may a stage roll back to, which environments hold
history no stage owns any more.

Entries come newest first (``RepoDeployments.read_ledger``). "Verified" means the verification's verdict
was ``success``, which Ferry writes only after the stage's soak, so verified here is verified and soaked.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from bot.core.freight import Freight
from bot.core.ledger import LedgerEntry

Ledger = Sequence[LedgerEntry]


def of_stage(ledger: Iterable[LedgerEntry], stage: str) -> list[LedgerEntry]:
    """The stage's entries, newest first (GitHub's environment is the stage's name)."""
    return sorted(
        (e for e in ledger if e.stage == stage), key=lambda e: (e.created_at, e.deployment_id), reverse=True
    )


def last_decided(ledger: Iterable[LedgerEntry], stage: str, freight_id: str) -> LedgerEntry | None:
    """The newest verification of ``freight_id`` in ``stage`` that has a verdict (verified or failed)."""
    return next(
        (
            e
            for e in of_stage(ledger, stage)
            if e.freight.id == freight_id and e.outcome in ("verified", "failed")
        ),
        None,
    )


def verified_in(ledger: Iterable[LedgerEntry], stage: str, freight_id: str) -> LedgerEntry | None:
    """The verification that makes ``freight_id`` count as verified in ``stage`` at any time: its newest
    verdict there, when that verdict was a success."""
    entry = last_decided(ledger, stage, freight_id)
    return entry if entry is not None and entry.verified else None


def failed_last(ledger: Iterable[LedgerEntry], stage: str, freight_id: str) -> LedgerEntry | None:
    """The failed verification of ``freight_id`` in ``stage``, when its newest verdict there failed."""
    entry = last_decided(ledger, stage, freight_id)
    return entry if entry is not None and entry.failed else None


def rollback_targets(
    ledger: Iterable[LedgerEntry], stage: str, runs: Callable[[Freight], bool]
) -> list[LedgerEntry]:
    """What ``stage`` may return to, newest first: freight verified there whose newest verdict there is a
    success, other than what it runs now (``runs``). A baseline (what ran before Ferry's first promotion)
    counts like any other verified entry."""
    seen: set[str] = set()
    found: list[LedgerEntry] = []
    for entry in of_stage(ledger, stage):
        if entry.freight.id in seen or entry.outcome not in ("verified", "failed"):
            continue
        seen.add(entry.freight.id)
        if entry.verified and entry.freight.images and not runs(entry.freight):
            found.append(entry)
    return found


def orphaned_environments(ledger: Iterable[LedgerEntry], stages: Collection[str]) -> list[str]:
    """Environments with ledger history that no configured stage is named after (a stage renamed or
    removed: its history stays under the old name on GitHub)."""
    return sorted({e.stage for e in ledger if e.stage and e.stage not in stages})


def known_freight(ledger: Iterable[LedgerEntry]) -> list[Freight]:
    """Every freight the ledger names, newest first, each once."""
    seen: dict[str, Freight] = {}
    for entry in sorted(ledger, key=lambda e: (e.created_at, e.deployment_id), reverse=True):
        if entry.freight.images:
            seen.setdefault(entry.freight.id, entry.freight)
    return list(seen.values())
