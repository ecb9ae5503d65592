"""Health verdicts: is a stage verified on its deploy commit? Pure rules over observed Argo CD state.

``app_verdict`` judges one Argo CD application against the deploy commit; ``stage_verdict`` combines
a stage's applications with the clock (timeout, soak). Everything comes from the arguments, so a
restarted Ferry reaches the same verdict from what GitHub and Argo CD say.

The rules, in the order they are checked for one application:

1. Argo CD could not be read (``error``), or the application does not exist (or the token may not
   read it): pending;
2. no operation for the deploy commit yet, or one requested but not started: pending;
3. that operation Running: pending; Failed or Error: failure naming the unhealthy resources;
4. ``status.reconciledAt`` older than ``operationState.finishedAt``: pending, because Argo CD
   assesses health in a separate loop and its health may predate the sync (akuity/kargo#2196;
   equal timestamps are trusted, as Kargo does);
5. ``status.sync.revision`` is not the deploy commit: pending;
6. health Degraded or Missing: failure naming the unhealthy resources; Progressing, Suspended,
   Unknown or absent: pending;
7. sync status not Synced: pending; otherwise success.

For a stage, the worst application wins (failure, then pending, then success) and reasons name the
application. A stage still pending ``timeout`` after the sync was requested fails with what it was
waiting for. Once every application succeeds the stage soaks: it is verified only when it has been
healthy for ``soak`` (counted from the later of the operation's end and the last health transition);
a degrade while soaking is a failure by rule 6. The soak itself is not cut short by ``timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.core.text import fit_description as fit

SHORT_SHA = 7

SYNCED = "Synced"
HEALTHY = "Healthy"
FAILED_HEALTH = frozenset({"Degraded", "Missing"})
WAITING_HEALTH = frozenset({"Progressing", "Suspended", "Unknown"})
RUNNING_PHASES = frozenset({"Running", "Terminating"})
FAILED_PHASES = frozenset({"Failed", "Error"})
SUCCEEDED = "Succeeded"

VerdictState = Literal["pending", "success", "failure"]

# What people read in commit statuses; each fits 140 characters once filled in.
MSG_APP_MISSING = "application not found on Argo CD (or the token may not read it)"
MSG_NO_OPERATION = "waiting for a sync to {commit}"
MSG_OTHER_OPERATION = "waiting for a sync to {commit} (last operation: {phase} at {other})"
MSG_REQUESTED = "sync to {commit} requested, not started yet"
MSG_RUNNING = "syncing {commit}: operation {phase}"
MSG_OPERATION_FAILED = "sync to {commit} {phase}: {message}"
MSG_STALE = "sync finished at {finished}; waiting for Argo CD to re-assess health"
MSG_WRONG_REVISION = "Argo CD compares to {other}, not {commit}"
MSG_UNHEALTHY = "{health}: {resources}"
MSG_WAITING_HEALTH = "health {health}{detail}"
MSG_NO_HEALTH = "no health reported yet"
MSG_NOT_SYNCED = "sync status {sync} at {commit}"
MSG_SUCCESS = "Healthy and Synced at {commit}"
MSG_STAGE_SUCCESS = "verified: healthy at {commit}{soak}"
MSG_SOAKING = "soaking: healthy since {since}, verified at {until}"
MSG_TIMED_OUT = "timed out after {timeout} waiting for {what}"
MSG_NO_APPS = "nothing to verify: no Argo CD application"
MSG_NO_RESOURCE_DETAIL = "no resource reported unhealthy"


@dataclass(frozen=True)
class AppState:
    """What Argo CD says about one application, reduced to what the verdict needs.

    ``operation_*`` describe ``status.operationState`` (the latest operation, possibly finished);
    ``operation_requested`` is true while the top-level ``operation`` is set (requested or running).
    ``unhealthy_resources`` read ``"Deployment/web: <health message>"``. ``error`` says why Argo CD
    could not be read; the verdict then stays pending with that reason until the timeout.
    """

    name: str
    sync_status: str | None = None
    sync_revision: str | None = None
    health_status: str | None = None
    health_message: str | None = None
    operation_phase: str | None = None
    operation_revision: str | None = None
    operation_infos: Mapping[str, str] = field(default_factory=dict)
    operation_started_at: datetime | None = None
    operation_finished_at: datetime | None = None
    operation_message: str | None = None
    reconciled_at: datetime | None = None
    unhealthy_resources: tuple[str, ...] = ()
    exists: bool = True
    operation_requested: bool = False
    requested_infos: Mapping[str, str] = field(default_factory=dict)
    operation_initiated_by: str | None = None
    health_since: datetime | None = None
    images: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def missing(cls, name: str) -> AppState:
        return cls(name=name, exists=False)

    @classmethod
    def unobserved(cls, name: str, error: str) -> AppState:
        """Argo CD could not be asked (unreachable, 5xx, token refused): pending until the timeout."""
        return cls(name=name, error=error)


@dataclass(frozen=True)
class Verdict:
    """``reason`` fits a 140-character commit status; ``details`` keeps the full resource lines."""

    state: VerdictState
    reason: str
    details: tuple[str, ...] = ()


def same_revision(observed: str | None, wanted: str) -> bool:
    """Full SHAs compare equal; an abbreviated one (7+ characters) matches the full SHA it starts."""
    if not observed:
        return False
    a, b = observed.strip().lower(), wanted.strip().lower()
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return len(shorter) >= SHORT_SHA and longer.startswith(shorter)


def short(revision: str | None) -> str:
    if not revision:
        return "?"
    return revision[:SHORT_SHA] if len(revision) == 40 else revision


def clock_time(moment: datetime) -> str:
    return _utc(moment).strftime("%H:%M:%S")


def format_duration(span: timedelta) -> str:
    """``15m``, ``1h30m``, ``45s``: the way people write durations in the pipeline config."""
    seconds = max(0, int(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def app_verdict(app: AppState, deploy_commit: str) -> Verdict:
    """Judge one application against the deploy commit, ignoring time (see the module docstring)."""
    commit = short(deploy_commit)
    if app.error is not None:
        return Verdict("pending", app.error)
    if not app.exists:
        return Verdict("pending", MSG_APP_MISSING)
    ours = same_revision(app.operation_revision, deploy_commit)
    if app.operation_phase in RUNNING_PHASES and ours:
        return Verdict("pending", MSG_RUNNING.format(commit=commit, phase=app.operation_phase))
    if app.operation_requested and app.operation_phase not in RUNNING_PHASES:
        return Verdict("pending", MSG_REQUESTED.format(commit=commit))
    if not ours:
        if app.operation_phase is None:
            return Verdict("pending", MSG_NO_OPERATION.format(commit=commit))
        return Verdict(
            "pending",
            MSG_OTHER_OPERATION.format(
                commit=commit, phase=app.operation_phase, other=short(app.operation_revision)
            ),
        )
    if app.operation_phase in FAILED_PHASES:
        message = app.operation_message or _resources_text(app)
        return Verdict(
            "failure",
            MSG_OPERATION_FAILED.format(commit=commit, phase=app.operation_phase, message=message),
            app.unhealthy_resources,
        )
    if app.operation_phase != SUCCEEDED:
        return Verdict("pending", MSG_RUNNING.format(commit=commit, phase=app.operation_phase or "unknown"))
    finished = app.operation_finished_at
    if finished is not None and (app.reconciled_at is None or _utc(app.reconciled_at) < _utc(finished)):
        return Verdict("pending", MSG_STALE.format(finished=clock_time(finished)))
    if not same_revision(app.sync_revision, deploy_commit):
        return Verdict("pending", MSG_WRONG_REVISION.format(other=short(app.sync_revision), commit=commit))
    health = app.health_status
    if health in FAILED_HEALTH:
        reason = MSG_UNHEALTHY.format(health=health, resources=_resources_text(app))
        return Verdict("failure", reason, app.unhealthy_resources)
    if health is None:
        return Verdict("pending", MSG_NO_HEALTH)
    if health != HEALTHY:
        detail = f": {app.unhealthy_resources[0]}" if app.unhealthy_resources else ""
        return Verdict("pending", MSG_WAITING_HEALTH.format(health=health, detail=detail))
    if app.sync_status != SYNCED:
        return Verdict("pending", MSG_NOT_SYNCED.format(sync=app.sync_status or "unknown", commit=commit))
    return Verdict("success", MSG_SUCCESS.format(commit=commit))


def stage_verdict(
    apps: Sequence[AppState],
    deploy_commit: str,
    *,
    requested_at: datetime,
    now: datetime,
    timeout: timedelta,
    soak: timedelta,
) -> Verdict:
    """Judge a stage: every application must pass; the worst wins; timeout and soak from the clock."""
    if not apps:
        return Verdict("success", MSG_NO_APPS)
    judged = [(app, app_verdict(app, deploy_commit)) for app in apps]
    failures = [(app, v) for app, v in judged if v.state == "failure"]
    if failures:
        reason = "; ".join(f"{app.name}: {v.reason}" for app, v in failures)
        details = tuple(f"{app.name}: {line}" for app, v in failures for line in v.details)
        return Verdict("failure", fit(reason), details)
    pending = [(app, v) for app, v in judged if v.state == "pending"]
    if pending:
        app, first = pending[0]
        what = f"{app.name}: {first.reason}"
        if _utc(now) - _utc(requested_at) >= timeout:
            reason = MSG_TIMED_OUT.format(timeout=format_duration(timeout), what=what)
            return Verdict("failure", fit(reason), first.details)
        more = f" (+{len(pending) - 1} more)" if len(pending) > 1 else ""
        return Verdict("pending", fit(what + more), first.details)
    commit = short(deploy_commit)
    since = _healthy_since(apps)
    if soak > timedelta(0) and since is not None:
        until = since + soak
        if _utc(now) < until:
            return Verdict("pending", MSG_SOAKING.format(since=clock_time(since), until=clock_time(until)))
    soaked = f" for {format_duration(soak)}" if soak > timedelta(0) else ""
    return Verdict("success", fit(MSG_STAGE_SUCCESS.format(commit=commit, soak=soaked)))


def _healthy_since(apps: Sequence[AppState]) -> datetime | None:
    moments = [
        _utc(moment)
        for app in apps
        for moment in (app.operation_finished_at, app.health_since)
        if moment is not None
    ]
    return max(moments) if moments else None


def _resources_text(app: AppState) -> str:
    if app.unhealthy_resources:
        return ", ".join(app.unhealthy_resources)
    return app.health_message or MSG_NO_RESOURCE_DETAIL


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
