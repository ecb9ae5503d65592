"""Argo CD sync windows: which apps a project's windows match, whether one is active, whether a sync may run.

Semantics from pkg/apis/application/v1alpha1/types.go: ``SyncWindows.Matches`` (a window applies to an
app when one of its ``applications``, ``clusters`` or ``namespaces`` globs matches, OR-ed unless
``andOperator``), ``SyncWindow.active`` (a window is active when a start time of its cron ``schedule``
lies within ``duration`` before now: ``cron.Next(now - duration) <= now``) and ``SyncWindows.CanSync``
(an active ``deny`` window blocks, unless the sync is manual and every deny window has ``manualSync``;
otherwise an active ``allow`` window allows; otherwise inactive ``allow`` windows block, again unless
manual and all of them have ``manualSync``). The API server asks ``CanSync(isManual=true)``
(server/application/application.go, ``Sync``), the controller's auto-sync ``CanSync(false)``
(controller/appcontroller.go, ``processAppRefreshQueueItem``). Schedules are standard 5-field cron in UTC.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.errors import FerryError

MAX_WINDOW = timedelta(days=31)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
_FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


@dataclass(frozen=True)
class SyncWindow:
    """One ``v1alpha1.SyncWindow`` of the project: ``kind`` is ``allow`` or ``deny``."""

    kind: str
    schedule: str
    duration: str
    applications: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    manual_sync: bool = False
    and_operator: bool = False
    description: str = ""
    _cron: tuple[frozenset[int], ...] = field(init=False, repr=False, compare=False)
    _length: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("allow", "deny"):
            raise FerryError(f'sync window kind must be "allow" or "deny", not "{self.kind}"')
        object.__setattr__(self, "_cron", _parse_cron(self.schedule))
        object.__setattr__(self, "_length", _parse_duration(self.duration))

    def matches(self, app: str, namespace: str, server: str) -> bool:
        checks = [
            (self.applications, app),
            (self.clusters, server),
            (self.namespaces, namespace),
        ]
        results = [
            any(fnmatch.fnmatchcase(value, glob) for glob in globs) for globs, value in checks if globs
        ]
        if not results:
            return False
        return all(results) if self.and_operator else any(results)

    def active(self, now: float) -> bool:
        """True when a start of the schedule lies in ``(now - duration, now)``, as ``Next`` finds it."""
        current = datetime.fromtimestamp(now, UTC)
        moment = current.replace(second=0, microsecond=0)
        if moment == current:
            moment -= timedelta(minutes=1)
        earliest = current - self._length
        while moment > earliest:
            if self._starts_at(moment):
                return True
            moment -= timedelta(minutes=1)
        return False

    def _starts_at(self, moment: datetime) -> bool:
        minute, hour, day, month, weekday = self._cron
        cron_weekday = (moment.weekday() + 1) % 7  # cron counts Sunday as 0
        day_ok, weekday_ok = moment.day in day, cron_weekday in weekday
        fields = self.schedule.split()
        both_restricted = fields[2] != "*" and fields[4] != "*"  # robfig/cron: then either matches
        days = (day_ok or weekday_ok) if both_restricted else (day_ok and weekday_ok)
        return moment.minute in minute and moment.hour in hour and moment.month in month and days

    def as_json(self) -> dict[str, object]:
        """The ``applicationApplicationSyncWindow`` shape the syncwindows endpoint returns."""
        return {"kind": self.kind, "schedule": self.schedule, "duration": self.duration,
                "manualSync": self.manual_sync}  # fmt: skip


def can_sync(windows: list[SyncWindow], now: float, *, manual: bool) -> bool:
    """``SyncWindows.CanSync`` over the windows that match the app."""
    if not windows:
        return True
    active = [w for w in windows if w.active(now)]
    denies = [w for w in active if w.kind == "deny"]
    if denies:
        return manual and all(w.manual_sync for w in denies)
    if any(w.kind == "allow" for w in active):
        return True
    inactive_allows = [w for w in windows if w.kind == "allow" and w not in active]
    if inactive_allows:
        return manual and all(w.manual_sync for w in inactive_allows)
    return True


def _parse_duration(text: str) -> timedelta:
    parts = _DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise FerryError(f'sync window duration "{text}" is not a Go duration such as "1h" or "30m"')
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    length = timedelta(seconds=seconds)
    if length > MAX_WINDOW:
        raise FerryError(f'sync window duration "{text}" is longer than the stand-in evaluates (31 days)')
    return length


def _parse_cron(schedule: str) -> tuple[frozenset[int], ...]:
    fields = schedule.split()
    if len(fields) != 5:
        raise FerryError(f'sync window schedule "{schedule}" must have 5 cron fields')
    ranges = zip(fields, _FIELD_RANGES, strict=True)
    return tuple(_cron_field(text, low, high, schedule) for text, (low, high) in ranges)


def _cron_field(text: str, low: int, high: int, schedule: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = int(first), int(last)
        elif base.isdigit():
            start = int(base)
            end = high if step_text else start
        else:
            raise FerryError(f'sync window schedule "{schedule}": cannot read cron field "{text}"')
        if not (low <= start <= end <= high) or step < 1:
            raise FerryError(f'sync window schedule "{schedule}": "{text}" is out of range {low}-{high}')
        values.update(range(start, end + 1, step))
    return frozenset(values)
