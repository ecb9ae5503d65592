"""Delivery figures (the four DORA keys) per stage from the freight ledger: pure, over ``LedgerEntry``s.

The definitions follow DORA's (https://dora.dev/guides/dora-metrics-four-keys/, "DORA's software delivery
metrics: the four keys"), measured per stage instead of for production only, over a window of the last
``days`` days ending at ``now`` (an entry is in the window when ``now - days < decided_at <= now``):

- **Deployment frequency** ("the number of deployments over a given period"): verified ``ferry:promote`` and
  ``ferry:rollback`` entries per day. Baselines (``ferry:baseline``, what a stage ran before Ferry) are not
  deployments. The divisor is the part of the window the ledger covers: from the stage's first entry
  (baselines included), at least one day, at most ``days``; a stage Ferry started recording yesterday is not
  diluted over 30 days.
- **Change lead time** ("the amount of time it takes for a change to go from committed to version control
  to deployed in production"): from the freight's ``pushed_at`` (its newest image's registry ``created``
  time, or when Ferry discovered it) to the ``decided_at`` of its verified ``ferry:promote`` entry in the
  stage; median and 90th percentile (nearest rank). Rollbacks redeploy old freight and are not changes;
  entries without ``pushed_at`` are left out. A negative span (clocks apart) counts as zero.
- **Change fail rate** ("the ratio of deployments that require immediate intervention following a
  deployment", likely a rollback or hotfix): failed or rolled-back verifications / all decided ones. A
  decided ``ferry:promote``/``ferry:rollback`` entry is a failed change when its verification failed, or
  when the next entry of its stage (a baseline aside) is a ``ferry:rollback`` (it was rolled back).
- **Time to restore** (DORA's failed deployment recovery time, "the time it takes to recover from a
  deployment that fails and requires immediate intervention"): from a failure to the next verified entry
  in the stage; median. A failure opens an incident unless one is already open: a failed verdict (at its
  ``decided_at``) or a rollback asked for while the stage was verified (at the rollback's ``created_at``).
  Incidents are counted in the window in which they were restored; one still open is not counted.

No data is ``None`` (shown as ``n/a``), never 0: a frequency needs at least one ledger entry of the stage,
a lead time one sample, a failure rate one decided change, a time to restore one restored incident. 0 is a
measurement (the stage was recorded and nothing verified in the window; no change failed).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.ledger import TASK_BASELINE, TASK_PROMOTE, TASK_ROLLBACK, LedgerEntry

WINDOWS = (7, 30)  # days: DORA's surveys ask per week and per month
NOT_AVAILABLE = "n/a"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class StageFigures:
    """One stage's four keys over ``window_days`` days. ``None`` means no data (see the module docstring)."""

    stage: str
    window_days: int
    deployments: int  # verified promote/rollback entries decided in the window
    deployment_frequency: float | None  # per day
    lead_time_median: timedelta | None
    lead_time_p90: timedelta | None
    lead_time_samples: int
    changes: int  # decided promote/rollback entries in the window
    failed_changes: int
    change_failure_rate: float | None  # failed_changes / changes, in [0, 1]
    time_to_restore_median: timedelta | None
    restores: int  # incidents restored in the window


@dataclass(frozen=True)
class RepoFigures:
    """One repository's figures as last read from its ledger, at ``computed_at`` (UTC)."""

    computed_at: datetime
    figures: tuple[StageFigures, ...]
    entries: int  # ledger entries read


def stage_figures(entries: Iterable[LedgerEntry], stage: str, *, now: datetime, days: int) -> StageFigures:
    """The four keys of ``stage`` over the ``days`` days ending at ``now`` (UTC); entries in any order."""
    return _History(entries, stage, now).over(days)


def figures(
    entries: Sequence[LedgerEntry],
    *,
    now: datetime,
    windows: Sequence[int] = WINDOWS,
    stages: Sequence[str] = (),
) -> list[StageFigures]:
    """Every stage's figures per window: ``stages`` first (the config's order), then any other stage the
    ledger holds (a renamed or removed stage keeps its history), by name."""
    by_stage: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_stage.setdefault(entry.stage, []).append(entry)
    names = list(dict.fromkeys([*stages, *sorted(set(by_stage) - set(stages))]))
    found = []
    for name in names:
        history = _History(by_stage.get(name, ()), name, now)  # sorted once for every window
        found += [history.over(days) for days in windows]
    return found


class _History:
    """One stage's ledger up to ``now`` in ledger order, with what every window shares worked out once."""

    def __init__(self, entries: Iterable[LedgerEntry], stage: str, now: datetime) -> None:
        self.stage, self.now = stage, now
        self.mine = sorted(
            (e for e in entries if e.stage == stage and e.created_at <= now),
            key=lambda e: (e.created_at, e.deployment_id),
        )
        self.decided = [
            e
            for e in self.mine
            if e.task != TASK_BASELINE and e.outcome in ("verified", "failed") and e.decided_at is not None
        ]
        self.rolled_back = _rolled_back(self.mine)
        self.incidents = _incidents(self.mine)

    def over(self, days: int) -> StageFigures:
        if days < 1:
            raise ValueError(f"a window is at least 1 day, got {days}")
        now, start = self.now, self.now - timedelta(days=days)

        def inside(moment: datetime | None) -> bool:
            return moment is not None and start < moment <= now

        decided = [e for e in self.decided if inside(e.decided_at)]
        verified = [e for e in decided if e.verified]
        failed = [e for e in decided if e.failed or e.deployment_id in self.rolled_back]
        leads = sorted(
            max(timedelta(0), e.decided_at - e.pushed_at)
            for e in verified
            if e.task == TASK_PROMOTE and e.pushed_at is not None and e.decided_at is not None
        )
        restored = sorted(end - begin for begin, end in self.incidents if inside(end))
        covered = None
        if self.mine:
            covered = min(timedelta(days=days), max(DAY, now - self.mine[0].created_at))
        return StageFigures(
            stage=self.stage,
            window_days=days,
            deployments=len(verified),
            deployment_frequency=len(verified) / (covered / DAY) if covered is not None else None,
            lead_time_median=_median(leads),
            lead_time_p90=_percentile(leads, 0.9),
            lead_time_samples=len(leads),
            changes=len(decided),
            failed_changes=len(failed),
            change_failure_rate=len(failed) / len(decided) if decided else None,
            time_to_restore_median=_median(restored),
            restores=len(restored),
        )


def parse_windows(text: str) -> tuple[int, ...]:
    """``"7,30"`` → ``(7, 30)``; ValueError naming what is expected for anything but positive whole days."""
    try:
        found = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        found = ()
    if not found or any(days < 1 or days > 3650 for days in found):
        raise ValueError(f"windows {text!r}: expected whole days from 1 to 3650, comma-separated, e.g. 7,30")
    return tuple(dict.fromkeys(found))


def _rolled_back(entries: Sequence[LedgerEntry]) -> set[int]:
    """Deployment ids of changes that a ``ferry:rollback`` entry followed (entries in ledger order)."""
    found: set[int] = set()
    previous: LedgerEntry | None = None
    for entry in entries:
        if entry.task == TASK_BASELINE:
            continue
        if entry.task == TASK_ROLLBACK and previous is not None:
            found.add(previous.deployment_id)
        previous = entry
    return found


def _incidents(entries: Sequence[LedgerEntry]) -> list[tuple[datetime, datetime]]:
    """(failure, restored) of each restored incident of one stage, from its entries in ledger order."""
    events: list[tuple[datetime, int, str]] = []  # (when, order, what): failure, rollback asked, verified
    for entry in entries:
        if entry.task == TASK_ROLLBACK:
            events.append((entry.created_at, 0, "rollback"))
        if entry.decided_at is not None and entry.task != TASK_BASELINE:
            events.append((entry.decided_at, 1, "failure" if entry.failed else "verified"))
    found = []
    opened: datetime | None = None
    for when, _order, what in sorted(events):
        if what == "verified":
            if opened is not None:
                found.append((opened, when))
            opened = None
        elif opened is None:
            opened = when
    return found


def _median(samples: Sequence[timedelta]) -> timedelta | None:
    if not samples:
        return None
    return timedelta(seconds=statistics.median(s.total_seconds() for s in samples))


def _percentile(ordered: Sequence[timedelta], fraction: float) -> timedelta | None:
    """Nearest-rank percentile of ascending ``ordered``: the smallest sample with ``fraction`` at or below."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# ---- words ----------------------------------------------------------------------------------------
def short_duration(value: timedelta | None) -> str:
    """``n/a``, ``45s``, ``12m``, ``3h 5m``, ``2d 4h``: two units at most, for tables."""
    if value is None:
        return NOT_AVAILABLE
    total = max(0, int(value.total_seconds()))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{seconds}s"


def frequency_words(f: StageFigures) -> str:
    """``1.29/day (9)``; ``n/a``."""
    if f.deployment_frequency is None:
        return NOT_AVAILABLE
    return f"{f.deployment_frequency:.2f}/day ({f.deployments})"


def lead_time_words(f: StageFigures) -> str:
    """``2h 5m / 3h`` (median / p90); ``n/a``."""
    if f.lead_time_median is None:
        return NOT_AVAILABLE
    return f"{short_duration(f.lead_time_median)} / {short_duration(f.lead_time_p90)}"


def failure_rate_words(f: StageFigures) -> str:
    """``25% (1 of 4)``; ``n/a``."""
    if f.change_failure_rate is None:
        return NOT_AVAILABLE
    return f"{f.change_failure_rate:.0%} ({f.failed_changes} of {f.changes})"


def restore_words(f: StageFigures) -> str:
    """``35m (1)``; ``n/a``."""
    if f.time_to_restore_median is None:
        return NOT_AVAILABLE
    return f"{short_duration(f.time_to_restore_median)} ({f.restores})"


TABLE_HEADER = (
    "stage",
    "window",
    "deployment frequency",
    "lead time (median / p90)",
    "change failure rate",
    "time to restore",
)


def table_rows(found: Iterable[StageFigures]) -> list[tuple[str, ...]]:
    """One row of words per (stage, window), in the order of ``TABLE_HEADER``."""
    return [
        (
            f.stage,
            f"{f.window_days}d",
            frequency_words(f),
            lead_time_words(f),
            failure_rate_words(f),
            restore_words(f),
        )
        for f in found
    ]


def seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def from_json(data: Mapping[str, Any]) -> StageFigures:
    """The inverse of :func:`as_json` (for a summary kept as JSON)."""

    def span(key: str) -> timedelta | None:
        value = data.get(key)
        return timedelta(seconds=float(value)) if value is not None else None

    return StageFigures(
        stage=str(data["stage"]),
        window_days=int(data["window_days"]),
        deployments=int(data["deployments"]),
        deployment_frequency=data.get("deployment_frequency_per_day"),
        lead_time_median=span("lead_time_median_seconds"),
        lead_time_p90=span("lead_time_p90_seconds"),
        lead_time_samples=int(data["lead_time_samples"]),
        changes=int(data["changes"]),
        failed_changes=int(data["failed_changes"]),
        change_failure_rate=data.get("change_failure_rate"),
        time_to_restore_median=span("time_to_restore_median_seconds"),
        restores=int(data["restores"]),
    )


def as_json(f: StageFigures) -> dict[str, object]:
    """The stable JSON of one (stage, window): durations in seconds, ``null`` for no data."""
    return {
        "stage": f.stage,
        "window_days": f.window_days,
        "deployments": f.deployments,
        "deployment_frequency_per_day": f.deployment_frequency,
        "lead_time_median_seconds": seconds(f.lead_time_median),
        "lead_time_p90_seconds": seconds(f.lead_time_p90),
        "lead_time_samples": f.lead_time_samples,
        "changes": f.changes,
        "failed_changes": f.failed_changes,
        "change_failure_rate": f.change_failure_rate,
        "time_to_restore_median_seconds": seconds(f.time_to_restore_median),
        "restores": f.restores,
    }


def render_table(repo: str, now: datetime, found: Sequence[StageFigures]) -> str:
    """``ferry stats``'s text: a title line, then one aligned row per (stage, window)."""
    rows = [TABLE_HEADER, *table_rows(found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    lines = [f"{repo}: delivery figures from the ledger (GitHub Deployments) at {now:%Y-%m-%d %H:%M} UTC", ""]
    if not found:
        return lines[0] + "\n\nno stage has a ledger entry yet\n"
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def render_json(
    repo: str, now: datetime, windows: Sequence[int], found: Sequence[StageFigures]
) -> dict[str, object]:
    """``ferry stats --json``: ``{"repo", "generated_at", "windows_days", "figures": [as_json(...)]}``."""
    return {
        "repo": repo,
        "generated_at": now.isoformat(),
        "windows_days": list(windows),
        "figures": [as_json(f) for f in found],
    }
